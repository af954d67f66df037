"""The bridge's wake-up long poll (`GET /devices/me/wakeup?wait=N`): answered when a run the device
may take is queued, by this server process or another one, without a look of its own into the
database (the recheck is set longer than the wait, so only the wake-up can answer in time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server.runs import events
from server.runs.events import get_hub
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report, serve_in_subprocess, serve_in_thread

WAIT_S = 25


def _hold(base_url: str, token: str) -> tuple[threading.Thread, dict[str, Any]]:
    """The device's wake-up poll, held in a thread; its answer lands in the returned dict."""
    answer: dict[str, Any] = {}

    def poll() -> None:
        response = httpx.get(
            base_url + "/api/v1/devices/me/wakeup",
            params={"wait": WAIT_S},
            headers=auth(token),
            timeout=WAIT_S + 15,
        )
        answer["status"] = response.status_code
        answer["body"] = response.json()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread, answer


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _trigger(base_url: str, token: str, workflow_id: str, **target: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/workflows/{workflow_id}/runs", json={**target, "inputs": {}}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_queued_run_wakes_the_idle_device_then_its_claim_takes_it(app: FastAPI, db: Db) -> None:
    app.state.settings.claim_recheck_interval_s = WAIT_S + 5  # no look of its own within the wait
    acc = create_account(db)
    dev, lab, other = create_device(db, acc.id), create_device(db, acc.id), create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    with serve_in_thread(app) as base_url:
        assert httpx.put(
            f"{base_url}/api/v1/devices/{lab.id}/tags", json={"tags": ["lab"]}, headers=auth(acc.token)
        ).is_success
        empty = httpx.get(base_url + "/api/v1/devices/me/wakeup", headers=auth(dev.token))
        assert empty.json() == {"runQueued": False}
        waiters = get_hub(app).queued_waiters

        # the device's own run
        thread, answer = _hold(base_url, dev.token)
        _until(lambda: waiters.count() == 1, "the poll did not start waiting")
        _trigger(base_url, acc.token, wf.id, deviceId=other.id)  # another phone's run: no wake-up
        run_id = _trigger(base_url, acc.token, wf.id, deviceId=dev.id)
        thread.join(WAIT_S + 20)
        assert answer == {"status": 200, "body": {"runQueued": True}}
        # the wake-up claimed nothing: the claim hands the run out, once
        claimed = httpx.post(base_url + "/api/v1/devices/me/claim", headers=auth(dev.token))
        assert claimed.json()["run"]["id"] == run_id
        assert httpx.post(base_url + "/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204

        # a run any phone tagged `lab` may take wakes the tagged phone
        thread, answer = _hold(base_url, lab.token)
        _until(lambda: waiters.count() == 1, "the tagged phone's poll did not start waiting")
        tagged = _trigger(base_url, acc.token, wf.id, deviceTag="lab")
        thread.join(WAIT_S + 20)
        assert answer == {"status": 200, "body": {"runQueued": True}}
        assert (
            httpx.post(base_url + "/api/v1/devices/me/claim", headers=auth(lab.token)).json()["run"]["id"]
            == tagged
        )
    assert waiters.count() == 0


def test_a_run_queued_on_another_server_process_wakes_the_poll(app: FastAPI, db: Db, db_url: str) -> None:
    """The poll waits on one process, the run is queued on another: PostgreSQL's NOTIFY (or, on
    SQLite, the event tail's own reading) carries the wake-up across."""
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    recheck = {"PHONEFLOW_CLAIM_RECHECK_INTERVAL_S": str(WAIT_S + 5)}
    with serve_in_subprocess(db_url, extra_env=recheck) as waiting_url, serve_in_thread(app) as queuing_url:
        assert httpx.get(waiting_url + "/api/v1/devices/me/wakeup", headers=auth(dev.token)).json() == {
            "runQueued": False
        }
        thread, answer = _hold(waiting_url, dev.token)
        time.sleep(0.5)  # the poll is held on the other process (nothing to poll for from here)
        run_id = _trigger(queuing_url, acc.token, wf.id, deviceId=dev.id)
        thread.join(WAIT_S + 20)
        assert answer == {"status": 200, "body": {"runQueued": True}}
        claimed = httpx.post(waiting_url + "/api/v1/devices/me/claim", headers=auth(dev.token))
        assert claimed.json()["run"]["id"] == run_id


def test_a_process_where_only_wake_up_polls_listen_reads_its_tail_for_queued_runs_alone(
    app: FastAPI, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another phone's steps (each one a NOTIFY) leave the tail unread; a queued run's NOTIFY says it
    queued a run, and that wakes the poll (on PostgreSQL: SQLite's tail reads on its own clock)."""
    if db.kind != "postgresql":
        pytest.skip("the NOTIFY that says what it announces is PostgreSQL's")
    app.state.settings.claim_recheck_interval_s = WAIT_S + 5  # no look of its own within the wait
    # Nor a read of the tail's own clock (every 5 s it reads what the listener heard of while a poll
    # waits): falling between the steps and the look below, it read them and failed the test.
    monkeypatch.setattr(events, "LISTENING_POLL_INTERVAL_S", WAIT_S + 5)
    acc = create_account(db)
    idle, busy = create_device(db, acc.id), create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    hub = get_hub(app)
    with serve_in_thread(app) as base_url:
        thread, answer = _hold(base_url, idle.token)
        _until(lambda: hub.queued_waiters.count() == 1, "the poll did not start waiting")
        _until(lambda: hub._listener is not None and hub._listener.listening, "the hub did not listen")
        # A listener that starts wakes the tail for what it may have missed: that read is over first
        # (it could otherwise fall after the steps below and read them).
        time.sleep(0.5)
        _until(lambda: not hub._unread, "the tail did not read what its listener's start announced")
        read = hub.last_event_id
        report = {"runs": [run_report(rid, wf, steps=1)]}
        assert httpx.post(base_url + "/api/v1/runs.report", json=report, headers=auth(busy.token)).is_success
        gate = f"{base_url}/api/v1/devices/me/runs/{rid}/gate"
        for seq in (3, 4, 5):
            body = {"seq": seq, "nodeId": f"n{seq}", "report": run_report(rid, wf, steps=seq - 1)}
            assert (
                httpx.post(gate, json=body, headers=auth(busy.token)).json()["report"]["result"] == "stored"
            )
        time.sleep(0.3)
        assert hub.last_event_id == read  # the steps' NOTIFYs woke no read
        assert not answer
        run_id = _trigger(base_url, acc.token, wf.id, deviceId=idle.id)
        thread.join(10)
        assert answer == {"status": 200, "body": {"runQueued": True}}
        assert hub.last_event_id > read
        claimed = httpx.post(base_url + "/api/v1/devices/me/claim", headers=auth(idle.token))
        assert claimed.json()["run"]["id"] == run_id
