"""Every route of the API and the dashboard, called by one account with another account's ids (in the
path and in the body), answers 404 and changes nothing of the other account's; a device token reaches
only its own runs, commands and approvals. The routes are read from the app itself, so a new route is
walked too (one whose ids it cannot fill fails the test: give it an id below)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.server.factories import (
    Db,
    auth,
    create_account,
    create_device,
    create_workflow,
    sample_definition,
)
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

# Routes a device token calls about itself, and the incoming hooks (a secret URL, no account): walked
# with a device token below.
DEVICE_PATHS = ("/api/v1/devices/me", "/api/v1/runs.report", "/api/v1/hooks/")


class Account:
    """An account with one of everything an id names, made through the API as a user would."""

    def __init__(self, client: TestClient, db: Db) -> None:
        self.account = create_account(db)
        self.device = create_device(db, self.account.id)
        self.workflow = create_workflow(db, self.account.id)
        self.headers = auth(self.account.token)
        device_headers = auth(self.device.token)

        def made(answer: Any) -> dict[str, Any]:
            assert answer.status_code in (200, 201, 202), answer.text
            return dict(answer.json())

        self.run_id = new_run_id()
        report = run_report(self.run_id, self.workflow, steps=1)
        assert made(client.post("/api/v1/runs.report", json={"runs": [report]}, headers=device_headers))
        artifact = made(
            client.post(
                f"/api/v1/runs/{self.run_id}/artifacts",
                files={"file": ("notes.txt", b"hello", "text/plain")},
                headers=device_headers,
            )
        )
        self.queued_run = made(
            client.post(
                f"/api/v1/workflows/{self.workflow.id}/runs",
                json={"deviceId": self.device.id},
                headers=self.headers,
            )
        )["id"]
        batch = made(
            client.post(
                f"/api/v1/workflows/{self.workflow.id}/batches",
                json={"deviceIds": [self.device.id]},
                headers=self.headers,
            )
        )
        version = made(
            client.post(
                f"/api/v1/workflows/{self.workflow.id}/versions",
                json={"definition": sample_definition(name="second")},
                headers=self.headers,
            )
        )
        entry = made(client.post("/api/v1/denylist", json={"pattern": "com.mine.*"}, headers=self.headers))
        token = made(client.post("/api/v1/account/tokens", json={"name": "spare"}, headers=self.headers))
        made(client.get("/api/v1/devices/me/commands", headers=device_headers))  # its bridge runs
        command = made(
            client.post(
                f"/api/v1/devices/{self.device.id}/commands", json={"kind": "inspect"}, headers=self.headers
            )
        )
        model = made(client.post("/api/v1/app-models", json={"name": "shop"}, headers=self.headers))
        schedule = made(
            client.post(
                f"/api/v1/workflows/{self.workflow.id}/schedules",
                json={"deviceId": self.device.id, "cron": "0 3 * * *"},
                headers=self.headers,
            )
        )
        approval = made(
            client.post(
                "/api/v1/devices/me/approvals",
                json={"runId": self.run_id, "nodeId": "n1", "visit": 1, "timeoutS": 600},
                headers=device_headers,
            )
        )
        endpoint = made(
            client.post(
                "/api/v1/webhooks",
                json={"url": "https://hooks.example.com/x", "events": ["run.finished"]},
                headers=self.headers,
            )
        )
        delivery = made(client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=self.headers))
        hook = made(
            client.post(
                f"/api/v1/workflows/{self.workflow.id}/hooks",
                json={"deviceId": self.device.id, "name": "ci"},
                headers=self.headers,
            )
        )
        self.ids = {
            "workflow_id": self.workflow.id,
            "version_id": self.workflow.version_id,
            "other_version_id": version["id"],
            "device_id": self.device.id,
            "run_id": self.run_id,
            "name": artifact["name"],
            "batch_id": batch["id"],
            "entry_id": entry["id"],
            "token_id": token["id"],
            "command_id": command["id"],
            "model_id": model["id"],
            "schedule_id": schedule["id"],
            "approval_id": approval["id"],
            "endpoint_id": endpoint["id"],
            "delivery_id": delivery["id"],
            "hook_id": hook["id"],
        }

    def snapshot(self, client: TestClient) -> dict[str, Any]:
        """What the account reads of everything it has (to see that another account changed nothing)."""
        reads = {
            "workflow": f"/api/v1/workflows/{self.workflow.id}",
            "versions": f"/api/v1/workflows/{self.workflow.id}/versions",
            "device": f"/api/v1/devices/{self.device.id}",
            "run": f"/api/v1/runs/{self.run_id}",
            "queued": f"/api/v1/runs/{self.queued_run}",
            "artifacts": f"/api/v1/runs/{self.run_id}/artifacts",
            "batch": f"/api/v1/batches/{self.ids['batch_id']}",
            "denylist": "/api/v1/denylist",
            "tokens": "/api/v1/account/tokens",
            "account": "/api/v1/account",
            "command": f"/api/v1/devices/{self.device.id}/commands/{self.ids['command_id']}",
            "model": f"/api/v1/app-models/{self.ids['model_id']}",
            "schedule": f"/api/v1/schedules/{self.ids['schedule_id']}",
            "approval": f"/api/v1/approvals/{self.ids['approval_id']}",
            "endpoint": f"/api/v1/webhooks/{self.ids['endpoint_id']}",
            "secret": f"/api/v1/webhooks/{self.ids['endpoint_id']}/secret",
            "deliveries": f"/api/v1/webhooks/{self.ids['endpoint_id']}/deliveries",
            "hooks": f"/api/v1/workflows/{self.workflow.id}/hooks",
        }
        out = {}
        for what, path in reads.items():
            answer = client.get(path, headers=self.headers)
            assert answer.status_code == 200, (what, answer.text)
            out[what] = answer.json()
        return out


def _routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from _routes(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "routes"):
            yield from _routes(route.routes, prefix + getattr(route, "path", ""))


def _filled(path: str, ids: dict[str, str]) -> str:
    names = PARAM.findall(path)
    missing = [name for name in names if name not in ids]
    assert not missing, f"{path}: no id for {missing}; add one to Account.ids"
    return PARAM.sub(lambda m: ids[m.group(1)], path)


def _bodies(mine: Account, theirs: Account) -> dict[tuple[str, str], Any]:
    """Bodies that would be accepted if the path's ids were the caller's (so only the ids can refuse)."""
    return {
        ("PATCH", "/api/v1/devices/{device_id}"): {"name": "taken"},
        ("PUT", "/api/v1/devices/{device_id}/tags"): {"tags": ["taken"]},
        ("POST", "/api/v1/workflows/{workflow_id}/runs"): {"deviceId": mine.device.id},
        ("POST", "/api/v1/workflows/{workflow_id}/batches"): {"deviceIds": [mine.device.id]},
        ("PATCH", "/api/v1/workflows/{workflow_id}"): {"name": "taken"},
        ("POST", "/api/v1/workflows/{workflow_id}/versions"): {"definition": sample_definition()},
        ("POST", "/api/v1/workflows/{workflow_id}/publish"): {"versionId": theirs.workflow.version_id},
        ("POST", "/api/v1/workflows/{workflow_id}/simulate"): {},
        ("POST", "/api/v1/devices/{device_id}/commands"): {"kind": "inspect"},
        ("PUT", "/api/v1/app-models/{model_id}"): {"name": "taken"},
        ("POST", "/api/v1/app-models/{model_id}/record"): {
            "deviceId": mine.device.id,
            "commandId": mine.ids["command_id"],
        },
        ("POST", "/api/v1/workflows/{workflow_id}/schedules"): {
            "deviceId": mine.device.id,
            "cron": "0 4 * * *",
        },
        ("PATCH", "/api/v1/schedules/{schedule_id}"): {"enabled": False},
        ("POST", "/api/v1/approvals/{approval_id}/decision"): {"decision": "approve"},
        ("PATCH", "/api/v1/webhooks/{endpoint_id}"): {"enabled": False},
        ("POST", "/api/v1/workflows/{workflow_id}/hooks"): {"deviceId": mine.device.id, "name": "taken"},
    }


@SQLITE_ONLY
def test_another_accounts_ids_are_404_on_every_route_and_change_nothing(
    app: FastAPI, client: TestClient, db: Db
) -> None:
    mine, theirs = Account(client, db), Account(client, db)
    before = theirs.snapshot(client)
    bodies = _bodies(mine, theirs)
    wrong: list[str] = []

    def expect_404(method: str, path: str, answer: Any) -> None:
        if answer.status_code != 404:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        elif theirs.account.email in answer.text:
            wrong.append(f"{method} {path}: the refusal names the other account")

    # Their ids in the path, my account's token (the API).
    walked = 0
    for path, route in _routes(app.routes):
        if not path.startswith("/api/v1/") or not PARAM.search(path) or path.startswith(DEVICE_PATHS):
            continue
        for method in sorted(route.methods or ()):
            url = _filled(path, theirs.ids)
            if path.endswith("/artifacts") and method == "POST":
                continue  # a device's upload: walked with a device token below
            if path.endswith("/live-frame"):
                continue
            body = bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)
            answer = client.request(method, url, json=body, headers=mine.headers)
            expect_404(method, path, answer)
            walked += 1
    assert walked > 40, walked

    # My ids in the path, theirs in the body.
    mine_ids = dict(mine.ids)
    for method, path, body in [
        ("POST", "/api/v1/workflows/{workflow_id}/runs", {"deviceId": theirs.device.id}),
        ("POST", "/api/v1/workflows/{workflow_id}/batches", {"deviceIds": [theirs.device.id]}),
        (
            "POST",
            "/api/v1/workflows/{workflow_id}/schedules",
            {"deviceId": theirs.device.id, "cron": "0 4 * * *"},
        ),
        ("PATCH", "/api/v1/schedules/{schedule_id}", {"deviceId": theirs.device.id}),
        ("POST", "/api/v1/workflows/{workflow_id}/hooks", {"deviceId": theirs.device.id, "name": "x"}),
        ("POST", "/api/v1/workflows/{workflow_id}/publish", {"versionId": theirs.workflow.version_id}),
        ("POST", "/api/v1/workflows/{workflow_id}/simulate", {"versionId": theirs.workflow.version_id}),
        ("GET", "/api/v1/workflows/{workflow_id}/versions/" + theirs.workflow.version_id, None),
        (
            "GET",
            "/api/v1/workflows/{workflow_id}/versions/{version_id}/diff/" + theirs.workflow.version_id,
            None,
        ),
        ("GET", "/api/v1/devices/{device_id}/commands/" + theirs.ids["command_id"], None),
        ("POST", "/api/v1/workflows/{workflow_id}/hooks/" + theirs.ids["hook_id"] + "/revoke", None),
        (
            "POST",
            "/api/v1/app-models/{model_id}/record",
            {"deviceId": theirs.device.id, "commandId": theirs.ids["command_id"]},
        ),
        (
            "POST",
            "/api/v1/app-models/{model_id}/record",
            {"deviceId": mine.device.id, "commandId": theirs.ids["command_id"]},
        ),
    ]:
        answer = client.request(method, _filled(path, mine_ids), json=body, headers=mine.headers)
        expect_404(method, path + " " + str(body), answer)

    # Lists filtered by their ids show none of theirs.
    for query in (
        f"workflowId={theirs.workflow.id}",
        f"deviceId={theirs.device.id}",
        f"q={theirs.run_id[:8]}",
    ):
        listed = client.get(f"/api/v1/runs?{query}", headers=mine.headers)
        assert listed.status_code in (200, 404, 422), (query, listed.text)
        assert theirs.run_id not in listed.text, query
    for path in (
        "/api/v1/runs",
        "/api/v1/runs/export",
        "/api/v1/approvals",
        "/api/v1/schedules",
        "/api/v1/devices",
    ):
        listed = client.get(path, headers=mine.headers)
        assert listed.status_code == 200, (path, listed.text)
        for value in theirs.ids.values():
            if len(value) >= 16:
                assert value not in listed.text, (path, value)

    # My device token on their run, command and approval.
    device_headers = auth(mine.device.token)
    for method, path, kwargs in [
        ("POST", f"/api/v1/devices/me/runs/{theirs.run_id}/gate", {"json": None}),
        ("POST", f"/api/v1/devices/me/runs/{theirs.run_id}/gate", {"json": {"seq": 2, "nodeId": "n2"}}),
        ("GET", f"/api/v1/devices/me/approvals/{theirs.ids['approval_id']}", {}),
        ("POST", f"/api/v1/devices/me/commands/{theirs.ids['command_id']}/result", {"json": {"ok": True}}),
        (
            "POST",
            f"/api/v1/runs/{theirs.run_id}/artifacts",
            {"files": {"file": ("x.txt", b"mine", "text/plain")}},
        ),
        ("PUT", f"/api/v1/runs/{theirs.run_id}/live-frame", {"content": b"\xff\xd8\xff\xd9"}),
        (
            "POST",
            "/api/v1/devices/me/approvals",
            {"json": {"runId": theirs.run_id, "nodeId": "n2", "visit": 1, "timeoutS": 60}},
        ),
    ]:
        headers = dict(device_headers)
        if path.endswith("/live-frame"):
            headers["content-type"] = "image/jpeg"
        answer = client.request(method, path, headers=headers, **kwargs)
        expect_404(method, path, answer)

    # The dashboard, signed in as me, with their ids.
    sign_in(client, mine.account.token)
    settings_page = client.get("/settings")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', settings_page.text)
    assert csrf is not None
    pages = 0
    forms: dict[str, dict[str, Any]] = {  # fields that would be accepted if the ids were mine
        "/workflows/{workflow_id}/batches": {"device_ids": mine.device.id},
        "/devices/{device_id}/rename": {"name": "taken"},
    }
    for path, route in _routes(app.routes):
        if path.startswith(("/api/", "/docs", "/redoc", "/openapi", "/static")) or not PARAM.search(path):
            continue
        for method in sorted(route.methods or ()):
            if method not in ("GET", "POST"):
                continue
            url = _filled(path, theirs.ids)
            data = {"csrf_token": csrf.group(1), **forms.get(path, {})} if method == "POST" else None
            answer = client.request(method, url, data=data, follow_redirects=False)
            expect_404(method, path, answer)
            pages += 1
    assert pages > 10, pages

    assert not wrong, "\n".join(wrong)
    assert theirs.snapshot(client) == before
