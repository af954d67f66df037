"""Hostile form posts and query strings to every dashboard page (hypothesis), on SQLite and PostgreSQL.

The dashboard's routes are read off the app, so a page added later is fuzzed too. Every POST
form gets its fields (as the route declares them) with one or more replaced by something hostile
(NUL, lone surrogates as raw bytes, invalid UTF-8 percent-escapes, huge numbers, markup, very long
text), with the session's CSRF token most of the time; every GET page gets hostile query
parameters; path parameters are sometimes hostile too. No answer may be a 5xx, and afterwards
every page of the account still answers 200: nothing a form accepted breaks a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.factories import Db, auth
from tests.server.test_dashboard_support import sign_in
from tests.server.test_fuzz_writes import World

EXAMPLES = 150  # per database
# Raw (already form-encoded) values: what a browser never sends but a script can.
RAW_VALUES = ["%00", "%ED%A0%80", "%FF%FE", "%C0%AF", "a%00b", "%25", "%E2%80%AE"]
TEXT_VALUES = [
    "",
    " ",
    "\x00",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "../../etc/passwd",
    "9" * 40,
    "-1",
    "0",
    "1e309",
    "NaN",
    "on",
    "approve",
    "reject",
    "*/5 * * * *",
    "Europe/Nowhere",
    "com.bank.*",
    "http://127.0.0.1:1/x",
    "javascript:alert(1)",
    '{"a": ' * 200,
    "[" * 5000,
    "x" * 20_000,
    "2026-11-23T10:00:00Z",
    "0001-01-01",
    "\u202e\u0000",
]
# Routes that would end the fixtures' own session, device or hook, or that never end (SSE).
SKIPPED_SUFFIXES = ("/revoke", "/signout", "/signin", "/events")


def _routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every APIRoute, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's included router
            context = getattr(route, "include_context", None)
            yield from _routes(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "routes"):
            yield from _routes(route.routes, prefix + getattr(route, "path", ""))


def _params(dependant: Any, kind: str) -> list[str]:
    names = [param.alias for param in getattr(dependant, kind)]
    for sub in dependant.dependencies:
        names += _params(sub, kind)
    return names


def _dashboard_operations(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path, field names: form fields for a POST, query parameters for a GET)."""
    operations = []
    for path, route in _routes(app.routes):
        not_a_page = path.startswith(("/api/", "/docs", "/redoc", "/openapi", "/static"))
        if not_a_page or path.endswith(SKIPPED_SUFFIXES):
            continue
        for method in sorted(route.methods or ()):
            if method == "POST":
                fields = [name for name in _params(route.dependant, "body_params") if name != "csrf_token"]
                operations.append(("POST", path, fields))
            elif method == "GET":
                operations.append(("GET", path, _params(route.dependant, "query_params")))
    return operations


class FormWorld(World):
    """The API fuzz test's account, device, workflow, run, schedule and hook, signed in to the dashboard."""

    def __init__(self, client: TestClient, db: Db) -> None:
        super().__init__(client, db)
        self.params["version_id"] = self.workflow.version_id
        self.csrf = sign_in(client, self.account.token)


def _value(data: st.DataObject) -> str:
    """One form-encoded value: a hostile text (encoded) or a raw escape (as is)."""
    if data.draw(st.booleans()):
        return data.draw(st.sampled_from(RAW_VALUES))
    text = data.draw(st.sampled_from(TEXT_VALUES) | st.text(max_size=16))
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _encoded(data: st.DataObject, world: FormWorld, fields: list[str], with_csrf: bool) -> str:
    chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))) if fields else []
    pairs = [f"{quote(name)}={_value(data)}" for name in chosen]
    if data.draw(st.integers(0, 5)) == 0:  # a field twice, or one the route does not know
        pairs.append(f"{data.draw(st.sampled_from([*fields, 'unknown']))}={_value(data)}")
    if with_csrf:
        pairs.append(f"csrf_token={quote(world.csrf)}")
    return "&".join(pairs)


def _pages_still_work(client: TestClient, world: FormWorld) -> None:
    for page in (
        "/runs",
        f"/runs/{world.run_id}",
        "/workflows",
        f"/workflows/{world.workflow.id}",
        f"/workflows/{world.workflow.id}/edit",
        "/devices",
        "/integrations",
        "/settings",
        "/analytics",
    ):
        answer = client.get(page)
        assert answer.status_code == 200, (page, answer.text[:500])
    for run in client.get("/api/v1/runs?limit=500", headers=auth(world.account.token)).json()["runs"]:
        assert client.get(f"/runs/{run['id']}").status_code == 200, run["id"]


def test_hostile_forms_and_queries_never_5xx_and_pages_still_work(
    app: FastAPI, client: TestClient, db: Db
) -> None:
    world = FormWorld(client, db)
    operations = _dashboard_operations(app)
    posts = [operation for operation in operations if operation[0] == "POST"]
    assert len(posts) >= 25  # every page's forms are there
    assert len(operations) >= 50

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        method, template, fields = data.draw(st.sampled_from(operations))
        hostile_path = data.draw(st.sampled_from([None] * 6 + ["%00", "%ED%A0%80", "a" * 300, "..", "%25"]))
        path = world.path(template, hostile_path)
        if method == "GET":
            query = _encoded(data, world, fields, with_csrf=False)
            answer = client.get(f"{path}?{query}" if query else path, follow_redirects=False)
        else:
            body = _encoded(data, world, fields, with_csrf=data.draw(st.integers(0, 7)) > 0)
            answer = client.post(
                path,
                content=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                follow_redirects=False,
            )
        assert answer.status_code < 500, (method, path, answer.text[:500])

    one_request()
    _pages_still_work(client, world)
