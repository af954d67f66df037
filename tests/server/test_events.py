"""run.updated over SSE through a real uvicorn server: delivery, replay, isolation, after commit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from client.api import Api
from client.exit_codes import CliError
from client.profiles import Target
from client.watch import follow
from server.app import create_app
from server.runs.events import RunEventHub, get_hub
from server.runs.models import Run, RunEvent
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import SseReader, new_run_id, run_report, serve_in_subprocess, serve_in_thread


def _report(base_url: str, token: str, *runs: dict) -> None:
    response = httpx.post(base_url + "/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(token))
    assert response.status_code == 200, response.text


def test_run_updated_after_report_replay_and_isolation(app: FastAPI, db: Db) -> None:
    app.state.sse_ping_s = 0.3
    acc, other = create_account(db), create_account(db)
    dev, other_dev = create_device(db, acc.id), create_device(db, other.id)
    wf, other_wf = create_workflow(db, acc.id), create_workflow(db, other.id)
    rid = new_run_id()
    with serve_in_thread(app) as base_url:
        mine, theirs = SseReader(base_url, acc.token), SseReader(base_url, other.token)
        try:
            mine.wait_subscribed()
            theirs.wait_subscribed()
            _report(base_url, other_dev.token, run_report(new_run_id(), other_wf, steps=1))
            started = time.monotonic()
            _report(base_url, dev.token, run_report(rid, wf, steps=2))
            first = mine.next()
            assert time.monotonic() - started < 1.0
            assert first["event"] == "run.updated"
            payload = json.loads(first["data"])
            assert payload["id"] == rid
            assert payload["status"] == "running"
            assert payload["traceLen"] == 2
            assert "trace" not in payload
            # the event exists only for committed data: the run is there as the event says
            with db.session_factory() as session:
                assert session.get(Run, rid).trace_len == 2

            _report(base_url, dev.token, run_report(rid, wf, steps=2))  # unchanged: no event
            _report(base_url, dev.token, run_report(rid, wf, status="success", steps=3))
            second = mine.next()
            assert json.loads(second["data"])["status"] == "success"
            assert int(second["id"]) > int(first["id"])

            # the other account saw only its own run
            their_event = json.loads(theirs.next()["data"])
            assert their_event["id"] != rid
            assert theirs.events.empty()
            time.sleep(0.5)
            assert any(comment.startswith("ping") for comment in mine.comments)
        finally:
            mine.close()
            theirs.close()

        # a reconnecting client gets what it missed after its Last-Event-ID, then live events
        replay = SseReader(base_url, acc.token, last_event_id=first["id"])
        try:
            replay.wait_subscribed()
            replayed = replay.next()
            assert replayed["id"] == second["id"]
            assert json.loads(replayed["data"])["status"] == "success"
            _report(base_url, dev.token, run_report(new_run_id(), wf, steps=1))
            live = replay.next()
            assert int(live["id"]) > int(second["id"])
        finally:
            replay.close()

        bad = httpx.get(base_url + "/api/v1/events", headers={**auth(acc.token), "Last-Event-ID": "x"})
        assert bad.status_code == 422
        assert httpx.get(base_url + "/api/v1/events").status_code == 401


def test_uncommitted_events_are_not_sent(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with serve_in_thread(app) as base_url:
        _report(base_url, dev.token, run_report(rid, wf, steps=1))
        with db.session_factory() as session:
            last_id = session.scalar(select(RunEvent.id).order_by(RunEvent.id.desc()).limit(1))
        reader = SseReader(base_url, acc.token, last_event_id=str(last_id))
        try:
            reader.wait_subscribed()
            # A transaction that writes an event and has not committed: nobody may see it.
            session = db.session_factory()
            session.add(RunEvent(account_id=acc.id, run_id=rid, payload={"id": rid, "status": "bogus"}))
            session.flush()
            if db.kind == "postgresql":  # SQLite's one writer would block the reporting below
                get_hub(app).notify()
                time.sleep(0.8)
                assert reader.events.empty()
            session.rollback()
            session.close()
            _report(base_url, dev.token, run_report(rid, wf, steps=2))
            event = json.loads(reader.next()["data"])
            assert event["traceLen"] == 2
            assert event["status"] == "running"
        finally:
            reader.close()


def test_events_written_by_another_server_process_arrive(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with serve_in_thread(app) as here, serve_in_subprocess(db.url) as there:
        reader = SseReader(here, acc.token)
        try:
            reader.wait_subscribed()
            started = time.monotonic()
            _report(there, dev.token, run_report(rid, wf, steps=1))
            event = reader.next(timeout_s=5)
            assert json.loads(event["data"])["id"] == rid
            assert time.monotonic() - started < 1.5  # the tail polls every 0.5 s
        finally:
            reader.close()


def test_the_tail_reconnects_when_its_database_connection_dies(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    with serve_in_thread(app) as base_url:
        reader = SseReader(base_url, acc.token)
        try:
            reader.wait_subscribed()
            first = new_run_id()
            _report(base_url, dev.token, run_report(first, wf, steps=1))
            assert json.loads(reader.next(timeout_s=5)["data"])["id"] == first
            tail = get_hub(app)._tail_connection
            assert tail is not None, "the tail keeps its connection between reads"
            raw = tail.connection.dbapi_connection
            assert raw is not None
            if db.kind == "postgresql":  # as when PostgreSQL restarts or an admin kills the session
                with db.engine.connect() as conn:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": raw.info.backend_pid})
            else:
                raw.close()
            second = new_run_id()
            _report(base_url, dev.token, run_report(second, wf, steps=1))
            # The first read fails on the dead connection; the next (0.5 s after a failed read)
            # connects afresh and delivers what was committed meanwhile: nothing is lost.
            assert json.loads(reader.next(timeout_s=5)["data"])["id"] == second
            assert get_hub(app)._tail_connection is not tail
        finally:
            reader.close()


def test_a_hub_with_nobody_listening_leaves_rows_unread_and_a_later_subscriber_gets_what_follows(
    app: FastAPI, db: Db
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with serve_in_thread(app) as base_url:
        # A wake-up poll starts the hub's tail; then nobody in this process listens.
        assert httpx.get(base_url + "/api/v1/devices/me/wakeup?wait=0", headers=auth(dev.token)).is_success
        _report(base_url, dev.token, run_report(rid, wf, steps=1))
        gate = f"{base_url}/api/v1/devices/me/runs/{rid}/gate"
        for seq in (3, 4, 5):
            body = {"seq": seq, "nodeId": f"n{seq}", "report": run_report(rid, wf, steps=seq - 1)}
            answer = httpx.post(gate, json=body, headers=auth(dev.token))
            assert answer.json()["report"]["result"] == "stored", answer.text
        with db.session_factory() as session:
            last = session.scalar(text("SELECT max(id) FROM run_events"))
        if db.kind == "postgresql":  # (SQLite's tail looks every 0.5 s without a NOTIFY to wait for)
            time.sleep(0.3)
            assert get_hub(app).last_event_id < last  # every step woke the tail; it read nothing

        reader = SseReader(base_url, acc.token)
        try:
            reader.wait_subscribed()
            body = {"seq": 6, "nodeId": "n6", "report": run_report(rid, wf, steps=5)}
            assert httpx.post(gate, json=body, headers=auth(dev.token)).json()["report"]["result"] == "stored"
            updated, step = reader.next(timeout_s=5), reader.next(timeout_s=5)
            assert int(updated["id"]) == last + 1  # nothing from before it subscribed
            assert json.loads(updated["data"])["traceLen"] == 5
            assert step["event"] == "run.step"
            assert json.loads(step["data"])["seq"] == 6
        finally:
            reader.close()


def test_a_change_right_after_the_streams_headers_arrive_is_delivered(
    app: FastAPI, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that reads the run once the headers arrive, then listens (the CLI's `runs watch`), must
    # not miss what commits in between: the headers go out only once the subscription is live. A slow
    # subscription (a loaded machine; the first of a process also starts its tail) makes it plain.
    slow_down = RunEventHub.subscribe

    async def slow_subscribe(self: RunEventHub, account_id: str) -> Any:
        await asyncio.sleep(0.5)
        return await slow_down(self, account_id)

    monkeypatch.setattr(RunEventHub, "subscribe", slow_subscribe)
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with (
        serve_in_thread(app) as base_url,
        httpx.stream(
            "GET", base_url + "/api/v1/events", headers=auth(acc.token), timeout=httpx.Timeout(10, read=5)
        ) as stream,
    ):
        assert stream.status_code == 200
        _report(base_url, dev.token, run_report(rid, wf, steps=1))  # at once, as the CLI's watch reads
        for line in stream.iter_lines():  # a read timeout (5 s) fails the test
            if line.startswith("data:") and json.loads(line[5:])["id"] == rid:
                break


def test_many_streams_opened_at_once_fit_in_a_small_pool_and_start_one_tail(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stream authenticates with a pooled connection, then subscribes (the first subscription of a
    # process starts its tail, which takes a connection of its own). Holding the first while waiting for
    # the second, a few streams opened at once used up a pool (503 after the pool's timeout), and each
    # started a tail of its own. With two pooled connections and a slow subscription, all six streams
    # open, and one tail is started.
    slow_down, start = RunEventHub.subscribe, RunEventHub._start
    starts: list[int] = []

    async def slow_subscribe(self: RunEventHub, account_id: str) -> Any:
        await asyncio.sleep(0.3)
        return await slow_down(self, account_id)

    def counted_start(self: RunEventHub) -> Any:
        starts.append(1)
        time.sleep(0.3)  # the tail's start takes a moment: streams opened meanwhile wait for it
        return start(self)

    monkeypatch.setattr(RunEventHub, "subscribe", slow_subscribe)
    monkeypatch.setattr(RunEventHub, "_start", counted_start)
    small = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 1, "db_pool_timeout_s": 5.0})
    acc = create_account(db)
    answers: list[tuple[int, str]] = []

    def open_stream(base_url: str) -> None:
        timeout = httpx.Timeout(15, read=10)
        with httpx.stream("GET", base_url + "/api/v1/events", headers=auth(acc.token), timeout=timeout) as r:
            first = next(r.iter_lines()) if r.status_code == 200 else r.read().decode()
            answers.append((r.status_code, first))

    with serve_in_thread(create_app(small)) as base_url:
        threads = [threading.Thread(target=open_stream, args=(base_url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(answers) == [(200, ": subscribed")] * 6, answers
    assert len(starts) == 1


def test_the_cli_watcher_ends_at_its_timeout_while_only_pings_come(app: FastAPI, db: Db) -> None:
    """`phoneflow runs watch --timeout` on a run that does not change: the stream brings only pings,
    which keep every read within its timeout, and the watcher must still stop at its deadline (it
    waited for an event for ever)."""
    app.state.sse_ping_s = 0.2
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    with serve_in_thread(app) as base_url:
        _report(base_url, dev.token, run_report(rid, wf, steps=1))  # running, and stays so
        seen: list[str] = []
        with Api(Target(base_url, acc.token, "test", "test")) as api:
            started = time.monotonic()
            with pytest.raises(CliError, match="after the --timeout"):
                follow(api, rid, lambda run: seen.append(run["status"]), timeout_s=1.0)
        assert time.monotonic() - started < 5
        assert seen == ["running"]
