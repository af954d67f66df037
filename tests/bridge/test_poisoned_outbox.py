"""A run the server keeps failing on (500) never holds up the other runs of the outbox."""

from __future__ import annotations

import uuid
from pathlib import Path

from device_bridge.errors import ServerUnreachableError
from device_bridge.outbox import Outbox, RowState
from device_bridge.uploader import Backoff, Credentials, Uploader
from tests.bridge.report_server import ReportServer
from tests.bridge.test_outbox import DEVICE, TOKEN, make_run


def _upload_until_settled(uploader: Uploader, outbox: Outbox, rounds: int = 20) -> int:
    """What the bridge's upload loop does, without its waits: try again after each failure."""
    failures = 0
    for _ in range(rounds):
        try:
            uploader.upload_all()
        except ServerUnreachableError:
            failures += 1
            continue
        if outbox.count(RowState.PENDING) == 0:
            return failures
    raise AssertionError(f"the outbox still holds {outbox.count(RowState.PENDING)} pending reports")


def test_a_run_the_server_fails_on_is_kept_aside_and_every_good_run_goes_up(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    run_ids = [str(uuid.uuid4()) for _ in range(21)]
    poison = run_ids[13]
    for run_id in run_ids:
        outbox.enqueue(make_run(run_id, "success", 2), DEVICE)
    with ReportServer(TOKEN) as server:
        server.store.poison_ids.add(poison)
        uploader = Uploader(
            outbox, lambda _d: Credentials(server.url, TOKEN), timeout_s=2.0, backoff=Backoff(base_s=0.01)
        )
        failures = _upload_until_settled(uploader, outbox)
        assert failures == uploader.poison_after - 1  # the first failures are retried as they are
        assert sorted(server.store.runs) == sorted(set(run_ids) - {poison})
        kept = outbox.reports([RowState.REJECTED])
        assert [r.run_id for r in kept] == [poison]
        assert "failed 3 times on this run alone" in (kept[0].reason or "")
        assert "HTTP 500" in (kept[0].reason or "")
        # the kept run is not sent again; new runs go up at once
        later = str(uuid.uuid4())
        outbox.enqueue(make_run(later, "success", 1), DEVICE)
        before = server.store.server_faults
        assert uploader.upload_all() == 1
        assert server.store.server_faults == before
        assert later in server.store.runs


def test_a_503_is_waited_out_never_taken_for_a_poisoned_run(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    run_id = str(uuid.uuid4())
    outbox.enqueue(make_run(run_id, "success", 1), DEVICE)
    with ReportServer(TOKEN) as server:
        server.store.fail_next = 6  # the database is away for a while
        uploader = Uploader(outbox, lambda _d: Credentials(server.url, TOKEN), timeout_s=2.0)
        assert _upload_until_settled(uploader, outbox) == 6
    assert run_id in server.store.runs
    assert outbox.count(RowState.REJECTED) == 0
