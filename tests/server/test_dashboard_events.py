"""The dashboard's own event stream, `/dashboard/events`, over a real uvicorn server: it is
opened by the session cookie, starts right after the event id the page was rendered with
(so nothing reported in between is lost), then streams live, and shows only the account's runs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import httpx
from fastapi import FastAPI

from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import form_csrf, report, serve


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    """(id, data) of each run.updated event in an SSE body (pings and comments skipped)."""
    event_id, kind = "", ""
    for line in lines:
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:") and kind == "run.updated":
            yield event_id, json.loads(line[5:].strip())
        elif line == "":
            event_id, kind = "", ""


def test_the_stream_replays_from_the_page_then_goes_live_for_this_account_only(app: FastAPI, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    other = create_account(db)
    other_device = create_device(db, other.id)
    other_workflow = create_workflow(db, other.id)

    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=5) as browser:
        signin = browser.get("/signin")
        answer = browser.post("/signin", data={"token": account.token, "csrf_token": form_csrf(signin.text)})
        assert answer.status_code == 303
        page = browser.get("/runs")
        after = re.search(r'data-events-after="(\d+)"', page.text)
        assert after is not None

        # Reported after the page was rendered, before its script connects: must not be lost.
        first = str(uuid.uuid4())
        report(browser, other_device, other_workflow, str(uuid.uuid4()), status="running", steps=1)
        report(browser, device, workflow, first, status="running", steps=1)

        with browser.stream("GET", f"/dashboard/events?after={after.group(1)}") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _events(stream.iter_lines())
            event_id, data = next(events)
            assert data["id"] == first
            assert data["status"] == "running"
            assert "trace" not in data

            report(browser, other_device, other_workflow, str(uuid.uuid4()), status="running", steps=1)
            report(browser, device, workflow, first, status="success", steps=3)
            next_id, data = next(events)
            assert data["id"] == first
            assert data["status"] == "success"
            assert int(next_id) > int(event_id)

        # A reconnecting EventSource's Last-Event-ID wins over the page's `after`.
        with browser.stream(
            "GET", f"/dashboard/events?after={after.group(1)}", headers={"Last-Event-ID": event_id}
        ) as stream:
            _, data = next(_events(stream.iter_lines()))
            assert data["status"] == "success"
