"""The screen inspector's command channel end to end: two server processes on one database, a
real bridge process on the virtual phone. The browser's side asks one process; the bridge's long
poll is held by the other; the answer reaches the asker all the same."""

from __future__ import annotations

import base64
import io
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from device_bridge.state import BridgeState
from tests.bridge.server_process import ServerProcess, start_agent, start_server

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def second_server(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Another server process on the same database as `server`."""
    process = start_server(tmp_path_factory.mktemp("server-b"), db_url=server.db.url)
    try:
        yield process
    finally:
        process.stop()


def _ask(client: httpx.Client, device_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/devices/{device_id}/commands", json=body or {"kind": "inspect"})


def _answer(client: httpx.Client, device_id: str, command_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        read = client.get(f"/api/v1/devices/{device_id}/commands/{command_id}?wait=20", timeout=40)
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        if body["status"] not in ("pending", "taken"):
            return body
        assert time.monotonic() < deadline, body


def _element(inspection: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    found = [e for e in inspection["elements"] if all(e[k] == v for k, v in attributes.items())]
    assert found, (attributes, [(e["text"], e["resourceId"]) for e in inspection["elements"]])
    return found[0]


def test_inspect_and_click_on_the_phone_through_two_server_processes(
    server: ServerProcess, second_server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    serial = sample_emulator.serial
    device = server.device(serial)
    state_dir = tmp_path / "bridge"
    # The bridge talks to the second process only; the person to the first.
    BridgeState(state_dir / "state.db").save_pairing(serial, device.id, device.token, second_server.url)
    client = server.client()

    refused = _ask(client, device.id)
    assert refused.status_code == 409
    assert f"phoneflow bridge run --serial {serial}" in refused.json()["detail"]

    agent = start_agent(second_server, serial, state_dir, PHONEFLOW_BRIDGE_COMMAND_WAIT_S="5")
    try:
        deadline = time.monotonic() + 60
        while (created := _ask(client, device.id)).status_code == 409:
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
            assert time.monotonic() < deadline, created.text
            time.sleep(0.2)
        assert created.status_code == 201, created.text
        inspected = _answer(client, device.id, created.json()["id"])
        assert inspected["status"] == "done", inspected
        shot = inspected["result"]["screenshot"]
        assert shot["contentType"] == "image/jpeg"
        image = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
        assert image.width == 540
        inspection = inspected["inspection"]
        assert inspection["screen"] == {"width": 1080, "height": 2340}

        # The launcher's Shop icon, clicked on the phone: the shop's login screen comes.
        icon = _element(inspection, text="Shop", clickable=True)
        left, top, right, bottom = icon["bounds"]
        clicked = _ask(
            client, device.id, kind="click", params={"x": (left + right) // 2, "y": (top + bottom) // 2}
        )
        assert clicked.status_code == 201, clicked.text
        after = _answer(client, device.id, clicked.json()["id"])
        assert after["status"] == "done", after
        assert after["result"]["foreground"]["package"] == "com.example.shop"
        assert after["result"]["foreground"]["activity"].endswith("LoginActivity")
        assert "Shop" in after["result"]["before"]["hierarchy"]
        sign_in = _element(after["inspection"], text="Sign in")
        assert sign_in["selectors"][0] == {
            "selector": {"resourceId": "com.example.shop:id/sign_in"},
            "matches": 1,
            "unique": True,
        }
    finally:
        agent.terminate()
        try:
            agent.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.communicate()
        client.close()


def test_a_click_while_the_device_runs_a_run_is_refused_and_an_unknown_command_says_update() -> None:
    from device_bridge.commands import CommandRefused, CommandWorker
    from device_bridge.server_api import DeviceApi
    from device_bridge.uploader import Backoff

    run_lock = threading.Lock()
    with httpx.Client() as client:
        worker = CommandWorker(
            DeviceApi(client, "http://127.0.0.1:9", "pf_dev_unused"),
            device=None,  # type: ignore[arg-type]  # neither command reaches the phone
            stop=threading.Event(),
            run_lock=run_lock,
            wait_s=1,
            settle_s=0,
            backoff=Backoff(0.1, 1),
            serial="emulator-5554",
        )
        with run_lock, pytest.raises(CommandRefused, match="is running a run: a click now would land in it"):
            worker.execute("click", {"x": 1, "y": 2})
        assert not run_lock.locked()
        with pytest.raises(CommandRefused, match="does not know the command 'swipe': update the bridge"):
            worker.execute("swipe", {})
