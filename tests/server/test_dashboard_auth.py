"""Dashboard sign-in, sessions and CSRF, through the pages (TestClient on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.dashboard import auth_pages, fleet_pages, runs_pages, settings_pages, workflow_pages
from server.dashboard.pages_route import DashboardRoute
from server.db import utcnow
from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import account_state, form_csrf, sign_in

SECTION_PAGES = ["/runs", "/devices", "/workflows", "/settings", "/runs/_table", "/runs/_stats"]


def _signin_form(client: TestClient) -> str:
    return form_csrf(client.get("/signin").text)


@pytest.mark.parametrize("path", ["/runs", "/devices", "/workflows", "/settings?x=1"])
def test_signed_out_pages_redirect_to_signin_and_back(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=" + path.replace("/", "%2F").replace(
        "?", "%3F"
    ).replace("=", "%3D")


def test_signed_out_scripts_get_401_not_the_signin_page(client: TestClient) -> None:
    # live.js fetches fragments and the event stream: a redirect would paste the sign-in form into the table.
    for path in ["/runs/_table", "/runs/_stats"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 401, path
        assert "reload" in answer.text
    answer = client.get("/dashboard/events", headers={"Accept": "text/event-stream"}, follow_redirects=False)
    assert answer.status_code == 401


def test_sign_in_sets_a_httponly_samesite_lax_cookie_and_goes_to_next(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = _signin_form(client)
    answer = client.post(
        "/signin",
        data={"token": account.token, "csrf_token": csrf, "next": "/devices"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/devices"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pf_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http here; https requests get Secure
    page = client.get("/devices")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"  # no clickjacking of the forms
    assert page.headers["cache-control"] == "no-store"  # pages may show one-time secrets
    assert account.email in client.get("/runs").text


def test_sign_in_never_redirects_to_another_site(client: TestClient, db: Db) -> None:
    account = create_account(db)
    for target in ["//evil.example/x", "/\\evil.example/x", "https://evil.example/", "evil"]:
        client.cookies.clear()
        answer = client.post(
            "/signin",
            data={"token": account.token, "csrf_token": _signin_form(client), "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/runs", target


@pytest.mark.parametrize(
    ("token_kind", "words"),
    [
        ("empty", "paste an account API token"),
        ("unknown", "unknown token"),
        ("revoked", "this token was revoked"),
        ("device", "that is not an account token"),
    ],
)
def test_sign_in_refusals_say_what_was_wrong(client: TestClient, db: Db, token_kind: str, words: str) -> None:
    account = create_account(db)
    token = {
        "empty": "",
        "unknown": account.token[:-4] + "xxxx",
        "revoked": account.token,
        "device": create_device(db, account.id).token,
    }[token_kind]
    if token_kind == "revoked":
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE api_tokens SET revoked_at = :t"), {"t": utcnow()})
    answer = client.post("/signin", data={"token": token, "csrf_token": _signin_form(client)})
    assert answer.status_code == 401
    assert words in answer.text
    assert "pf_session" not in client.cookies
    assert account_state(db, account.id)["sessions"] == []


def test_sign_in_without_its_csrf_cookie_is_refused(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = _signin_form(client)
    client.cookies.clear()  # a cross-site form post carries no pf_signin_csrf cookie
    answer = client.post("/signin", data={"token": account.token, "csrf_token": csrf})
    assert answer.status_code == 403
    assert "the sign-in form expired" in answer.text
    assert account_state(db, account.id)["sessions"] == []


def test_sign_out_ends_the_session_on_the_server(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = sign_in(client, account.token)
    stolen_cookie = client.cookies["pf_session"]
    assert len(account_state(db, account.id)["sessions"]) == 1

    refused = client.post("/signout", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert len(account_state(db, account.id)["sessions"]) == 1

    answer = client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin"
    assert account_state(db, account.id)["sessions"] == []
    # The old cookie, replayed, opens nothing.
    client.cookies.set("pf_session", stolen_cookie)
    assert client.get("/runs", follow_redirects=False).status_code == 303


def test_expired_or_revoked_sessions_send_to_signin(client: TestClient, db: Db) -> None:
    account = create_account(db)
    sign_in(client, account.token)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE dashboard_sessions SET expires_at = :t"), {"t": utcnow() - timedelta(seconds=1)}
        )
    assert client.get("/runs", follow_redirects=False).headers["location"] == "/signin?next=%2Fruns"

    sign_in(client, account.token)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET revoked_at = :t"), {"t": utcnow()})
    assert client.get("/devices", follow_redirects=False).status_code == 303


def test_a_stale_cookie_of_a_deleted_session_is_just_signed_out(client: TestClient) -> None:
    client.cookies.set("pf_session", "made-up-or-deleted")
    assert client.get("/runs", follow_redirects=False).status_code == 303
    assert client.get("/signin").status_code == 200


def _post_routes() -> list[str]:
    """Every POST path of the dashboard, read from its routers: a new form is covered at once."""
    paths = set()
    for pages in (auth_pages, runs_pages, fleet_pages, workflow_pages, settings_pages):
        for route in pages.router.routes:
            if isinstance(route, APIRoute) and "POST" in route.methods:
                paths.add(route.path)
    return sorted(paths - {"/signin"})


def test_every_dashboard_post_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, publish=False)
    good = sign_in(client, account.token)
    ids = {
        "device_id": device.id,
        "workflow_id": workflow.id,
        "token_id": "any",
        "entry_id": "any",
        "run_id": "any",
        "schedule_id": "any",
    }
    paths = _post_routes()
    assert "/settings/retention" in paths  # the list is real
    assert "/devices/pairing-code" in paths
    before = account_state(db, account.id)
    form = {
        "name": "changed",
        "days": "7",
        "pattern": "com.x.*",
        "definition": "{}",
        "version_id": workflow.version_id,
        "inputs": "{}",
    }
    for template in paths:
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
        for csrf in (None, "", "not-" + good):
            data = dict(form) if csrf is None else {**form, "csrf_token": csrf}
            answer = client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, f"{path} with csrf {csrf!r}: {answer.status_code}"
            assert "reload the page" in answer.text
            assert answer.headers["content-type"].startswith("text/html")
    assert account_state(db, account.id) == before
    # The same form with the session's token is accepted.
    assert client.post("/settings/retention", data={**form, "csrf_token": good}).status_code == 200


def test_every_dashboard_route_answers_errors_as_pages() -> None:
    # A page route outside DashboardRoute would answer problem+json, or a 500 for SignInRequired.
    for pages in (auth_pages, runs_pages, fleet_pages, workflow_pages, settings_pages):
        for route in pages.router.routes:
            assert isinstance(route, DashboardRoute), f"{route} in {pages.__name__}"
