"""Which runs ask for a video (server/runs/video.py): a run that ends with frames, and a frame stored
after its run's end. A run without frames asks for nothing, however it ends, and the assembler runs
no query for it: the run's row says whether it has frames (`runs.has_frames`, set by the frame's
upload). A frame racing the run's end (PostgreSQL, READ COMMITTED): one of the two asks."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from server.devices.models import Device
from server.runs import video
from server.runs.endpoints import apply_reports
from server.runs.models import Run
from server.runs.schemas import RunReportIn
from tests.server.factories import Db, WorkflowFixture, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_run_video import upload_frame

pytestmark = pytest.mark.timeout(60)

ENDED = "success"


@pytest.fixture
def asked(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Every request the app's video assembler gets: (the asking thread's name, the run ids)."""
    assembler = app.state.video_assembler
    requests: list[tuple[str, list[str]]] = []
    request = assembler.request

    def spy(run_ids: Sequence[str]) -> None:
        requests.append((threading.current_thread().name, list(run_ids)))
        request(run_ids)

    monkeypatch.setattr(assembler, "request", spy)
    return requests


def asked_ids(asked: list[tuple[str, list[str]]]) -> list[str]:
    return [run_id for _, run_ids in asked for run_id in run_ids]


def report(client: TestClient, token: str, *runs: dict[str, Any]) -> None:
    answer = client.post("/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    assert {run["result"] for run in answer.json()["runs"]} == {"stored"}, answer.text


def gate_report(client: TestClient, token: str, body: dict[str, Any]) -> None:
    answer = client.post(
        f"/api/v1/devices/me/runs/{body['id']}/gate",
        json={"seq": len(body["trace"]) + 1, "nodeId": "next", "report": body},
        headers=auth(token),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["report"]["result"] == "stored", answer.text


def claim_report(client: TestClient, token: str, body: dict[str, Any]) -> None:
    """The end carried by the phone's next claim (nothing is queued: no run comes back)."""
    answer = client.post("/api/v1/devices/me/claim", json={"report": body}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["report"]["result"] == "stored", answer.text


def claimed_run(client: TestClient, db: Db, account_token: str, device: Any, wf: WorkflowFixture) -> str:
    """A run the server made (triggered by the API), claimed by `device`: its reports go the way of a
    stored run's (on PostgreSQL, one statement with its run.updated)."""
    body = {"deviceId": device.id, "inputs": {}}
    run_id = str(
        client.post(f"/api/v1/workflows/{wf.id}/runs", json=body, headers=auth(account_token)).json()["id"]
    )
    assert client.post("/api/v1/devices/me/claim", headers=auth(device.token)).json()["run"]["id"] == run_id
    return run_id


def trigger_of(db: Db, run_id: str) -> str:
    with db.session_factory() as session:
        return str(session.scalars(select(Run.trigger).where(Run.id == run_id)).one())


def flags(db: Db, run_ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
    with db.session_factory() as session:
        rows = session.execute(select(Run.id, Run.status, Run.has_frames).where(Run.id.in_(run_ids)))
        return {row.id: (row.status, row.has_frames) for row in rows}


def test_runs_without_frames_ask_for_no_video_and_cost_no_query(
    client: TestClient, app: FastAPI, db: Db, asked: list[tuple[str, list[str]]]
) -> None:
    """Every way a run ends: the assembler is never asked, so its thread never starts (no query)."""
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    ended: list[str] = []

    alone = new_run_id()  # a phone's own run, reported once it ended (PostgreSQL: fresh_run.py)
    report(client, dev.token, run_report(alone, wf, status=ENDED, steps=2))
    pair = [new_run_id(), new_run_id()]  # two of them in one batch (insert_runs_if_new)
    report(client, dev.token, *(run_report(run_id, wf, status=ENDED, steps=1) for run_id in pair))
    moving = new_run_id()  # reported as it goes, then its end alone (stored_run.py)
    report(client, dev.token, run_report(moving, wf, steps=1))
    report(client, dev.token, run_report(moving, wf, status="failed", steps=2))
    batch = [new_run_id(), new_run_id()]  # as it goes, then the ends in one batch (STORE_NEWER)
    report(client, dev.token, *(run_report(run_id, wf, steps=1) for run_id in batch))
    report(client, dev.token, *(run_report(run_id, wf, status=ENDED, steps=2) for run_id in batch))
    gated = new_run_id()  # the end carried by the step gate
    report(client, dev.token, run_report(gated, wf, steps=1))
    gate_report(client, dev.token, run_report(gated, wf, status=ENDED, steps=2))
    made = claimed_run(client, db, acc.token, dev, wf)  # a run the server made, its end alone
    report(client, dev.token, run_report(made, wf, status=ENDED, steps=1, trigger=trigger_of(db, made)))
    lone = new_run_id()  # a phone's own run alone again: PostgreSQL's lone lane knows the device now
    report(client, dev.token, run_report(lone, wf, status=ENDED, steps=2))
    carried = new_run_id()  # the end carried by the next claim
    report(client, dev.token, run_report(carried, wf, steps=1))
    claim_report(client, dev.token, run_report(carried, wf, status=ENDED, steps=2))
    queued = str(
        client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        ).json()["id"]
    )
    assert client.post(f"/api/v1/runs/{queued}/cancel", headers=auth(acc.token)).status_code == 200
    ended = [alone, *pair, moving, *batch, gated, made, lone, carried, queued]

    assert {run_id: status for run_id, (status, _) in flags(db, ended).items()} == {
        alone: ENDED,
        pair[0]: ENDED,
        pair[1]: ENDED,
        moving: "failed",
        batch[0]: ENDED,
        batch[1]: ENDED,
        gated: ENDED,
        made: ENDED,
        lone: ENDED,
        carried: ENDED,
        queued: "cancelled",
    }
    assert not any(has for _, has in flags(db, ended).values())
    time.sleep(0.2)  # a request would have been made at the commit; give a stray thread a moment
    assert asked == []
    assert app.state.video_assembler._thread is None  # never started: not one query


def test_frames_before_the_end_ask_for_the_video_once(
    client: TestClient, app: FastAPI, db: Db, asked: list[tuple[str, list[str]]]
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    alone, gated, carried = new_run_id(), new_run_id(), new_run_id()
    made = claimed_run(client, db, acc.token, dev, wf)
    batch = [new_run_id(), new_run_id()]
    for run_id in (alone, gated, carried, *batch):
        report(client, dev.token, run_report(run_id, wf, steps=1))
    for run_id in (alone, gated, carried, *batch, made):
        upload_frame(client, dev.token, run_id, 1, 1.0)
    assert asked == []  # frames of moving runs: nothing to assemble yet
    assert all(has for _, has in flags(db, [alone, gated, carried, *batch, made]).values())

    report(client, dev.token, run_report(alone, wf, status=ENDED, steps=1))
    gate_report(client, dev.token, run_report(gated, wf, status=ENDED, steps=1))
    report(client, dev.token, *(run_report(run_id, wf, status=ENDED, steps=1) for run_id in batch))
    report(client, dev.token, run_report(made, wf, status=ENDED, steps=1, trigger=trigger_of(db, made)))
    claim_report(client, dev.token, run_report(carried, wf, status=ENDED, steps=1))
    assert sorted(asked_ids(asked)) == sorted([alone, gated, carried, *batch, made])


def test_a_frame_after_the_end_asks_for_the_video(
    client: TestClient, db: Db, asked: list[tuple[str, list[str]]]
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    report(client, dev.token, run_report(rid, wf, status=ENDED, steps=2))
    assert asked == []
    upload_frame(client, dev.token, rid, 1, 1.0)
    assert asked_ids(asked) == [rid]
    assert flags(db, [rid]) == {rid: (ENDED, True)}
    upload_frame(client, dev.token, rid, 2, 1.5)  # each late frame asks (the video is made again with it)
    assert asked_ids(asked) == [rid, rid]


# --- the race: a frame stored while the run's final report ends it (PostgreSQL) -------------------


def _blocked_by(db: Db, pid: int, timeout_s: float = 10) -> None:
    """Until a backend waits for a lock `pid` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                {"pid": pid},
            ).scalar()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing waited for backend {pid} within {timeout_s} s")


def _in_thread(name: str, work: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("first", ["frame", "end"])
def test_a_frame_racing_the_runs_end_asks_for_the_video(
    client: TestClient, app: FastAPI, db: Db, asked: list[tuple[str, list[str]]], first: str
) -> None:
    """The frame's flag is written by `UPDATE ... RETURNING status`: when it goes first, the end waits for
    its row lock and returns the flag (the end asks); when the end goes first, the flag's UPDATE waits
    and returns the ended status (the frame asks). Made deterministic by holding the first one's
    transaction open until the second waits for it."""
    if db.kind != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time (BEGIN IMMEDIATE): no race to have")
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    report(client, dev.token, run_report(rid, wf, steps=1))
    factory = app.state.session_factory  # its sessions know the app's assembler
    final = RunReportIn.model_validate(run_report(rid, wf, status=ENDED, steps=2))

    def end(session: Any) -> None:
        apply_reports(session, app, session.get(Device, dev.id), [final])

    def frame(session: Any) -> None:
        video.frame_stored(session, rid)

    hold, then = (frame, end) if first == "frame" else (end, frame)
    held = factory()
    with held.begin():
        hold(held)
        pid = held.connection().connection.driver_connection.info.backend_pid

        def second() -> None:
            with factory.begin() as session:
                then(session)

        thread, errors = _in_thread(then.__name__, second)
        _blocked_by(db, pid)
    thread.join(20)
    held.close()
    assert not thread.is_alive()
    assert errors == []
    assert flags(db, [rid]) == {rid: (ENDED, True)}
    # Exactly one request, from the transaction that came second and saw the other's write.
    assert asked == [(then.__name__, [rid])]
