"""Typed factories for server tests: rows written through the services, ids and tokens returned.

Use them with the `db` fixture (see conftest.py):

    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    client.get("/api/v1/account", headers=auth(acc.token))
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, column, insert, table
from sqlalchemy.orm import Session, sessionmaker

from server.accounts import service as accounts_service
from server.accounts.models import DEFAULT_RETENTION_DAYS, Plan
from server.auth import hash_token, new_account_token
from server.db import utcnow
from server.devices import service as devices_service
from server.workflows import service as workflows_service

# A small valid workflow over the sample shop app (the example of docs/workflow-format.md, shortened).
SAMPLE_DEFINITION: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Open the shop",
    "targetPackages": ["com.example.shop"],
    "inputs": {"type": "object", "properties": {"order": {"type": "string"}}},
    "timeoutS": 60,
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}, "next": "wait"},
        {"id": "wait", "kind": "action.waitForText", "params": {"text": "Sign in", "timeoutMs": 2000}},
    ],
}


@dataclass(frozen=True, slots=True)
class Db:
    """A migrated database for one test."""

    url: str
    kind: str  # "sqlite" or "postgresql"
    engine: Engine
    session_factory: sessionmaker[Session]


@dataclass(frozen=True, slots=True)
class AccountFixture:
    id: str
    email: str
    token: str


@dataclass(frozen=True, slots=True)
class DeviceFixture:
    id: str
    account_id: str
    serial: str
    token: str


@dataclass(frozen=True, slots=True)
class WorkflowFixture:
    id: str
    account_id: str
    version_id: str


def auth(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def sample_definition(**changes: Any) -> dict[str, Any]:
    """A fresh copy of the sample definition with top-level fields replaced."""
    definition = copy.deepcopy(SAMPLE_DEFINITION)
    definition.update(changes)
    return definition


def create_account(db: Db, *, email: str | None = None, plan: str = "free") -> AccountFixture:
    """An account with one API token."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    with db.session_factory.begin() as session:
        account, token = accounts_service.create_account(session, email, Plan(plan))
        return AccountFixture(id=account.id, email=account.email, token=token)


def create_account_in_an_old_schema(db: Db) -> AccountFixture:
    """An account with one API token, inserted naming only the columns the first migration made:
    for tests that start from a database migrated only part of the way."""
    account_id, email, token, now = (
        str(uuid.uuid4()),
        f"user-{uuid.uuid4().hex[:10]}@example.com",
        new_account_token(),
        utcnow(),
    )
    with db.session_factory.begin() as session:
        session.execute(
            insert(
                table("accounts", *map(column, ("id", "email", "plan", "run_retention_days", "created_at")))
            ),
            {
                "id": account_id,
                "email": email,
                "plan": Plan.FREE.value,
                "run_retention_days": DEFAULT_RETENTION_DAYS,
                "created_at": now,
            },
        )
        session.execute(
            insert(
                table(
                    "api_tokens",
                    *map(column, ("id", "account_id", "name", "token_hash", "display_prefix", "created_at")),
                )
            ),
            {
                "id": str(uuid.uuid4()),
                "account_id": account_id,
                "name": "first token",
                "token_hash": hash_token(token),
                "display_prefix": token[:12],
                "created_at": now,
            },
        )
    return AccountFixture(id=account_id, email=email, token=token)


def create_device(
    db: Db,
    account_id: str,
    *,
    serial: str | None = None,
    model: str = "Pixel 7",
    android_version: str = "14",
    name: str | None = None,
) -> DeviceFixture:
    """A paired device of `account_id` with its device token."""
    serial = serial or f"SER{uuid.uuid4().hex[:8].upper()}"
    facts = devices_service.DeviceFacts(
        serial=serial, model=model, android_version=android_version, name=name
    )
    with db.session_factory.begin() as session:
        device, token = devices_service.create_device(session, account_id, facts)
        return DeviceFixture(id=device.id, account_id=account_id, serial=serial, token=token)


def create_workflow(
    db: Db,
    account_id: str,
    *,
    name: str = "Open the shop",
    definition: dict[str, Any] | None = None,
    publish: bool = True,
) -> WorkflowFixture:
    """A workflow with one version (stored without validation), published unless told otherwise."""
    definition = copy.deepcopy(definition) if definition is not None else sample_definition()
    with db.session_factory.begin() as session:
        workflow, version = workflows_service.create_workflow(session, account_id, name, definition)
        if publish:
            workflow.published_version_id = version.id
        return WorkflowFixture(id=workflow.id, account_id=account_id, version_id=version.id)
