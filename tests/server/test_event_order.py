"""The event tail's order: rows in id order, never past an id a running transaction may still commit."""

from __future__ import annotations

import json
import time
from typing import NamedTuple

import httpx
import pytest
from fastapi import FastAPI

from server.runs.event_order import EventOrder, Snapshot
from server.runs.models import RunEvent
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import SseReader, new_run_id, run_report, serve_in_thread


class Row(NamedTuple):
    id: int


def ids(rows: list[Row]) -> list[int]:
    return [row.id for row in rows]


def test_rows_go_out_in_id_order_and_wait_at_a_gap_while_its_suspects_run() -> None:
    order: EventOrder[Row] = EventOrder(10)
    assert ids(order.advance([Row(11), Row(12)], Snapshot(100, frozenset()))) == [11, 12]
    # 13 is missing while 14 is visible; transaction 105 (running) may hold 13.
    assert order.advance([Row(14), Row(15)], Snapshot(100, frozenset({105}))) == []
    assert order.waiting
    assert order.position == 12
    # Other transactions come and go: 105 still runs, so 14 waits.
    assert order.advance([Row(14), Row(15)], Snapshot(104, frozenset({105, 107}))) == []
    # 105 committed: 13 is visible with the rest.
    assert ids(order.advance([Row(13), Row(14), Row(15)], Snapshot(107, frozenset({107})))) == [13, 14, 15]
    assert not order.waiting
    assert order.position == 15


def test_a_gap_whose_suspects_ended_without_it_is_passed() -> None:
    order: EventOrder[Row] = EventOrder(0)
    assert order.advance([Row(3)], Snapshot(50, frozenset({50, 52}))) == []
    # 50 and 52 ended; a transaction that began later (60) cannot hold ids 1 and 2.
    assert ids(order.advance([Row(3), Row(4)], Snapshot(60, frozenset({60})))) == [3, 4]
    assert not order.waiting


def test_without_a_snapshot_ids_are_taken_as_visible_in_order() -> None:
    order: EventOrder[Row] = EventOrder(0)
    assert ids(order.advance([Row(2), Row(5)], None)) == [2, 5]  # SQLite: gaps are deleted rows
    assert order.position == 5
    assert not order.waiting


def test_snapshot_text_is_parsed() -> None:
    assert Snapshot.parse("10:20:12,15") == Snapshot(10, frozenset({12, 15}))
    assert Snapshot.parse("10:10:") == Snapshot(10, frozenset())


def test_an_event_committed_after_a_later_one_still_arrives_in_id_order(app: FastAPI, db: Db) -> None:
    if db.kind != "postgresql":
        pytest.skip("SQLite commits one writer at a time: its ids become visible in order")
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    late, early = new_run_id(), new_run_id()
    with serve_in_thread(app) as base_url:
        reader = SseReader(base_url, acc.token)
        try:
            reader.wait_subscribed()
            # A transaction takes an event id and keeps running ...
            session = db.session_factory()
            session.add(RunEvent(account_id=acc.id, run_id=late, payload={"id": late, "status": "queued"}))
            session.flush()
            # ... while a report takes the next id and commits.
            answer = httpx.post(
                base_url + "/api/v1/runs.report",
                json={"runs": [run_report(early, wf, steps=1)]},
                headers=auth(dev.token),
            )
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)
            assert reader.events.empty(), "an event went out past an id a running transaction holds"
            session.commit()
            session.close()
            first, second = reader.next(timeout_s=5), reader.next(timeout_s=5)
            assert json.loads(first["data"])["id"] == late
            assert json.loads(second["data"])["id"] == early
            assert int(first["id"]) < int(second["id"])
        finally:
            reader.close()
