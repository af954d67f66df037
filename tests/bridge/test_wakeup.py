"""An idle bridge starts a queued run at once (the server's wake-up long poll), not at its next claim
poll; when its connection to the server is cut it polls claims again and loses nothing.

The bridge claims only every 60 s here and the server looks into the database on its own only
every 60 s: a run that starts sooner was started by the wake-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from device_bridge.server_api import DeviceApi
from device_bridge.state import BridgeState
from device_bridge.uploader import Backoff
from device_bridge.wakeup import Waker
from tests.bridge.server_process import ServerProcess, poll_run, publish_workflow, start_server, trigger

pytestmark = pytest.mark.emulator

WORKFLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Open the shop",
    "targetPackages": ["com.example.shop"],
    "start": "open",
    "nodes": [{"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}}],
}
SLOW_POLL = "60"
# An idle bridge stops at once on SIGTERM (its long polls are not waited for).
STOP_S = 10


class CuttableProxy:
    """A TCP forwarder to the server whose connections can be cut (and new ones refused) at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = threading.Event()
        self.open.set()
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._sockets.discard(source)
            source.close()  # each socket is the source of one pipe: that pipe closes it

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore`."""
        self.open.clear()
        self.cuts += 1
        with self._lock:
            for end in self._sockets:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("server"), PHONEFLOW_CLAIM_RECHECK_INTERVAL_S=SLOW_POLL)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def proxy(slow_server: ServerProcess) -> Iterator[CuttableProxy]:
    port = int(slow_server.url.rsplit(":", 1)[1])
    forwarder = CuttableProxy(port)
    try:
        yield forwarder
    finally:
        forwarder.close()


@pytest.fixture(scope="module")
def bridge(
    slow_server: ServerProcess,
    proxy: CuttableProxy,
    sample_emulator: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """A bridge serving the emulator through the proxy, claiming on its own only every 60 s
    (every 0.3 s while its wake-up poll fails); yields (device id, workflow id)."""
    state_dir = tmp_path_factory.mktemp("bridge")
    serial = sample_emulator.serial
    device = slow_server.device(serial)
    BridgeState(state_dir / "state.db").save_pairing(serial, device.id, device.token, proxy.url)
    with slow_server.client() as client:
        workflow_id = publish_workflow(client, WORKFLOW)
    env = {
        **os.environ,
        "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": SLOW_POLL,
        "PHONEFLOW_BRIDGE_BACKOFF_BASE_S": "0.2",
        "PHONEFLOW_BRIDGE_BACKOFF_MAX_S": "0.5",
        "PHONEFLOW_BRIDGE_HEARTBEAT_INTERVAL_S": "60",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "device_bridge", "run", "--server", proxy.url, "--serial", serial,
         "--state-dir", str(state_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield device.id, workflow_id
    finally:
        agent.terminate()
        try:
            _, stderr = agent.communicate(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.communicate()
            pytest.fail(f"the idle bridge did not stop within {STOP_S} s of SIGTERM")
        assert agent.returncode == 0, stderr


def test_a_stopping_bridge_does_not_wait_for_work() -> None:
    """The bridge's stop comes while the worker is busy claiming: its next wait must not last a poll
    interval (it used to clear the stop's nudge and wait out the whole interval)."""
    stop = threading.Event()
    api = DeviceApi(httpx.Client(), "http://127.0.0.1:9", "pf_dev_unused")
    waker = Waker(api, stop, wait_s=20, backoff=Backoff(0.2, 0.5), serial="emulator-5554")
    stop.set()
    waker.interrupt()  # before the worker reaches its wait
    started = time.monotonic()
    waker.wait_for_work(60)
    assert time.monotonic() - started < 1.0


@pytest.fixture
def client(slow_server: ServerProcess) -> Iterator[httpx.Client]:
    with slow_server.client() as account_client:
        yield account_client


def _done(client: httpx.Client, run_id: str, what: str) -> dict[str, Any]:
    # Well under the 60 s the bridge and the server take to look on their own.
    deadline = time.monotonic() + 40
    return poll_run(
        client,
        run_id,
        lambda run: run["status"] in ("success", "failed", "cancelled", "timeout"),
        deadline=deadline,
        what=what,
    )


def test_a_run_queued_for_an_idle_bridge_starts_at_once(
    client: httpx.Client, bridge: tuple[str, str]
) -> None:
    device_id, workflow_id = bridge
    for n in range(2):  # the first while the bridge starts up, the second once it is idle
        run = _done(client, trigger(client, workflow_id, device_id), f"run {n} did not start at once")
        assert run["status"] == "success", run


def test_a_cut_connection_falls_back_to_polling_and_loses_nothing(
    client: httpx.Client, proxy: CuttableProxy, bridge: tuple[str, str]
) -> None:
    device_id, workflow_id = bridge
    # idle with its poll held; then the connection drops and a run is queued meanwhile
    first = _done(client, trigger(client, workflow_id, device_id), "the bridge is not serving")
    assert first["status"] == "success"
    proxy.cut()
    queued = trigger(client, workflow_id, device_id)
    time.sleep(1.0)  # the bridge's calls fail meanwhile (it retries every 0.2–0.5 s)
    assert client.get(f"/api/v1/runs/{queued}").json()["status"] == "queued"
    proxy.restore()
    run = _done(client, queued, "the run queued while the connection was cut was lost")
    assert run["status"] == "success", run
    # nothing lost, nothing run twice: every run of the phone ran once, to success
    runs = client.get("/api/v1/runs", params={"deviceId": device_id, "limit": 100}).json()["runs"]
    assert queued in [r["id"] for r in runs]
    assert {r["status"] for r in runs} == {"success"}, runs
    assert all(r["traceLen"] == 1 for r in runs), runs
