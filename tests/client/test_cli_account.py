"""`phoneflow login`, `workflows`, `devices`, `approvals` and `schedules` against a real server."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from tests.bridge.server_process import ServerProcess
from tests.client.conftest import Cli
from tests.server.factories import auth

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture_order.json"
SIGNED_OUT = {"PHONEFLOW_SERVER": None, "PHONEFLOW_TOKEN": None}


def test_login_keeps_the_token_private_and_every_command_uses_it(cli: Cli, tmp_path: Path) -> None:
    server = cli.server
    signed_out = cli("workflows", "list", env=SIGNED_OUT)
    assert signed_out.exit_code == 5
    assert "phoneflow login --server URL" in signed_out.stderr

    wrong = cli("login", "--server", server.url, "--token", "pf_acc_nope", env=SIGNED_OUT)
    assert wrong.exit_code == 5
    assert "refused the token" in wrong.stderr

    logged = cli(
        "login", "--server", server.url, "--with-token", env=SIGNED_OUT, input=server.account.token + "\n"
    )
    assert logged.exit_code == 0, logged.output
    assert f"signed in to {server.url} as {server.account.email}" in logged.stdout
    path = tmp_path / "config" / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["profiles"]["default"]["token"] == server.account.token

    listed = cli("workflows", "list", "--json", env=SIGNED_OUT)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []
    # the environment wins over the profile
    overridden = cli("workflows", "list", env={"PHONEFLOW_TOKEN": "pf_acc_revoked"})
    assert overridden.exit_code == 5
    assert "PHONEFLOW_TOKEN" in overridden.stderr
    other = cli("devices", "list", "--profile", "staging", env=SIGNED_OUT)
    assert other.exit_code == 5
    assert "--profile staging" in other.stderr

    again = cli("login", "--server", server.url, "--token", server.account.token, "--profile", "ci", "--json")
    assert json.loads(again.stdout) == {
        "server": server.url, "profile": "ci", "email": server.account.email, "file": str(path),
    }  # fmt: skip
    assert cli("logout", env=SIGNED_OUT).exit_code == 0
    assert cli("workflows", "list", env=SIGNED_OUT).exit_code == 5
    unreachable = cli("runs", "list", env={"PHONEFLOW_SERVER": "http://127.0.0.1:9"})
    assert unreachable.exit_code == 8
    assert "cannot reach the server at http://127.0.0.1:9" in unreachable.stderr


def test_a_server_url_that_cannot_be_one_is_told_how_to_write_it(cli: Cli) -> None:
    server = cli.server
    # without its scheme (httpx alone would say "missing protocol", which read as "no server here"),
    # asked before the token
    bare = server.url.removeprefix("http://")
    no_scheme = cli("login", "--server", bare, env=SIGNED_OUT)
    assert no_scheme.exit_code == 2
    assert f"e.g. {server.url}" in no_scheme.stderr
    from_env = cli("runs", "list", env={"PHONEFLOW_SERVER": bare})
    assert from_env.exit_code == 2
    assert "PHONEFLOW_SERVER" in from_env.stderr
    assert f"e.g. {server.url}" in from_env.stderr
    # a page's URL (copied from the browser) is not the server's address
    page = cli("login", "--server", server.url + "/runs", "--token", server.account.token, env=SIGNED_OUT)
    assert page.exit_code == 6
    assert "has no phoneflow API" in page.stderr
    assert "without a page's path" in page.stderr
    # --inputs that is neither JSON nor a file names the missing file
    missing = cli("runs", "trigger", "Any", "--device", "any", "--inputs", "nothere.json")
    assert missing.exit_code == 2
    assert "'nothere.json': no such file" in missing.stderr


def test_workflows_push_publish_diff(cli: Cli, tmp_path: Path) -> None:
    definition = json.loads(EXAMPLE.read_text())
    file = tmp_path / "order.json"
    file.write_text(json.dumps(definition))

    pushed = cli("workflows", "push", str(file), "--publish", "--json")
    assert pushed.exit_code == 0, pushed.output
    first = json.loads(pushed.stdout)
    assert (first["number"], first["created"], first["published"]) == (1, True, True)
    again = json.loads(cli("workflows", "push", str(file), "--json").stdout)
    assert (again["number"], again["changed"]) == (1, False)
    same = cli("workflows", "diff", definition["name"], str(file))
    assert same.exit_code == 0, same.output
    assert "are the same" in same.stdout

    definition["nodes"][1]["params"]["text"] = "{{inputs.user}}!"
    file.write_text(json.dumps(definition))
    local_change = cli("workflows", "diff", first["workflowId"], str(file))
    assert local_change.exit_code == 9
    assert "--- v1 (published)" in local_change.stdout
    changed = [line for line in local_change.stdout.splitlines() if line[:1] in "+-" and "text" in line]
    assert [line[0] for line in changed] == ["-", "+"]
    assert '"{{inputs.user}}!"' in changed[1]

    second = json.loads(cli("workflows", "push", str(file), "--json").stdout)
    assert (second["number"], second["changed"], second["published"]) == (2, True, False)
    unpublished = json.loads(cli("workflows", "diff", definition["name"], "--json").stdout)
    assert unpublished["same"] is False
    assert (unpublished["from"], unpublished["to"]) == ("v1 (published)", "v2 (latest)")
    assert cli("workflows", "publish", definition["name"]).exit_code == 0
    listed = json.loads(cli("workflows", "list", "--json").stdout)
    assert [(w["name"], w["latestVersionNumber"]) for w in listed] == [(definition["name"], 2)]
    shown = cli("workflows", "show", definition["name"])
    assert shown.exit_code == 0
    assert "published" in shown.stdout.splitlines()[-2] or "published" in shown.stdout
    assert cli("workflows", "publish", definition["name"], "--version", "7").exit_code == 6

    definition["nodes"][1]["next"] = "nowhere"
    file.write_text(json.dumps(definition))
    invalid = cli("workflows", "push", str(file))
    assert invalid.exit_code == 2
    assert "no node 'nowhere'" in invalid.stderr
    assert "nothing was pushed" in invalid.stderr
    assert json.loads(cli("workflows", "list", "--json").stdout)[0]["latestVersionNumber"] == 2
    missing = cli("workflows", "show", "No such workflow")
    assert missing.exit_code == 6
    assert "no workflow named 'No such workflow'" in missing.stderr


def test_devices_pair_code_rename_revoke(cli: Cli, served: ServerProcess) -> None:
    made = cli("devices", "pair-code")
    assert made.exit_code == 0, made.output
    code = made.stdout.strip()
    assert f"phoneflow bridge pair --server {served.url} --code {code} --serial SERIAL" in made.stderr
    paired = httpx.post(
        f"{served.url}/api/v1/devices/pair",
        json={"code": code, "serial": "R58M123", "model": "Galaxy", "androidVersion": "13"},
    )
    assert paired.status_code == 201, paired.text
    devices = json.loads(cli("devices", "list", "--json").stdout)
    assert [d["serial"] for d in devices] == ["R58M123"]
    # The phone's health as its bridge says it: unplugged (adb no longer lists it), then back.
    beat_url, device_auth = f"{served.url}/api/v1/devices/me/heartbeat", auth(paired.json()["token"])
    beat = httpx.post(beat_url, headers=device_auth, json={"phone": {"adbState": "gone"}})
    assert beat.status_code == 200, beat.text
    listed = cli("devices", "list").stdout
    assert "unplugged" in listed
    assert "offline" in listed
    phone = {"adbState": "device", "battery": 41, "charging": True, "screenOn": False}
    assert httpx.post(beat_url, headers=device_auth, json={"phone": phone}).status_code == 200
    listed = cli("devices", "list").stdout
    assert "41% charging" in listed
    assert "online" in listed
    renamed = json.loads(cli("devices", "rename", "R58M123", "Till 2", "--json").stdout)
    assert renamed["name"] == "Till 2"
    assert cli("devices", "revoke", "Till 2", "--yes").exit_code == 0
    assert json.loads(cli("devices", "list", "--json").stdout)[0]["revokedAt"] is not None
    heartbeat = httpx.post(f"{served.url}/api/v1/devices/me/heartbeat", headers=auth(paired.json()["token"]))
    assert heartbeat.status_code == 401
    table = cli("devices", "list")
    assert "revoked" in table.stdout


def test_approvals_and_schedules(cli: Cli, served: ServerProcess) -> None:
    client = served.client()
    device = served.device("emulator-5554")
    workflow_id = json.loads(cli("workflows", "push", str(EXAMPLE), "--publish", "--json").stdout)[
        "workflowId"
    ]
    inputs = '{"user": "a", "order": "1"}'
    triggered = cli("runs", "trigger", workflow_id, "--device", "emulator-5554", "--inputs", inputs, "--json")
    run_id = json.loads(triggered.stdout)["id"]
    claimed = httpx.post(f"{served.url}/api/v1/devices/me/claim", headers=auth(device.token))
    assert claimed.status_code == 200, claimed.text
    asked = httpx.post(
        f"{served.url}/api/v1/devices/me/approvals",
        headers=auth(device.token),
        json={"runId": run_id, "nodeId": "check", "visit": 1, "message": "Ship it?", "timeoutS": 600},
    )
    assert asked.status_code in (200, 201), asked.text
    pending = json.loads(cli("approvals", "list", "--json").stdout)
    assert [(a["runId"], a["message"]) for a in pending] == [(run_id, "Ship it?")]
    approved = cli("approvals", "approve", pending[0]["id"], "--note", "looks right")
    assert approved.exit_code == 0, approved.output
    assert "approved" in approved.stdout
    twice = cli("approvals", "reject", pending[0]["id"])
    assert twice.exit_code == 7
    assert "(409)" in twice.stderr
    answered = json.loads(cli("approvals", "list", "--status", "all", "--json").stdout)[0]
    assert (answered["status"], answered["note"]) == ("approved", "looks right")

    created = cli(
        "schedules", "create", workflow_id, "--device", device.id, "--cron", "*/15 * * * *",
        "--timezone", "Europe/Paris", "--inputs", '{"user": "a", "order": "1"}', "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    schedule = json.loads(created.stdout)
    assert schedule["timezone"] == "Europe/Paris"
    assert json.loads(cli("schedules", "disable", schedule["id"], "--json").stdout)["enabled"] is False
    assert json.loads(cli("schedules", "enable", schedule["id"], "--json").stdout)["enabled"] is True
    listed = json.loads(cli("schedules", "list", "--workflow", workflow_id, "--json").stdout)
    assert [s["id"] for s in listed] == [schedule["id"]]
    bad = cli("schedules", "create", workflow_id, "--device", device.id, "--cron", "every day")
    assert bad.exit_code == 7
    assert "/cron" in bad.stderr
    assert cli("schedules", "delete", schedule["id"]).exit_code == 0
    assert cli("schedules", "show", schedule["id"]).exit_code == 6
    client.close()
