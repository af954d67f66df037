"""The lane for ordinary claims (server/runs/claim_lane.py) answers exactly as the route: the same
claimed run and 204, the same refusals word for word, the same 413, 500, request id and metrics."""

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
from server.runs import endpoints
from server.runs.claim_lane import ClaimLane
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.lane_support import spy_on_input_guard, with_and_without

PATH = "/api/v1/devices/me/claim"
Send = Callable[[TestClient], httpx.Response]


@pytest.fixture
def both(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """A client of the app as it is (with the lane) and one of the same app without the lane."""
    with with_and_without(settings, ClaimLane) as clients:
        yield clients


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached the input guard (the lane answers before it)."""
    return spy_on_input_guard(monkeypatch)


def _answer(response: httpx.Response) -> tuple[int, list[str], str | None, Any]:
    body = response.json() if response.content else None
    if isinstance(body, dict) and "run" in body:
        body = {**body, "run": sorted(body["run"])}  # each side claims its own run
    names = sorted(response.headers.keys())
    return response.status_code, names, response.headers.get("content-type"), body


def test_ordinary_claims_take_the_lane_and_answer_as_the_route_does(
    both: tuple[TestClient, TestClient], db: Db, guarded: list[str]
) -> None:
    lane, route = both
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)

    def queue() -> str:
        made = lane.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    asks: list[dict[str, Any]] = [
        {},
        {"json": {"lease": True}},
        {"content": b'{"lease": false}', "headers": {"Content-Type": "Application/JSON; charset=utf-8"}},
    ]
    timed = REQUEST_SECONDS.labels("POST", PATH)._sum
    for ask in asks:
        for_lane, for_route = queue(), queue()
        guarded.clear()
        before = timed.get()
        headers = {**auth(dev.token), **ask.get("headers", {})}
        sent = {key: value for key, value in ask.items() if key != "headers"}
        answered = lane.post(PATH, headers=headers, **sent)
        assert timed.get() > before  # timed under the route's name, as the router would have named it
        assert answered.status_code == 200, answered.text
        assert answered.json()["run"]["id"] == for_lane
        assert answered.headers["x-request-id"]
        assert not guarded, ask  # the lane answered, before the input guard
        routed = route.post(PATH, headers=headers, **sent)
        assert routed.json()["run"]["id"] == for_route
        assert _answer(answered) == _answer(routed)
        assert guarded == [PATH]  # the app without the lane: through the guard and the route
    nothing = [client.post(PATH, headers=auth(dev.token)) for client in (lane, route)]
    assert nothing[0].status_code == 204
    assert _answer(nothing[0]) == _answer(nothing[1])


def _refusals(db: Db) -> dict[str, Send]:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    revoked = create_device(db, acc.id)
    with db.session_factory.begin() as session:
        session.execute(update(Device).where(Device.id == revoked.id).values(revoked_at=utcnow()))

    def post(
        token: str | None,
        content: bytes | None = b'{"lease": true}',
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> Send:
        sent = {"Content-Type": "application/json", **(auth(token) if token else {}), **(headers or {})}
        return lambda client: client.post(PATH + query, content=content, headers=sent)

    def bare(token: str | None) -> Send:
        return lambda client: client.post(PATH, headers=auth(token) if token else {})

    raw = json.dumps({"lease": True}).encode()
    return {
        "unknown device token": post("pf_dev_nobody"),
        "unknown device token, no body": bare("pf_dev_nobody"),
        "revoked device": post(revoked.token),
        "revoked device, no body": bare(revoked.token),
        "account token": post(acc.token),
        "no token": post(None),
        "no token, no body": bare(None),
        "another scheme": post(None, headers={"Authorization": f"Basic {dev.token}"}),
        "text/plain": post(dev.token, headers={"Content-Type": "text/plain"}),
        "a query": post(dev.token, query="?dryRun=1"),
        "malformed JSON": post(dev.token, raw[:-3]),
        "not valid": post(dev.token, b'{"lease": "maybe"}'),
        "not an object": post(dev.token, b"[1]"),
        "NaN": post(dev.token, b'{"lease": NaN}'),
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
    dev = create_device(db, acc.id)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(endpoints, "claimer", broken)
    answers = [client.post(PATH, headers=auth(dev.token)) for client in (lane, route)]
    assert answers[0].status_code == 500
    assert _answer(answers[0]) == _answer(answers[1])
