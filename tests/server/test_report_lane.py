"""The lane for ordinary runs.report requests (server/runs/report_lane.py) answers exactly as the route:
the same stored runs, the same refusals word for word, the same 413, 500, request id and metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from server.db import utcnow
from server.devices.models import Device
from server.metrics import REQUEST_SECONDS
from server.runs import endpoints, report_lane
from server.runs.report_lane import ReportLane
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.lane_support import spy_on_input_guard, with_and_without
from tests.server.runs_support import new_run_id, run_report

PATH = "/api/v1/runs.report"
Send = Callable[[TestClient], httpx.Response]


@pytest.fixture
def both(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """A client of the app as it is (with the lane) and one of the same app without the lane."""
    with with_and_without(settings, ReportLane) as clients:
        yield clients


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached the input guard (the lane answers before it)."""
    return spy_on_input_guard(monkeypatch)


def _answer(response: httpx.Response) -> tuple[int, list[str], str, Any]:
    body = response.json()
    if isinstance(body, dict) and "runs" in body:
        body = [{**run, "id": "…"} for run in body["runs"]]  # each side sends its own run ids
    names = sorted(response.headers.keys())
    return response.status_code, names, response.headers["content-type"], body


def test_ordinary_reports_take_the_lane_and_store_as_the_route_does(
    both: tuple[TestClient, TestClient], db: Db, guarded: list[str]
) -> None:
    lane, route = both
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    other = create_workflow(db, acc.id, name="other")

    def send(client: TestClient, content_type: str = "application/json") -> httpx.Response:
        runs = [
            run_report(new_run_id(), wf, steps=3),
            run_report(new_run_id(), wf, status="success", steps=2),
        ]
        runs.append({**run_report(new_run_id(), wf), "workflowVersionId": other.version_id})  # rejected
        body = httpx.Request("POST", "/", json={"runs": runs}).content
        return client.post(PATH, content=body, headers={**auth(dev.token), "Content-Type": content_type})

    timed = REQUEST_SECONDS.labels("POST", PATH)._sum
    for content_type in ("application/json", "Application/JSON; charset=utf-8"):
        before = timed.get()
        answered = send(lane, content_type)
        assert timed.get() > before  # timed under the route's name, as the router would have named it
        assert answered.status_code == 200, answered.text
        assert [r["result"] for r in answered.json()["runs"]] == ["stored", "stored", "rejected"]
        assert answered.headers["x-request-id"]
        assert not guarded  # the lane answered, before the input guard
        assert _answer(answered) == _answer(send(route, content_type))
        assert guarded == [PATH]  # the app without the lane: through the guard and the route
        guarded.clear()


def _refusals(db: Db) -> dict[str, Send]:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    revoked = create_device(db, acc.id)
    with db.session_factory.begin() as session:
        session.execute(update(Device).where(Device.id == revoked.id).values(revoked_at=utcnow()))

    def body(**fields: Any) -> dict[str, Any]:
        return {"runs": [{**run_report(new_run_id(), wf, steps=1), **fields}]}

    def post(
        token: str | None,
        content: bytes | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> Send:
        sent = {"Content-Type": "application/json", **(auth(token) if token else {}), **(headers or {})}
        return lambda client: client.post(
            PATH + query,
            content=content if content is not None else httpx.Request("POST", "/", json=body()).content,
            headers=sent,
        )

    raw = json.dumps(body()).encode()
    return {
        "unknown device token": post("pf_dev_nobody"),
        "revoked device": post(revoked.token),
        "account token": post(acc.token),
        "no token": post(None),
        "another scheme": post(None, headers={"Authorization": f"Basic {dev.token}"}),
        "text/plain": post(dev.token, headers={"Content-Type": "text/plain"}),
        "a query": post(dev.token, query="?dryRun=1"),
        "malformed JSON": post(dev.token, raw[:-3]),
        "not valid": post(dev.token, b'{"runs": [{"id": 1}]}'),
        "empty body": post(dev.token, b""),
        "NaN": post(dev.token, raw.replace(b'"inputs": {}', b'"inputs": {"k": NaN}')),
        "NUL": post(dev.token, raw.replace(b'"inputs": {}', b'"inputs": {"k": "\\u0000"}')),
        "too large (declared)": post(dev.token, raw + b" " * (64 * 1024)),
        "too large (streamed)": lambda client: client.post(
            PATH, content=iter([raw[:-1], b" " * (64 * 1024), b"}"]), headers=auth(dev.token)
        ),
    }


def test_every_refusal_of_the_lane_is_the_routes_word_for_word(
    both: tuple[TestClient, TestClient], db: Db
) -> None:
    lane, route = both
    for name, send in _refusals(db).items():
        answered = send(lane)
        assert answered.status_code >= 400, (name, answered.text)
        assert _answer(answered) == _answer(send(route)), name


def test_a_failure_inside_the_lane_is_the_routes_500(
    both: tuple[TestClient, TestClient], db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane, route = both
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(report_lane, "apply_reports", broken)
    monkeypatch.setattr(endpoints, "apply_reports", broken)
    answers = [
        client.post(PATH, json={"runs": [run_report(new_run_id(), wf)]}, headers=auth(dev.token))
        for client in (lane, route)
    ]
    assert answers[0].status_code == 500
    assert _answer(answers[0]) == _answer(answers[1])
