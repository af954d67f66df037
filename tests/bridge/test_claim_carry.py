"""A run's final report rides on the worker's next claim (one request per run, not a runs.report and a
claim) when the server's claim says it takes one; it is held in the outbox meanwhile, so the uploader
does not send it too, and nothing is lost: a claim that fails lets it go to the uploader, a bridge that
dies with it held sends it on restart, and an older server gets its runs.report as before.
On the emulator, against a real server process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from device_bridge.agent import DeviceWorker
from device_bridge.driver import U2Device
from device_bridge.errors import ServerRefusedError, ServerUnreachableError
from device_bridge.outbox import Outbox, QueuedReport, RowState
from device_bridge.server_api import ClaimedRun, DeviceApi
from device_bridge.settings import BridgeSettings
from device_bridge.state import BridgeState
from device_bridge.uploader import Answer, Credentials, Uploader
from interpreter.trace import RunStatus
from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    pair_in_state_dir,
    poll_run,
    publish_workflow,
    trigger,
)
from tests.bridge.test_gate_progress import WAITS  # two 10 ms waits

pytestmark = pytest.mark.emulator


@dataclass
class Sent:
    """What went to the server: each runs.report batch (run id, status) and each claim's carried run."""

    reports: list[list[tuple[str, str]]] = field(default_factory=list)
    carried: list[str | None] = field(default_factory=list)

    def final_reports(self) -> list[str]:
        return [run_id for batch in self.reports for run_id, status in batch if status in ENDED]


class CountingUploader(Uploader):
    def __init__(self, sent: Sent, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = sent

    def _post(self, batch: Sequence[QueuedReport]) -> Answer:
        self.sent.reports.append([(row.run_id, row.run_status) for row in batch])
        return super()._post(batch)


class CountingApi(DeviceApi):
    """The device API, counting claims; `old`: a server from before the claim took reports."""

    sent: Sent
    old = False
    fail_carried: str | None = (
        None  # how the next carrying claim fails: "unreachable", "too-large", "invalid"
    )

    def claim_carrying(self, report: str | None) -> tuple[ClaimedRun | None, dict[str, Any] | None]:
        assert report is None or not self.old, "a report was carried to a server that never offered"
        self.sent.carried.append(None if report is None else report.split('"id":"', 1)[1][:36])
        if report is not None and self.fail_carried == "unreachable":
            self.fail_carried = None
            raise ServerUnreachableError("claim: cannot reach the server (the test's)")
        if report is not None and self.fail_carried == "too-large":
            self.fail_carried = None
            raise ServerRefusedError("claim: HTTP 413: the request body is larger than ... (the test's)", 413)
        if report is not None and self.fail_carried == "invalid":
            self.fail_carried = None
            report = report.replace('"status":"success"', '"status":"finished"')  # the server: 422
        claimed, answer = super().claim_carrying(report)
        if self.old:
            self.accepts_report = False
        return claimed, answer


@dataclass
class Bridge:
    worker: DeviceWorker
    api: CountingApi
    outbox: Outbox
    uploader: CountingUploader
    sent: Sent
    device_id: str
    token: str
    client: httpx.Client

    @contextmanager
    def serving(self) -> Iterator[None]:
        """The worker's and the uploader's loops, as the agent runs them, until the block ends."""
        stop = threading.Event()
        self.worker.stop = stop
        threads = [
            threading.Thread(target=self.worker.serve, daemon=True),
            threading.Thread(target=self.uploader.run, args=(stop, 0.2), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)

    def ended(self, run_ids: list[str]) -> list[dict[str, Any]]:
        """The runs once the server has them ended and the outbox is empty."""
        deadline = time.monotonic() + 30
        runs = [
            poll_run(self.client, run_id, lambda r: r["status"] in ENDED, deadline=deadline, what="run ended")
            for run_id in run_ids
        ]
        while self.outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.outbox.count() == 0
        return runs


@pytest.fixture
def bridge(server: ServerProcess, sample_emulator: Any, tmp_path: Path) -> Iterator[Bridge]:
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server, sample_emulator.serial, state_dir)
    settings = BridgeSettings(state_dir=state_dir, server_url=server.url, claim_interval_s=0.2)
    settings.ensure_state_dir()
    paired = BridgeState(settings.state_db).device(sample_emulator.serial)
    outbox = Outbox(settings.outbox_db)
    phone = U2Device(sample_emulator.serial, lock_dir=settings.lock_dir)
    worker = DeviceWorker(paired, phone, outbox, settings, threading.Event())
    sent = Sent()
    api = CountingApi(worker.client, server.url, device.token)
    api.sent = sent
    worker.api = api
    uploader = CountingUploader(sent, outbox, lambda _device: Credentials(server.url, device.token))
    client = server.client()
    try:
        yield Bridge(worker, api, outbox, uploader, sent, device.id, device.token, client)
    finally:
        worker.stop.set()
        worker.serve()  # returns at once, letting go of what it holds (a report, a recording)
        client.close()
        uploader.close()
        api.close()
        worker.client.close()
        phone.close()
        outbox.close()


@pytest.fixture(scope="module")
def waits(server: ServerProcess) -> str:
    with server.client() as client:
        return publish_workflow(client, WAITS)


def _run_holding_the_report(bridge: Bridge, waits: str) -> str:
    """Claim and run one run of `waits` with its final report held for the next claim; its id."""
    run_id = trigger(bridge.client, waits, bridge.device_id)
    claimed = bridge.api.claim()
    assert claimed is not None
    assert bridge.api.accepts_report is True
    result = bridge.worker.execute(claimed, carry=True)
    assert result is not None
    assert result.status.value == "success"
    return run_id


def test_each_runs_final_report_rides_on_the_next_claim(bridge: Bridge, waits: str) -> None:
    first, second = (trigger(bridge.client, waits, bridge.device_id) for _ in range(2))
    with bridge.serving():
        runs = bridge.ended([first, second])
    assert [run["status"] for run in runs] == ["success", "success"]
    assert [len(run["trace"]) for run in runs] == [2, 2]
    # No runs.report carried a final report: the first run's went with the claim of the second, the
    # second's with the claim that found nothing queued.
    assert bridge.sent.final_reports() == [], (bridge.sent, [first, second])
    assert [run_id for run_id in bridge.sent.carried if run_id] == [first, second]
    assert bridge.outbox.reports() == []


@pytest.mark.parametrize("failure", ["unreachable", "too-large", "invalid"])
def test_a_failed_claim_leaves_the_report_to_the_uploader(
    bridge: Bridge, waits: str, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="device_bridge.agent")
    first, second = (trigger(bridge.client, waits, bridge.device_id) for _ in range(2))
    bridge.api.fail_carried = failure
    with bridge.serving():
        runs = bridge.ended([first, second])
    assert [run["status"] for run in runs] == ["success", "success"]
    # The first run's report failed with its claim and went by runs.report (once); the second run
    # was claimed all the same.
    assert bridge.sent.final_reports() == [first]
    assert second in [run_id for run_id in bridge.sent.carried if run_id]
    assert bridge.outbox.reports() == []
    # A claim refused for its body (413, 422) claimed nothing: it is asked again at once without the
    # report, not after a backoff; an unreachable server is backed off from as ever.
    backed_off = any("next try in" in record.getMessage() for record in caplog.records)
    assert backed_off is (failure == "unreachable")


def test_a_bridge_that_dies_holding_the_report_sends_it_on_restart(
    bridge: Bridge, waits: str, server: ServerProcess
) -> None:
    run_id = _run_holding_the_report(bridge, waits)
    # Held for the next claim: the uploader does not send it meanwhile.
    assert bridge.uploader.upload_all() == 0, bridge.sent
    assert bridge.sent.reports == []
    # The bridge dies before that claim: the row is on disk, and the next bridge's uploader sends it.
    path = bridge.outbox.path
    again = Outbox(path)
    try:
        uploader = CountingUploader(bridge.sent, again, lambda _d: Credentials(server.url, bridge.token))
        assert uploader.upload_all() >= 1
        uploader.close()
    finally:
        again.close()
    assert bridge.sent.final_reports() == [run_id]
    assert bridge.client.get(f"/api/v1/runs/{run_id}").json()["status"] == "success"


def test_an_older_server_gets_the_report_by_runs_report(bridge: Bridge, waits: str) -> None:
    bridge.api.old = True
    first, second = (trigger(bridge.client, waits, bridge.device_id) for _ in range(2))
    with bridge.serving():
        runs = bridge.ended([first, second])
    assert [run["status"] for run in runs] == ["success", "success"]
    assert sorted(bridge.sent.final_reports()) == sorted([first, second])
    assert all(run_id is None for run_id in bridge.sent.carried)


def test_a_carried_report_the_server_rejects_is_kept_aside_as_the_uploader_keeps_it(
    bridge: Bridge, waits: str, server: ServerProcess
) -> None:
    run_id = _run_holding_the_report(bridge, waits)
    # Meanwhile the server ended the run otherwise: the report's `success` contradicts it.
    with server.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE runs SET status = 'failed', status_rank = :rank WHERE id = :id"),
            {"rank": RunStatus.FAILED.rank, "id": run_id},
        )
    with bridge.serving():
        deadline = time.monotonic() + 30
        while not bridge.outbox.reports([RowState.REJECTED]) and time.monotonic() < deadline:
            time.sleep(0.05)
    [kept] = bridge.outbox.reports([RowState.REJECTED])
    assert kept.run_id == run_id
    assert "already ended failed" in (kept.reason or "")
    assert run_id in bridge.sent.carried  # the claim carried it
    assert bridge.sent.final_reports() == []  # not sent again by runs.report
    assert bridge.outbox.count() == 0
