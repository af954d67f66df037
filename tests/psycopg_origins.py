"""pytest plugin: who made a PostgreSQL connection that was garbage-collected while still open.

psycopg warns (`ResourceWarning: ... was deleted while still open`) from whichever test the
garbage collector happens to run in, which says nothing about the code that leaked it. Now and
then a full run shows one (see the server issue's notes). This plugin keeps, on every psycopg
connection made in the test process, the test that was running and the stack that made it; when
one is collected open, both are kept and listed in the terminal summary, so the next occurrence
names its origin instead of an innocent bystander.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

_current_test = ["(outside a test)"]
_leaks: list[str] = []
_ORIGIN = "_phoneflow_origin"


def _noting_origin(connect: Callable[..., psycopg.Connection[Any]]) -> Callable[..., psycopg.Connection[Any]]:
    def connect_noting_origin(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        connection = connect(*args, **kwargs)
        stack = "".join(traceback.format_stack(limit=25)[:-1])
        setattr(connection, _ORIGIN, (_current_test[0], stack))
        return connection

    return connect_noting_origin


def _reporting_leaks(delete: Callable[..., None]) -> Callable[..., None]:
    def delete_reporting_leaks(self: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> None:
        origin = getattr(self, _ORIGIN, None)
        if origin is not None and not self.closed:
            made_in, stack = origin
            _leaks.append(f"made in {made_in}, collected open during {_current_test[0]}:\n{stack}")
        delete(self, *args, **kwargs)

    return delete_reporting_leaks


def pytest_configure(config: pytest.Config) -> None:
    # SQLAlchemy and our listener call `psycopg.connect`, which is `Connection.connect`.
    connect = _noting_origin(psycopg.Connection.connect)
    psycopg.connect = connect  # type: ignore[assignment]
    psycopg.Connection.connect = connect  # type: ignore[assignment,method-assign]
    psycopg.Connection.__del__ = _reporting_leaks(psycopg.Connection.__del__)  # type: ignore[method-assign]


def pytest_runtest_setup(item: pytest.Item) -> None:
    _current_test[0] = item.nodeid


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _leaks:
        terminalreporter.section("PostgreSQL connections garbage-collected while open")
        for leak in _leaks:
            terminalreporter.write_line(leak)
