"""`phoneflow bridge ...`: pair a phone, serve paired phones, run one workflow, inspect the outbox.

Exit codes: 0 done (for `exec`: every run succeeded), 1 a run did not succeed, 2 the input
or the setup could not be used (bad file, device busy or unreachable, not paired, server refused).
`exec` lives in `exec_cli.py`, the shared options in `cli_options.py`.
"""

from __future__ import annotations

import json
import logging
import shlex
import signal
import threading
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table

from device_bridge.cli_options import (
    EXIT_RUN_FAILED,
    AppiumCapabilities,
    AppiumUrl,
    Driver,
    StateDir,
    _driver_options,
    _fail,
    _settings,
)
from device_bridge.errors import BridgeError, ServerRefusedError, ServerUnreachableError
from device_bridge.exec_cli import exec_command

bridge_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run workflows on phones through uiautomator2 or an Appium server.",
)


def _server_url(value: str) -> str:
    """`--server` as a base URL without a trailing slash; exits saying how when it has no http(s) scheme."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    example = f"http://{url}" if url and "://" not in url else "http://127.0.0.1:8000"
    raise _fail(
        f"--server {value!r} is not a server URL: give it with http:// or https://, e.g. {example} "
        "(as `phoneflow serve` prints it)"
    )


def _device_facts(serial: str) -> tuple[str, str]:
    """The model and Android version of `serial`, read with adb (no uiautomator2 session needed)."""
    import adbutils

    try:
        device = adbutils.adb.device(serial)
        model = device.shell("getprop ro.product.model").strip()
        release = device.shell("getprop ro.build.version.release").strip()
    except (adbutils.AdbError, OSError) as exc:
        raise BridgeError(
            f"cannot read device {serial} through adb ({exc}): check that `adb devices` lists it as `device`"
        ) from exc
    return model or "unknown", release or "unknown"


@bridge_app.command("pair")
def pair_command(
    server: Annotated[str, typer.Option("--server", help="The phoneflow server, e.g. http://127.0.0.1:8000")],
    code: Annotated[
        str,
        typer.Option(
            "--code", help="A pairing code: `phoneflow devices pair-code` or the dashboard's Devices page."
        ),
    ],
    serial: Annotated[str, typer.Option("--serial", help="The adb serial of the phone, e.g. emulator-5554.")],
    state_dir: StateDir = None,
) -> None:
    """Redeem a pairing code for SERIAL and keep the device token in the bridge's state."""
    from device_bridge.server_api import pair
    from device_bridge.state import BridgeState

    settings = _settings(state_dir)
    server = _server_url(server)
    try:
        model, release = _device_facts(serial)
        with httpx.Client(timeout=settings.http_timeout_s) as client:
            pairing = pair(
                client, server, code=code.strip(), serial=serial, model=model, android_version=release
            )
    except ServerRefusedError as exc:
        hint = (
            f": is {server} the address `phoneflow serve` printed (no page path)?"
            if exc.status_code == 404
            else ""
        )
        raise _fail(f"{exc}{hint}") from None
    except ServerUnreachableError as exc:
        raise _fail(f"{exc}: is `phoneflow serve` running at {server}? check --server") from None
    except BridgeError as exc:
        raise _fail(str(exc)) from None
    BridgeState(settings.state_db).save_pairing(serial, pairing.device_id, pairing.token, server)
    typer.echo(f"paired {serial} ({model}, Android {release}) with {server} as device {pairing.device_id}")
    follow_up = f"phoneflow bridge run --server {server} --serial {serial}"
    if state_dir is not None:
        follow_up += f" --state-dir {shlex.quote(str(state_dir))}"
    typer.echo(f"serve it with: {follow_up}")


@bridge_app.command("run")
def run_command(
    server: Annotated[
        str | None, typer.Option("--server", help="Serve only devices paired with this server.")
    ] = None,
    serial: Annotated[
        list[str] | None,
        typer.Option("--serial", help="A paired serial to serve (repeat; default: all paired)."),
    ] = None,
    state_dir: StateDir = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each claim, run and upload.")] = False,
    driver: Driver = None,
    appium_url: AppiumUrl = None,
    appium_capabilities: AppiumCapabilities = None,
) -> None:
    """Serve paired devices: heartbeat, claim queued runs, run them, report them. Ctrl-C stops."""
    from device_bridge.agent import Agent

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    options = _driver_options(driver, appium_url, appium_capabilities)
    settings = _settings(state_dir, server_url=server, **options)
    try:
        agent = Agent(settings, serial or [])
        agent.start()
    except BridgeError as exc:
        raise _fail(str(exc)) from None
    stopped = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    serials = ", ".join(p.serial for p in agent.paired)
    typer.echo(f"serving {serials}; outbox {settings.outbox_db}; Ctrl-C stops")
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    typer.echo("stopping: the run in flight ends after its current step")
    status = agent.shutdown()
    typer.echo(
        f"stopped after {status['runsDone']} run(s); {status['pendingReports']} report(s) left in the outbox"
    )


bridge_app.command("exec")(exec_command)


@bridge_app.command("outbox")
def outbox_command(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List the reports and artifacts waiting to be sent, and those the server rejected (with why)."""
    from device_bridge.outbox import Outbox

    settings = _settings(state_dir)
    outbox = Outbox(settings.outbox_db)
    reports = outbox.reports()
    artifacts = outbox.artifacts()
    outbox.close()
    if as_json:
        rows = [
            {"kind": "report", "seq": r.seq, "runId": r.run_id, "deviceId": r.device_id,
             "runStatus": r.run_status, "state": r.state.value, "reason": r.reason,
             "attempts": r.attempts, "lastError": r.last_error, "queuedAt": r.created_at}
            for r in reports
        ] + [
            {"kind": "artifact", "id": a.id, "runId": a.run_id, "name": a.name, "state": a.state.value,
             "reason": a.reason, "attempts": a.attempts}
            for a in artifacts
        ]  # fmt: skip
        typer.echo(json.dumps(rows, indent=2))
        return
    if not reports and not artifacts:
        typer.echo(f"the outbox is empty ({settings.outbox_db})")
        return
    out = Console(soft_wrap=True)
    table = Table(title=f"outbox {settings.outbox_db}", title_justify="left")
    for column in ("what", "run", "run status", "state", "tries", "reason / last error"):
        table.add_column(column, overflow="fold")
    for r in reports:
        why = r.reason or r.last_error or ""
        table.add_row(f"report #{r.seq}", r.run_id, r.run_status, r.state.value, str(r.attempts), why)
    for a in artifacts:
        why = a.reason or ""
        table.add_row(f"artifact {a.name}", a.run_id, "", a.state.value, str(a.attempts), why)
    out.print(table)


@bridge_app.command("upload")
def upload_command(state_dir: StateDir = None) -> None:
    """Send everything in the outbox now and exit (0 when it is empty afterwards, except rejected rows)."""
    from device_bridge.outbox import Outbox
    from device_bridge.state import BridgeState
    from device_bridge.uploader import Credentials, Uploader

    settings = _settings(state_dir)
    state = BridgeState(settings.state_db)

    def credentials(device_id: str) -> Credentials | None:
        paired = state.by_device_id(device_id)
        return Credentials(paired.server_url, paired.token) if paired else None

    outbox = Outbox(settings.outbox_db)
    uploader = Uploader(
        outbox,
        credentials,
        batch_size=settings.upload_batch_size,
        max_batch_bytes=settings.upload_max_batch_bytes,
        timeout_s=settings.http_timeout_s,
    )
    typer.echo(f"uploading {outbox.count()} pending report(s)")
    try:
        sent = uploader.upload_all()
    except BridgeError as exc:
        raise _fail(f"{exc} ({outbox.count()} report(s) still queued)", EXIT_RUN_FAILED) from None
    finally:
        uploader.close()
    typer.echo(f"sent {sent}; {outbox.count()} pending")
    outbox.close()
