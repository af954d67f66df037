"""What the lane tests share (test_report_lane.py, test_claim_lane.py): the app with and without a lane,
and the requests that reached the input guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.app import create_app
from server.input_guard import InputGuardMiddleware
from server.settings import Settings


@contextmanager
def with_and_without(settings: Settings, lane: object) -> Iterator[tuple[TestClient, TestClient]]:
    """A client of the app as it is (with `lane`) and one of the same app without it."""
    without: FastAPI = create_app(settings)
    without.user_middleware = [m for m in without.user_middleware if m.cls is not lane]
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as with_lane,
        TestClient(without, raise_server_exceptions=False) as route,
    ):
        yield with_lane, route


def spy_on_input_guard(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reach the input guard from now on (a lane answers before it)."""
    seen: list[str] = []
    original = InputGuardMiddleware.__call__

    async def spy(self: InputGuardMiddleware, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("path", ""))
        await original(self, scope, receive, send)

    monkeypatch.setattr(InputGuardMiddleware, "__call__", spy)
    return seen
