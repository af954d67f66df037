"""`phoneflow devices list|pair-code|rename|revoke`: the account's phones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from client.common import AsJson, Profile, connect, find_device
from client.output import err, out, print_json, print_table, styled, when

devices_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Paired phones: list, pair-code, rename, revoke."
)

Device = Annotated[str, typer.Argument(help="The device's id, name or adb serial.", show_default=False)]


def _phone(device: dict[str, Any]) -> str:
    """What the phone said of itself through its bridge: adb state, battery, screen, the app in front."""
    health = device.get("phoneHealth") or {}
    state = health.get("adbState")
    if not state:
        return "—"
    parts = ["unplugged" if state == "gone" else str(state)]
    if health.get("battery") is not None:
        parts.append(f"{health['battery']}%" + (" charging" if health.get("charging") else ""))
    if health.get("screenOn") is not None:
        parts.append("screen on" if health["screenOn"] else "screen off")
    if health.get("foregroundApp"):
        parts.append(str(health["foregroundApp"]))
    return " · ".join(parts)


def _state(device: dict[str, Any]) -> Text:
    if device["revokedAt"]:
        return styled("revoked", {"revoked": "red"})
    online = "online" if device.get("online") else "offline"
    return styled(online, {"online": "green", "offline": "yellow"})


@devices_app.command("list")
def list_command(profile: Profile = None, as_json: AsJson = False) -> None:
    """The account's devices: serial, model, Android version, when last seen, the phone's health
    (adb state, battery, screen, the app in front) and whether it is online, offline or revoked."""
    with connect(profile) as api:
        devices = api.get("/devices")
    if as_json:
        print_json(devices)
        return
    rows = [
        [d["id"], d["name"], d["serial"], d["model"], d["androidVersion"], when(d["lastSeenAt"]) or "never",
         _phone(d), _state(d)]
        for d in devices
    ]  # fmt: skip
    print_table(
        None, ("id", "name", "serial", "model", "android", "last seen", "phone", "state"), rows,
        "no devices yet: `phoneflow devices pair-code` makes a code for `phoneflow bridge pair`",
    )  # fmt: skip


@devices_app.command("pair-code")
def pair_code_command(profile: Profile = None, as_json: AsJson = False) -> None:
    """A one-time code that pairs one phone (`phoneflow bridge pair --code CODE`)."""
    with connect(profile) as api:
        made = api.post("/pairing-codes")
        server = api.target.server
    if as_json:
        print_json(made)
        return
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    minutes = max(1, round((expires - datetime.now(UTC)).total_seconds() / 60))
    out.print(made["code"])
    err.print(f"single use, expires in {minutes} min ({when(made['expiresAt'])})")
    err.print(
        "next, where the phone is plugged in: "
        f"phoneflow bridge pair --server {server} --code {made['code']} --serial SERIAL"
    )


@devices_app.command("rename")
def rename_command(
    device: Device,
    name: Annotated[str, typer.Argument(help="The new name.", show_default=False)],
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Give a device a name people recognise."""
    with connect(profile) as api:
        found = find_device(api, device)
        renamed = api.patch(f"/devices/{found['id']}", {"name": name})
    if as_json:
        print_json(renamed)
    else:
        out.print(f"device {renamed['id']} ({renamed['serial']}) is now {renamed['name']!r}")


@devices_app.command("revoke")
def revoke_command(
    device: Device,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a device: its token stops working at once (pair it again to bring it back)."""
    with connect(profile) as api:
        found = find_device(api, device)
        if not yes and not typer.confirm(f"revoke {found['name']} ({found['serial']})?", err=True):
            raise typer.Exit(1)
        revoked = api.post(f"/devices/{found['id']}/revoke")
    if as_json:
        print_json(revoked)
    else:
        out.print(f"device {revoked['id']} ({revoked['serial']}) revoked")
