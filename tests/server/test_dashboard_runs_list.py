"""The Runs page's list: ordered by start, sorted, searched, filtered by trigger and days; a cancelled
run's steps in words; the export of what the page shows, as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from server.db import utcnow
from tests.server.factories import (
    Db,
    DeviceFixture,
    WorkflowFixture,
    auth,
    create_account,
    create_device,
    create_workflow,
)
from tests.server.test_dashboard_support import report, run_report, sign_in


def _shown(html: str) -> list[str]:
    return re.findall(r'data-run-id="([^"]+)"', html)


def test_the_list_is_ordered_by_start_sorted_searched_and_filtered(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    now = utcnow().replace(microsecond=0)
    # Queued first, started last: the newest start, though it was made before the others.
    queued = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device.id}, headers=auth(account.token)
    ).json()["id"]
    early, late, cancelled = (str(uuid.uuid4()) for _ in range(3))
    report(client, device, workflow, early, status="success", steps=3, started=now - timedelta(days=3))
    report(
        client,
        device,
        workflow,
        late,
        status="failed",
        steps=2,
        started=now - timedelta(hours=2),
        failed_message="no element 'Saved'",
    )
    _report_cancelled(client, device, workflow, cancelled, now - timedelta(hours=1))
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token)).json()["run"]["id"]
    assert claimed == queued
    sign_in(client, account.token)

    page = client.get("/runs").text
    assert _shown(page) == [queued, cancelled, late, early]  # newest start first
    row = re.search(rf'data-run-id="{cancelled}".*?</tr>', page, re.S)
    assert row is not None
    assert "cancelled after 3 steps" in row.group(0)
    assert "3/3" not in row.group(0)  # a cancelled run is not "all ok"
    assert "1/2 ok" in page  # the failure's steps

    assert _shown(client.get("/runs", params={"sort": "startedAt"}).text) == [early, late, cancelled, queued]
    # 4 s, 1.6 s, 1.2 s, and the running one last.
    assert _shown(client.get("/runs", params={"sort": "-durationMs"}).text) == [
        cancelled,
        early,
        late,
        queued,
    ]
    assert _shown(client.get("/runs", params={"trigger": "api"}).text) == [queued]
    assert _shown(client.get("/runs", params={"q": late[:6]}).text) == [late]
    assert _shown(client.get("/runs", params={"q": "a-17"}).text) == [cancelled, late, early]  # the inputs
    day = (now - timedelta(days=3)).date().isoformat()
    assert _shown(client.get("/runs", params={"from": day, "to": day}).text) == [early]
    # The live fragment keeps the page's filters and order.
    fragment = client.get("/runs/_table", params={"sort": "startedAt", "trigger": "device"}).text
    assert _shown(fragment) == [early, late, cancelled]
    assert 'href="/runs?trigger=device&amp;sort=-startedAt"' in fragment  # the Started header flips the order

    bad = client.get("/runs", params={"from": "last week"})
    assert bad.status_code == 422
    assert "is not a day" in bad.text
    assert bad.headers["content-type"].startswith("text/html")


def _report_cancelled(
    client: TestClient, device: DeviceFixture, workflow: WorkflowFixture, run_id: str, started: datetime
) -> None:
    """A run its device stopped after three steps that all went well."""
    body = run_report(run_id, workflow.id, workflow.version_id, status="running", steps=3, started=started)
    body.update(
        status="cancelled", endedAt=body["trace"][-1]["startedAt"], durationMs=4000, nSteps=3, nFailed=0
    )
    answer = client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(device.token))
    assert answer.json()["runs"][0]["result"] == "stored", answer.text


def test_the_page_exports_what_it_shows_as_csv_and_json(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id, name="Front desk")
    workflow = create_workflow(db, account.id, name="Capture order")
    ok, failed = str(uuid.uuid4()), str(uuid.uuid4())
    report(client, device, workflow, ok, status="success", steps=3)
    report(client, device, workflow, failed, status="failed", steps=2, failed_message="no element 'Saved'")
    sign_in(client, account.token)

    page = client.get("/runs", params={"status": "failed"}).text
    link = re.search(r'id="export-csv" href="([^"]+)"', page)
    assert link is not None
    answer = client.get(link.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["id"], r["status"], r["deviceName"], r["workflowName"]) for r in rows] == [
        (failed, "failed", "Front desk", "Capture order")
    ]
    json_link = re.search(r'id="export-json" href="([^"]+)"', page)
    assert json_link is not None
    runs = json.loads(client.get(json_link.group(1).replace("&amp;", "&")).content)
    assert [r["id"] for r in runs] == [failed]
    assert len(runs[0]["trace"]) == 2
    assert client.get("/runs/export", params={"format": "pdf"}).status_code == 422
