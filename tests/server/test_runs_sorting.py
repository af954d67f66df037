"""GET /api/v1/runs: sort orders with their cursors, the trigger filter, search by run id and input
value, date ranges on the order's own time; the export with the same filters, as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from server.db import utcnow
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import T0, iso, new_run_id, run_report


def _ids(client: TestClient, token: str, **params: Any) -> list[str]:
    response = client.get("/api/v1/runs", params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["runs"]]


def _all_pages(client: TestClient, token: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/runs", params={**params, **({"cursor": cursor} if cursor else {})}, headers=auth(token)
        ).json()
        seen.extend(run["id"] for run in page["runs"])
        cursor = page["nextCursor"]
        if cursor is None:
            return seen


def _report(client: TestClient, token: str, body: dict[str, Any]) -> None:
    answer = client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(token))
    assert answer.json()["runs"][0]["result"] == "stored", answer.text


def test_sort_by_start_and_duration_with_cursors(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    # Three runs queued through the API (made now, not started: their start is their creation),
    # and device runs that started over the last hours with various durations.
    queued = []
    for _ in range(3):
        answer = client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        assert answer.status_code == 201, answer.text
        queued.append(answer.json()["id"])
    now = utcnow()
    device_runs = []  # (id, started, duration s)
    for index, (hours_ago, steps) in enumerate([(5, 4), (1, 1), (3, 9), (2, 2), (4, 6)]):
        started = now - timedelta(hours=hours_ago)
        run_id = new_run_id()
        _report(client, dev.token, run_report(run_id, wf, status="success", steps=steps, started_at=started))
        device_runs.append((run_id, started, steps + 1, index))
    # A claimed run: made first (queued[0]), started now, so it is the newest *start*.
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()["run"]["id"]
    assert claimed == queued[0]

    by_start = [rid for rid, *_ in sorted(device_runs, key=lambda r: r[1], reverse=True)]
    newest_start = _all_pages(client, acc.token, sort="-startedAt", limit=2)
    # queued[0] started at the claim, after the other two were made: its start is the newest.
    assert newest_start == [queued[0], queued[2], queued[1], *by_start]
    assert _all_pages(client, acc.token, sort="startedAt", limit=3) == list(reversed(newest_start))
    # Creation order puts the claimed run among the other queued ones.
    assert _ids(client, acc.token)[:3] == [queued[2], queued[1], queued[0]]

    by_duration = [rid for rid, *_ in sorted(device_runs, key=lambda r: r[2], reverse=True)]
    longest = _all_pages(client, acc.token, sort="-durationMs", limit=2)
    assert longest[: len(by_duration)] == by_duration
    assert set(longest[len(by_duration) :]) == set(queued)  # unfinished runs last
    assert _all_pages(client, acc.token, sort="durationMs", limit=4) == list(reversed(longest))

    # The range bounds the order's time: starts between 4.5 h and 1.5 h ago.
    window = {
        "from": iso(now - timedelta(hours=4, minutes=30)),
        "to": iso(now - timedelta(hours=1, minutes=30)),
    }
    assert _ids(client, acc.token, sort="-startedAt", **window) == [
        rid
        for rid, started, *_ in sorted(device_runs, key=lambda r: r[1], reverse=True)
        if now - timedelta(hours=4, minutes=30) <= started < now - timedelta(hours=1, minutes=30)
    ]

    # A cursor of one order is refused by another, saying so.
    first = client.get("/api/v1/runs", params={"sort": "-durationMs", "limit": 1}, headers=auth(acc.token))
    mixed = client.get(
        "/api/v1/runs",
        params={"sort": "startedAt", "cursor": first.json()["nextCursor"]},
        headers=auth(acc.token),
    )
    assert mixed.status_code == 422
    assert mixed.json()["errors"][0]["pointer"] == "query:cursor"
    assert "sort=-durationMs" in mixed.json()["errors"][0]["message"]
    bad_sort = client.get("/api/v1/runs", params={"sort": "status"}, headers=auth(acc.token))
    assert bad_sort.status_code == 422
    assert bad_sort.json()["errors"][0]["pointer"] == "query:/sort"


def test_trigger_filter_and_search(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    other_dev, other_wf = create_device(db, other.id), create_workflow(db, other.id)
    api_run = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": {"order": "Z-100_%"}},
        headers=auth(acc.token),
    ).json()["id"]
    device_a, device_b = new_run_id(), new_run_id()
    _report(client, dev.token, run_report(device_a, wf, inputs={"order": "A-17", "note": "Rush delivery"}))
    _report(
        client, dev.token, run_report(device_b, wf, started_at=T0 + timedelta(minutes=1), inputs={"n": 42})
    )
    _report(client, other_dev.token, run_report(new_run_id(), other_wf, inputs={"order": "A-17"}))

    assert _ids(client, acc.token, trigger="api") == [api_run]
    assert set(_ids(client, acc.token, trigger="device")) == {device_a, device_b}
    assert _ids(client, acc.token, trigger="webhook") == []
    assert client.get("/api/v1/runs?trigger=cron", headers=auth(acc.token)).status_code == 422

    assert _ids(client, acc.token, q="a-17") == [device_a]  # an input value, any case; own account only
    assert _ids(client, acc.token, q="rush") == [device_a]  # the beginning of a value
    assert _ids(client, acc.token, q="delivery") == []  # not the middle of one
    assert _ids(client, acc.token, q="42") == [device_b]  # a number's text
    assert _ids(client, acc.token, q="z-100_%") == [api_run]
    assert _ids(client, acc.token, q="z-1000") == []
    assert _ids(client, acc.token, q="order") == []  # names are not values
    assert _ids(client, acc.token, q=device_b.upper()) == [device_b]  # a whole id
    assert _ids(client, acc.token, q=device_a[:8]) == [device_a]  # the start of an id
    assert _ids(client, acc.token, q="a-17", trigger="api") == []  # filters combine
    assert _ids(client, other.token, q=device_a) == []


def test_export_takes_the_list_filters_and_writes_csv(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id, name='=HYPERLINK("http://x")')
    wf = create_workflow(db, acc.id, name="Capture order")
    now = utcnow()
    ok, failed = new_run_id(), new_run_id()
    _report(
        client,
        dev.token,
        run_report(
            ok, wf, status="success", steps=2, started_at=now - timedelta(hours=2), inputs={"order": "A-1"}
        ),
    )
    _report(
        client,
        dev.token,
        run_report(
            failed,
            wf,
            status="failed",
            steps=1,
            started_at=now - timedelta(hours=1),
            inputs={"order": "=1+2"},
        ),
    )
    _report(client, dev.token, run_report(new_run_id(), wf, status="cancelled", steps=1, started_at=now))

    filtered = client.get("/api/v1/runs/export", params={"status": "failed"}, headers=auth(acc.token))
    assert filtered.status_code == 200, filtered.text
    runs = json.loads(filtered.content)
    assert [r["id"] for r in runs] == [failed]
    assert runs[0]["trace"][0]["seq"] == 1

    as_csv = client.get(
        "/api/v1/runs/export",
        params={"format": "csv", "trigger": "device", "sort": "-startedAt"},
        headers=auth(acc.token),
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["status"] for row in rows] == ["cancelled", "failed", "success"]
    assert rows[2]["id"] == ok
    assert rows[2]["workflowName"] == "Capture order"
    assert rows[2]["deviceName"] == '\'=HYPERLINK("http://x")'  # a formula-looking cell is neutralised
    assert json.loads(rows[2]["inputs"]) == {"order": "A-1"}
    assert rows[2]["durationMs"] == "3000"
    assert rows[2]["nSteps"] == "2"
    assert rows[1]["errorMessage"] == "no element with text 'Saved' on screen"
    searched = client.get(
        "/api/v1/runs/export", params={"format": "csv", "q": "A-1"}, headers=auth(acc.token)
    )
    assert [row["id"] for row in csv.DictReader(io.StringIO(searched.text))] == [ok]

    too_old = client.get(
        "/api/v1/runs/export", params={"from": iso(now - timedelta(days=40))}, headers=auth(acc.token)
    )
    assert too_old.status_code == 422
    assert too_old.json()["errors"][0]["pointer"] == "query:from"
    assert "30 days" in too_old.json()["errors"][0]["message"]
    assert client.get("/api/v1/runs/export?format=xml", headers=auth(acc.token)).status_code == 422
