"""Dashboard pages with TestClient: accounts see only their own objects, retention's cap,
pairing, export, runs and their detail, workflows and simulate, settings forms."""

from __future__ import annotations

import json
import re
import uuid

from fastapi.testclient import TestClient

from tests.server.factories import (
    Db,
    auth,
    create_account,
    create_device,
    create_workflow,
    sample_definition,
)
from tests.server.test_dashboard_support import account_state, report, retention_days, sign_in


def test_another_accounts_run_workflow_and_device_are_404_pages(client: TestClient, db: Db) -> None:
    owner = create_account(db)
    device = create_device(db, owner.id)
    workflow = create_workflow(db, owner.id)
    run_id = str(uuid.uuid4())
    report(client, device, workflow, run_id, status="success", steps=3)

    intruder = create_account(db)
    csrf = sign_in(client, intruder.token)
    before = account_state(db, owner.id)
    for path in [f"/runs/{run_id}", f"/workflows/{workflow.id}", f"/runs/{run_id}/artifacts/x.png"]:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "<h1>Not found</h1>" in answer.text
        assert "another account" in answer.text
    fragment = client.get(f"/runs/{run_id}/_body")
    assert fragment.status_code == 404
    assert fragment.headers["content-type"].startswith("text/plain")
    for path in [f"/devices/{device.id}/rename", f"/devices/{device.id}/revoke"]:
        answer = client.post(path, data={"csrf_token": csrf, "name": "mine now"})
        assert answer.status_code == 404, path
    published = client.post(
        f"/workflows/{workflow.id}/publish", data={"csrf_token": csrf, "version_id": workflow.version_id}
    )
    assert published.status_code == 404
    assert account_state(db, owner.id) == before
    # Nor do they show in the intruder's lists.
    assert run_id not in client.get("/runs").text
    assert device.serial not in client.get("/devices").text


def test_runs_page_lists_filters_and_shows_the_overview(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id, name="Front desk")
    workflow = create_workflow(db, account.id, name="Capture order")
    ok_id, failed_id, running_id = (str(uuid.uuid4()) for _ in range(3))
    report(client, device, workflow, ok_id, status="success", steps=3)
    report(client, device, workflow, failed_id, status="failed", steps=3, failed_message="no element 'Saved'")
    report(client, device, workflow, running_id, status="running", steps=1)
    sign_in(client, account.token)

    page = client.get("/runs").text
    for run_id in (ok_id, failed_id, running_id):
        assert f'data-run-id="{run_id}"' in page
    assert "Capture order" in page
    assert "Front desk" in page
    assert "3/3" in page  # steps ok/total of the success
    assert "2/3" in page  # and of the failure
    assert "1 so far" in page  # the running one
    assert "50%" in page  # 1 success of 2 finished
    assert "no element &#39;Saved&#39;" in page  # the last incident
    assert re.search(r'data-events-after="\d+"', page)

    failed_only = client.get("/runs", params={"status": "failed"}).text
    assert f'data-run-id="{failed_id}"' in failed_only
    assert f'data-run-id="{ok_id}"' not in failed_only
    table = client.get("/runs/_table", params={"status": "running"}).text
    assert table.lstrip().startswith("<table")
    assert f'data-run-id="{running_id}"' in table
    assert f'data-run-id="{ok_id}"' not in table
    assert "runs per day" in client.get("/runs/_stats").text


def test_runs_are_paged_newest_first(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    from server.dashboard.runs_pages import PAGE_SIZE

    ids = [str(uuid.uuid4()) for _ in range(PAGE_SIZE + 2)]
    for run_id in ids:
        report(client, device, workflow, run_id, status="running", steps=1)
    sign_in(client, account.token)
    first = client.get("/runs").text
    shown = re.findall(r'data-run-id="([^"]+)"', first)
    assert len(shown) == PAGE_SIZE
    older = re.search(r'<a href="\?([^"]+)">Older runs', first)
    assert older is not None
    second = client.get("/runs?" + older.group(1).replace("&amp;", "&")).text
    rest = re.findall(r'data-run-id="([^"]+)"', second)
    assert len(rest) == 2
    assert set(shown) | set(rest) == set(ids)
    assert "data-live-off" in second  # an older page does not jump around live


def test_run_detail_shows_the_timeline_inputs_and_failure(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = str(uuid.uuid4())
    report(client, device, workflow, run_id, status="failed", steps=3, failed_message="no element 'Saved'")
    upload = client.post(
        f"/api/v1/runs/{run_id}/artifacts",
        files={"file": ("failure.png", b"\x89PNG\r\n\x1a\nfake", "image/png")},
        headers=auth(device.token),
    )
    assert upload.status_code == 201, upload.text
    for name, content_type, data in [
        ("failure-3-check-hierarchy.xml", "application/xml", b"<hierarchy/>"),
        ("failure-3-check.png", "image/png", b"\x89PNG\r\n\x1a\nscreen"),
    ]:
        answer = client.post(
            f"/api/v1/runs/{run_id}/artifacts",
            files={"file": (name, data, content_type)},
            headers=auth(device.token),
        )
        assert answer.status_code == 201, answer.text
    sign_in(client, account.token)

    page = client.get(f"/runs/{run_id}").text
    assert page.count('class="step o-') == 3
    assert "action.waitForText" in page
    assert "2 attempts" in page
    assert "no element &#39;Saved&#39;" in page
    assert "&#34;order&#34;: &#34;A-17&#34;" in page or '"order": "A-17"' in page
    assert f'src="/runs/{run_id}/artifacts/failure.png"' in page  # among the run's other artifacts
    # The failed step carries its own context: its screen first, then its window hierarchy.
    failed_step = page[page.index('class="step o-failed"') :]
    screen = failed_step.index(f'src="/runs/{run_id}/artifacts/failure-3-check.png"')
    assert screen < failed_step.index(f'href="/runs/{run_id}/artifacts/failure-3-check-hierarchy.xml"')
    assert "Window hierarchy" in failed_step
    image = client.get(f"/runs/{run_id}/artifacts/failure.png")
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    body = client.get(f"/runs/{run_id}/_body").text
    assert not body.lstrip().startswith("<!doctype")
    assert body.count('class="step o-') == 3


def test_retention_above_the_plan_cap_shows_the_cap(client: TestClient, db: Db) -> None:
    account = create_account(db, plan="pro")
    csrf = sign_in(client, account.token)
    answer = client.post("/settings/retention", data={"csrf_token": csrf, "days": "181"})
    assert answer.status_code == 422
    assert "181 days is above the pro plan&#39;s cap of 180 days" in answer.text
    assert retention_days(db, account.id) == 30
    for bad in ("0", "-3", "ten", ""):
        answer = client.post("/settings/retention", data={"csrf_token": csrf, "days": bad})
        assert answer.status_code == 422, bad
        assert "is not a number of days" in answer.text
    answer = client.post("/settings/retention", data={"csrf_token": csrf, "days": "180"})
    assert answer.status_code == 200
    assert "Runs are now kept for 180 days." in answer.text
    assert retention_days(db, account.id) == 180


def test_pairing_shows_a_code_and_the_command_and_the_code_pairs(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = sign_in(client, account.token)
    page = client.post("/devices/pairing-code", data={"csrf_token": csrf}).text
    match = re.search(r'<strong class="code">([A-Z0-9]{8})</strong>', page)
    assert match is not None, page
    code = match.group(1)
    assert f"phoneflow bridge pair --server http://testserver --code {code} --serial SERIAL" in page
    assert "expires" in page

    paired = client.post(
        "/api/v1/devices/pair",
        json={"code": code, "serial": "R58M123ABC", "model": "Galaxy S23", "androidVersion": "14"},
    )
    assert paired.status_code == 201, paired.text
    devices = client.get("/devices").text
    assert "R58M123ABC" in devices
    assert "Galaxy S23" in devices


def test_rename_and_revoke_a_device(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    csrf = sign_in(client, account.token)
    too_long = client.post(f"/devices/{device.id}/rename", data={"csrf_token": csrf, "name": "x" * 201})
    assert too_long.status_code == 422
    assert "1 to 200 characters" in too_long.text
    renamed = client.post(f"/devices/{device.id}/rename", data={"csrf_token": csrf, "name": " Front desk "})
    assert renamed.status_code == 200  # followed the redirect to /devices
    assert 'value="Front desk"' in renamed.text
    # A name is text, never script: no inline handlers, and the CSP would refuse them anyway.
    sly = client.post(f"/devices/{device.id}/rename", data={"csrf_token": csrf, "name": "x'); alert(1); ('"})
    assert "onsubmit" not in sly.text
    assert 'data-confirm="Revoke x&#39;); alert(1); (&#39;?' in sly.text
    assert "default-src 'self'" in sly.headers["content-security-policy"]
    revoked = client.post(f"/devices/{device.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert "revoked" in revoked.text
    assert client.post("/api/v1/devices/me/claim", headers=auth(device.token)).status_code == 401


def test_export_streams_valid_json_with_the_runs_and_their_traces(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for run_id in ids:
        report(client, device, workflow, run_id, status="success", steps=3)
    other = create_account(db)
    report(
        client,
        create_device(db, other.id),
        create_workflow(db, other.id),
        str(uuid.uuid4()),
        status="success",
        steps=1,
    )
    sign_in(client, account.token)

    answer = client.get("/settings/export")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="phoneflow-runs-\d{8}-\d{6}\.json"', answer.headers["content-disposition"]
    )
    exported = json.loads(answer.text)
    assert sorted(run["id"] for run in exported) == sorted(ids)
    assert all(len(run["trace"]) == 3 for run in exported)

    too_far = client.get("/settings/export", params={"days": 31})
    assert too_far.status_code == 422
    assert "the free plan exports at most 30 days" in too_far.text
    not_a_number = client.get("/settings/export", params={"days": "soon"})
    assert not_a_number.status_code == 422
    assert not_a_number.headers["content-type"].startswith("text/html")


def test_workflow_pages_create_validate_publish_and_simulate(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = sign_in(client, account.token)
    broken = client.post("/workflows", data={"csrf_token": csrf, "name": "Broken", "definition": "{nodes: ["})
    assert broken.status_code == 422
    assert "the definition is not valid JSON" in broken.text
    invalid = client.post(
        "/workflows",
        data={
            "csrf_token": csrf,
            "name": "Invalid",
            "definition": json.dumps({"schemaVersion": 1, "nodes": []}),
        },
    )
    assert invalid.status_code == 422
    assert "the version was not saved" in invalid.text
    denied = client.post(
        "/workflows",
        data={
            "csrf_token": csrf,
            "name": "Bank",
            "definition": json.dumps(sample_definition(targetPackages=["com.bank.app"])),
        },
    )
    assert denied.status_code == 422
    assert "com.bank.app" in denied.text
    assert account_state(db, account.id)["workflows"] == []

    created = client.post(
        "/workflows",
        data={"csrf_token": csrf, "name": "Open the shop", "definition": json.dumps(sample_definition())},
        follow_redirects=False,
    )
    assert created.status_code == 303
    page_url = created.headers["location"]
    workflow_id = page_url.rsplit("/", 1)[-1]
    saved = client.post(
        f"/workflows/{workflow_id}/versions",
        data={"csrf_token": csrf, "definition": json.dumps(sample_definition(timeoutS=30))},
    )
    assert saved.status_code == 200
    assert ">v2 " in saved.text
    version_ids = [row[0] for row in account_state(db, account.id)["versions"]]
    assert len(version_ids) == 2
    for version_id in version_ids:
        published = client.post(
            f"/workflows/{workflow_id}/publish", data={"csrf_token": csrf, "version_id": version_id}
        )
        assert published.status_code == 200
    assert account_state(db, account.id)["workflows"][0][2] in version_ids
    listing = client.get("/workflows").text
    assert "Open the shop" in listing

    simulated = client.post(
        f"/workflows/{workflow_id}/simulate",
        data={"csrf_token": csrf, "version_id": version_ids[0], "inputs": '{"order": "A-1"}'},
    )
    assert simulated.status_code == 200
    assert "action.launchApp" in simulated.text
    bad_inputs = client.post(
        f"/workflows/{workflow_id}/simulate",
        data={"csrf_token": csrf, "version_id": version_ids[0], "inputs": "[1]"},
    )
    assert bad_inputs.status_code == 422
    assert "the inputs must be a JSON object" in bad_inputs.text


def test_settings_denylist_and_tokens(client: TestClient, db: Db) -> None:
    account = create_account(db)
    csrf = sign_in(client, account.token)
    page = client.get("/settings").text
    assert "com.bank.*" in page  # the server's global list is shown
    assert "(this session)" in page
    added = client.post("/settings/denylist", data={"csrf_token": csrf, "pattern": "com.casino.*"})
    assert added.status_code == 200
    assert "com.casino.*" in added.text
    again = client.post("/settings/denylist", data={"csrf_token": csrf, "pattern": "com.casino.*"})
    assert again.status_code == 409
    bad = client.post("/settings/denylist", data={"csrf_token": csrf, "pattern": "not a package!"})
    assert bad.status_code == 422
    entry_id = account_state(db, account.id)["denylist"][0][0]
    removed = client.post(f"/settings/denylist/{entry_id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 200
    assert account_state(db, account.id)["denylist"] == []

    created = client.post("/settings/tokens", data={"csrf_token": csrf, "name": "ci"})
    match = re.search(r'<code id="new-token">([^<]+)</code>', created.text)
    assert match is not None
    new_token = match.group(1)
    assert client.get("/api/v1/account", headers=auth(new_token)).status_code == 200
    token_id = next(row[0] for row in account_state(db, account.id)["tokens"] if row[1] == "ci")
    revoked = client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert client.get("/api/v1/account", headers=auth(new_token)).status_code == 401


def test_queue_a_run_on_a_phone_from_the_workflow_page_and_cancel_it(client: TestClient, db: Db) -> None:
    account = create_account(db)
    workflow = create_workflow(db, account.id, publish=False)
    csrf = sign_in(client, account.token)
    page = client.get(f"/workflows/{workflow.id}").text
    assert "Publish a version first" in page
    client.post(
        f"/workflows/{workflow.id}/publish", data={"csrf_token": csrf, "version_id": workflow.version_id}
    )
    assert "No phone is paired yet" in client.get(f"/workflows/{workflow.id}").text

    device = create_device(db, account.id, name="Front desk")
    revoked = create_device(db, account.id, name="Old phone")
    client.post(f"/devices/{revoked.id}/revoke", data={"csrf_token": csrf})
    page = client.get(f"/workflows/{workflow.id}").text
    assert f'<option value="{device.id}">Front desk</option>' in page
    assert "Old phone" not in page  # a revoked phone takes no runs

    wrong = client.post(
        f"/workflows/{workflow.id}/runs",
        data={"csrf_token": csrf, "device_id": device.id, "inputs": '{"order": 17}'},
    )
    assert wrong.status_code == 422
    assert "17 is not of type &#39;string&#39;" in wrong.text
    assert 'value="{&#34;order&#34;: 17}"' in wrong.text  # the form keeps what was typed

    queued = client.post(
        f"/workflows/{workflow.id}/runs",
        data={"csrf_token": csrf, "device_id": device.id, "inputs": '{"order": "A-1"}'},
        follow_redirects=False,
    )
    assert queued.status_code == 303
    run_url = queued.headers["location"]
    run_page = client.get(run_url).text
    assert "trigger manual" in run_page
    assert "Cancel run" in run_page
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token))
    assert claimed.status_code == 200
    assert claimed.json()["run"]["inputs"] == {"order": "A-1"}

    cancelled = client.post(run_url + "/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 200
    assert "Cancel requested" in cancelled.text  # a claimed run is stopped by its phone
    again = client.post(run_url + "/cancel", data={"csrf_token": csrf})
    assert again.status_code == 200
