"""The outbox and uploader against a real HTTP server speaking the runs.report contract."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from device_bridge.errors import ServerUnreachableError
from device_bridge.outbox import Outbox, RowState
from device_bridge.uploader import Backoff, Credentials, Uploader
from tests.bridge.report_server import ReportServer

TOKEN = "device-token-1"
DEVICE = "dev-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_run(run_id: str, status: str, n_events: int) -> dict[str, Any]:
    trace: list[dict[str, Any]] = [
        {
            "seq": i,
            "nodeId": f"n{i}",
            "kind": "action.wait",
            "outcome": "ok",
            "message": None,
            "startedAt": "2026-11-23T10:00:00.000Z",
            "durationMs": 1,
            "attempts": 1,
            "output": {},
        }
        for i in range(n_events)
    ]
    return {
        "id": run_id,
        "deviceId": DEVICE,
        "status": status,
        "trigger": "device",
        "inputs": {},
        "trace": trace,
    }


def uploader_for(outbox: Outbox, url: str, **kw: Any) -> Uploader:
    return Uploader(outbox, lambda _device: Credentials(url, TOKEN), timeout_s=2.0, **kw)


def test_offline_reports_queue_and_upload_oldest_first(tmp_path: Path) -> None:
    port = free_port()
    outbox = Outbox(tmp_path / "outbox.db")
    run_ids = [str(uuid.uuid4()) for _ in range(230)]
    for run_id in run_ids:
        outbox.enqueue(make_run(run_id, "success", 2), DEVICE)
    uploader = uploader_for(outbox, f"http://127.0.0.1:{port}")
    with pytest.raises(ServerUnreachableError, match="runs.report"):
        uploader.send_batch()
    assert outbox.count() == 230
    assert outbox.reports()[0].attempts == 1
    assert outbox.reports()[0].last_error is not None
    # The outbox survives closing (a restart); the server comes back on the same address.
    outbox.close()
    outbox = Outbox(tmp_path / "outbox.db")
    uploader = uploader_for(outbox, f"http://127.0.0.1:{port}")
    with ReportServer(TOKEN, port=port) as server:
        assert uploader.upload_all() == 230
    assert outbox.count() == 0
    sent = [run_id for request in server.store.requests for run_id in request]
    assert sent == run_ids
    assert [len(r) for r in server.store.requests] == [100, 100, 30]
    assert all(server.store.runs[r]["status"] == "success" for r in run_ids)


def test_reports_and_artifacts_go_up_over_one_kept_connection(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    with ReportServer(TOKEN) as server:
        handler = server.httpd.RequestHandlerClass
        assert isinstance(handler, type)
        assert issubclass(handler, BaseHTTPRequestHandler)
        handler.protocol_version = "HTTP/1.1"  # kept alive, as a real server keeps it
        uploader = uploader_for(outbox, server.url, batch_size=1)
        for run_id in run_ids:
            outbox.enqueue(make_run(run_id, "success", 1), DEVICE)
        assert uploader.upload_all() == 3
        kept = uploader._kept_connection(server.url)
        assert kept is not None
        assert kept.connects == 1
        uploader.close()
    assert server.store.requests == [[run_id] for run_id in run_ids]


def test_newer_report_supersedes_pending_older_one(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    outbox.enqueue(make_run(a, "running", 1), DEVICE)
    outbox.enqueue(make_run(b, "running", 1), DEVICE)
    outbox.enqueue(make_run(a, "running", 2), DEVICE)
    outbox.enqueue(make_run(a, "success", 3), DEVICE)
    rows = outbox.reports()
    assert [(r.run_id, r.run_status) for r in rows] == [(b, "running"), (a, "success")]
    with ReportServer(TOKEN) as server:
        uploader_for(outbox, server.url).upload_all()
    assert len(server.store.runs[a]["trace"]) == 3
    assert outbox.count() == 0


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(base_s=1.0, max_s=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(7)]
    for step, delay in zip([1, 2, 4, 8, 8, 8, 8], delays, strict=True):
        assert step / 2 <= delay <= step
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jitter: capped waits still differ
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_uploader_backs_off_while_server_fails_then_delivers(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    run_id = str(uuid.uuid4())
    outbox.enqueue(make_run(run_id, "failed", 1), DEVICE)
    with ReportServer(TOKEN) as server:
        server.store.fail_next = 4
        uploader = uploader_for(outbox, server.url, backoff=Backoff(base_s=0.1, max_s=5.0))
        stop = threading.Event()
        thread = threading.Thread(target=uploader.run, args=(stop,), daemon=True)
        started = time.monotonic()
        thread.start()
        deadline = started + 10
        while outbox.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join(5)
    assert outbox.count() == 0
    assert server.store.runs[run_id]["status"] == "failed"
    # four failures waited at least 0.05 + 0.1 + 0.2 + 0.4 s before the fifth try succeeded
    assert elapsed >= 0.75
    assert server.store.fail_next == 0


def test_rejected_report_is_kept_with_reason(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    outbox.enqueue(make_run(good, "success", 1), DEVICE)
    outbox.enqueue(make_run(bad, "success", 1), DEVICE)
    with ReportServer(TOKEN) as server:
        server.store.reject_ids.add(bad)
        uploader_for(outbox, server.url).upload_all()
        assert uploader_for(outbox, server.url).upload_all() == 0  # a rejected row is not sent again
    assert good in server.store.runs
    assert outbox.count(RowState.PENDING) == 0
    rejected = outbox.reports([RowState.REJECTED])
    assert [r.run_id for r in rejected] == [bad]
    assert rejected[0].reason == "this run is refused by the test"
    outbox.close()
    assert Outbox(tmp_path / "outbox.db").reports([RowState.REJECTED])[0].run_id == bad


def test_contradicting_report_is_rejected_but_rest_of_batch_counts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with ReportServer(TOKEN) as server:
        outbox.enqueue(make_run(a, "success", 1), DEVICE)
        uploader_for(outbox, server.url).upload_all()
        outbox.enqueue(make_run(a, "failed", 1), DEVICE)  # another terminal status: a contradiction
        outbox.enqueue(make_run(b, "success", 2), DEVICE)
        uploader_for(outbox, server.url).upload_all()
    assert server.store.runs[a]["status"] == "success"
    assert server.store.runs[b]["status"] == "success"
    assert [(r.run_id, r.reason) for r in outbox.reports()] == [(a, "run already ended success")]


def test_batches_stay_under_the_servers_body_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    run_ids = [str(uuid.uuid4()) for _ in range(40)]
    for run_id in run_ids:
        outbox.enqueue(make_run(run_id, "success", 30), DEVICE)
    one_run = len(outbox.reports()[0].body)
    with ReportServer(TOKEN) as server:
        server.store.max_body = one_run * 6
        # The uploader's own cap is too generous for this server: 413s make it halve the batch.
        assert uploader_for(outbox, server.url, max_batch_bytes=one_run * 20).upload_all() == 40
        assert uploader_for(outbox, server.url).upload_all() == 0
    assert sorted(server.store.runs) == sorted(run_ids)
    assert outbox.count(RowState.REJECTED) == 0
    assert all(len(request) <= 6 for request in server.store.requests)
    capped = Outbox(tmp_path / "other.db")
    for run_id in run_ids:
        capped.enqueue(make_run(run_id, "success", 30), DEVICE)
    assert len(capped.next_batch(100, max_bytes=one_run * 5 + 10)) == 5


def test_outbox_command_lists_pending_and_rejected_with_reasons(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    kept, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    outbox.enqueue(make_run(kept, "success", 1), DEVICE)
    with ReportServer(TOKEN) as server:
        server.store.reject_ids.add(kept)
        uploader_for(outbox, server.url).upload_all()
    outbox.enqueue(make_run(waiting, "running", 1), DEVICE)
    outbox.close()
    command = [sys.executable, "-m", "device_bridge", "outbox", "--state-dir", str(tmp_path), "--json"]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["runId"]: row for row in json.loads(listed.stdout)}
    assert rows[kept]["state"] == "rejected"
    assert rows[kept]["reason"] == "this run is refused by the test"
    assert rows[waiting]["state"] == "pending"
    table = subprocess.run(
        command[:-1], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
    )
    assert "this run is refused by the test" in table.stdout
