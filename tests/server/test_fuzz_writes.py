"""Hostile bodies to every write endpoint of the API (hypothesis), on SQLite and PostgreSQL.

Every POST/PUT/PATCH the OpenAPI document lists gets generated JSON: valid-looking bodies with
one field replaced by something hostile (NUL, lone surrogates, huge or non-finite numbers, times
in year 1 or 9999, JSON nested hundreds deep), and hostile documents as a whole; path parameters
are sometimes hostile too. No answer may be a 5xx, and afterwards every read of the account
(API and dashboard) still answers 200: nothing accepted breaks a page.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in

EXAMPLES = 100  # per database; the whole file stays well under a minute

SPECIAL_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d\ude00",
    "",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00",
    "9" * 40,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1970-01-01T00:00:00Z",
    "2026-11-23T10:00:00Z",
    "*/5 * * * *",
    "com.bank.app",
    "http://127.0.0.1:1/x",
]
SPECIAL_NUMBERS: list[Any] = [
    0,
    -1,
    2**31 - 1,
    2**31,
    2**62,
    2**63,
    -(2**63) - 1,
    10**20,
    1e308,
    -2.2e-313,
    0.5,
    float("nan"),
    float("inf"),
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for index in range(depth):
        value = [value] if index % 2 else {"a": value}
    return value


leaves = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(),
    st.booleans(),
    st.none(),
)
hostile = st.one_of(
    st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=6) | st.sampled_from(SPECIAL_TEXT), children, max_size=3)
        ),
        max_leaves=8,
    ),
    st.integers(min_value=60, max_value=400).map(_nested),
)


def _write_operations(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path, body property names) of every API write that takes a JSON body or none."""
    operations = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            if method not in ("post", "put", "patch") or not path.startswith("/api/v1"):
                continue
            if path.endswith("/revoke"):
                continue  # would end the fixtures' own device and hook
            content = op.get("requestBody", {}).get("content", {})
            if content and "application/json" not in content:
                continue  # multipart artifacts have their own tests
            schema = content.get("application/json", {}).get("schema", {})
            ref = schema.get("$ref", "")
            props: list[str] = []
            if ref:
                component = app.openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]
                props = list(component.get("properties", {}))
            operations.append((method.upper(), path, props))
    return operations


class World:
    """The account, device, workflow, run, schedule and hook the generated requests aim at."""

    def __init__(self, client: TestClient, db: Db) -> None:
        self.account = create_account(db)
        self.device = create_device(db, self.account.id)
        self.workflow = create_workflow(db, self.account.id)
        self.run_id = new_run_id()
        report = run_report(self.run_id, self.workflow, steps=1)
        assert (
            client.post(
                "/api/v1/runs.report", json={"runs": [report]}, headers=auth(self.device.token)
            ).status_code
            == 200
        )
        schedule = client.post(
            f"/api/v1/workflows/{self.workflow.id}/schedules",
            json={"deviceId": self.device.id, "cron": "0 3 * * *"},
            headers=auth(self.account.token),
        )
        assert schedule.status_code == 201, schedule.text
        hook = client.post(
            f"/api/v1/workflows/{self.workflow.id}/hooks",
            json={"deviceId": self.device.id, "name": "ci"},
            headers=auth(self.account.token),
        )
        assert hook.status_code == 201, hook.text
        self.params = {
            "workflow_id": self.workflow.id,
            "device_id": self.device.id,
            "run_id": self.run_id,
            "schedule_id": schedule.json()["id"],
            "token": hook.json()["url"].rstrip("/").rsplit("/", 1)[1],
        }
        self.valid = {
            "/api/v1/runs.report": {"runs": [run_report(new_run_id(), self.workflow, steps=1)]},
            "/api/v1/workflows": {"name": "fuzzed", "definition": sample_definition()},
            "/api/v1/workflows/{workflow_id}/versions": {"definition": sample_definition()},
            "/api/v1/workflows/{workflow_id}/runs": {"deviceId": self.device.id, "inputs": {}},
            "/api/v1/workflows/{workflow_id}/schedules": {"deviceId": self.device.id, "cron": "0 4 * * *"},
            "/api/v1/devices/me/approvals": {
                "runId": self.run_id,
                "nodeId": "n1",
                "visit": 1,
                "timeoutS": 60,
            },
            "/api/v1/webhooks": {"url": "http://127.0.0.1:9/hook", "events": ["run.finished"]},
            "/api/v1/denylist": {"pattern": "com.fuzz.*"},
        }

    def path(self, template: str, hostile_value: str | None) -> str:
        path = template
        for name, value in self.params.items():
            path = path.replace(
                "{" + name + "}", hostile_value if hostile_value is not None else quote(value)
            )
        while "{" in path:  # an id the fixtures have none of
            start, end = path.index("{"), path.index("}")
            path = path[:start] + (hostile_value or str(uuid.uuid4())) + path[end + 1 :]
        return path

    def token(self, path: str) -> str:
        device_paths = ("/api/v1/devices/me", "/api/v1/runs.report")
        return self.device.token if path.startswith(device_paths) else self.account.token


def _body(data: st.DataObject, world: World, template: str, props: list[str]) -> Any:
    base = json.loads(json.dumps(world.valid.get(template, {})))
    choice = data.draw(st.integers(0, 3))
    if choice == 0:
        return data.draw(hostile)
    if template == "/api/v1/runs.report" and choice == 1:
        run = base["runs"][0]
        field = data.draw(st.sampled_from([*run, "inputs", "durationMs", "nSteps", "errorMessage"]))
        run[field] = data.draw(hostile)
        return base
    keys = props or list(base) or ["name"]
    base[data.draw(st.sampled_from(keys))] = data.draw(hostile)
    return base


def _reads_still_work(client: TestClient, world: World) -> None:
    headers = auth(world.account.token)
    for path in (
        "/api/v1/runs",
        f"/api/v1/runs/{world.run_id}",
        "/api/v1/workflows",
        f"/api/v1/workflows/{world.workflow.id}",
        "/api/v1/stats",
        "/api/v1/schedules",
        "/api/v1/devices",
        "/api/v1/webhooks",
        "/api/v1/denylist",
        "/api/v1/approvals",
        "/api/v1/runs/export",
    ):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.text[:500])
    for run in client.get("/api/v1/runs?limit=500", headers=headers).json()["runs"]:
        assert client.get(f"/api/v1/runs/{run['id']}", headers=headers).status_code == 200
    sign_in(client, world.account.token)
    for page in (
        "/runs",
        f"/runs/{world.run_id}",
        "/workflows",
        f"/workflows/{world.workflow.id}",
        "/analytics",
    ):
        answer = client.get(page)
        assert answer.status_code == 200, (page, answer.text[:500])


def test_hostile_writes_never_5xx_and_reads_still_work(app: FastAPI, client: TestClient, db: Db) -> None:
    world = World(client, db)
    operations = _write_operations(app)
    assert len(operations) >= 30  # every domain's writes are there

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        method, template, props = data.draw(st.sampled_from(operations))
        hostile_path = data.draw(st.sampled_from([None] * 6 + ["%00", "%ED%A0%80", "a" * 300, "..", "%25"]))
        path = world.path(template, hostile_path)
        body = _body(data, world, template, props)
        answer = client.request(
            method,
            path,
            content=json.dumps(body).encode(),
            headers={**auth(world.token(template)), "Content-Type": "application/json"},
        )
        assert answer.status_code < 500, (method, path, body, answer.text[:500])

    one_request()
    _reads_still_work(client, world)
