"""Approval e-mails through a real SMTP server the test starts (aiosmtpd on 127.0.0.1): approvers are
told once each, with the question and the run's page; the account is told when no approver is
named; login; a server that cannot be reached is retried; an approval answered first is not mailed."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from server.app import create_app
from server.notifications.mailer import send_due
from server.notifications.models import ApprovalEmail
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import free_port, new_run_id, run_report

USER, PASSWORD = "phoneflow", "s3cret"


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _mail_settings(settings: Settings, port: int, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_from": "phoneflow@example.com",
            "smtp_username": USER,
            "smtp_password": SecretStr(PASSWORD),
            **changes,
        }
    )


def _ask(
    client: TestClient, dev: Any, wf: Any, approvers: list[str], node: str = "ask"
) -> tuple[str, dict[str, Any]]:
    run_id = new_run_id()
    client.post(
        "/api/v1/runs.report", json={"runs": [run_report(run_id, wf, steps=1)]}, headers=auth(dev.token)
    )
    body = {
        "runId": run_id,
        "nodeId": node,
        "visit": 1,
        "message": "Refund 40 EUR to order A-17?",
        "approvers": approvers,
        "timeoutS": 600,
    }
    answer = client.post("/api/v1/devices/me/approvals", json=body, headers=auth(dev.token))
    assert answer.status_code == 201, answer.text
    again = client.post(
        "/api/v1/devices/me/approvals", json=body, headers=auth(dev.token)
    )  # the bridge retries
    assert again.status_code == 200
    return run_id, answer.json()


def test_approvers_are_mailed_once_each(smtp: tuple[Inbox, int], settings: Settings, db: Db) -> None:
    inbox, port = smtp
    settings = _mail_settings(settings, port)
    acc = create_account(db, email="owner@example.com")
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id, name="Refunds")
    app: FastAPI = create_app(settings)
    with TestClient(app) as client:
        run_id, approval = _ask(client, dev, wf, ["alice@example.com", "bob@example.com"])
        assert send_due(app.state.session_factory, settings) == 2
        assert send_due(app.state.session_factory, settings) == 0  # each once
        by_to = {m["To"]: m for m in inbox.messages}
        assert set(by_to) == {"alice@example.com", "bob@example.com"}
        message = by_to["alice@example.com"]
        assert message["From"] == "phoneflow@example.com"
        assert message["Subject"] == "Approval needed: Refunds — Refund 40 EUR to order A-17?"
        text = message.get_content()  # type: ignore[attr-defined]
        assert "Refund 40 EUR to order A-17?" in text
        assert f"{settings.public_url}/runs/{run_id}" in text
        assert f"/api/v1/approvals/{approval['id']}/decision" in text
        assert "times out at" in text
        assert inbox.logins == [USER, USER]

        _ask(client, dev, wf, [], node="nobody-named")  # no approvers named: anyone of the account
        send_due(app.state.session_factory, settings)
        assert inbox.messages[-1]["To"] == "owner@example.com"


def test_an_unreachable_server_is_retried_and_an_answered_approval_is_not_mailed(
    smtp: tuple[Inbox, int], settings: Settings, db: Db
) -> None:
    inbox, port = smtp
    down = _mail_settings(settings, free_port(), webhook_retry_base_s=60)
    acc = create_account(db, email="dave@example.com")
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    app: FastAPI = create_app(down)
    with TestClient(app) as client:
        _ask(client, dev, wf, ["carol@example.com"])
        assert send_due(app.state.session_factory, down) == 0
        with db.session_factory() as session:
            queued = session.scalars(select(ApprovalEmail)).one()
        assert (queued.status, queued.attempts) == ("pending", 1)
        assert "ConnectionRefusedError" in (queued.last_error or "")
        assert queued.next_attempt_at is not None
        assert queued.sent_at is None
        up = _mail_settings(settings, port)
        assert send_due(app.state.session_factory, up) == 0  # not due again yet
        with db.session_factory.begin() as session:
            session.get(ApprovalEmail, queued.id).next_attempt_at = queued.created_at  # type: ignore[union-attr]
        assert send_due(app.state.session_factory, up) == 1
        assert [m["To"] for m in inbox.messages] == ["carol@example.com"]

        _, approval = _ask(client, dev, wf, ["dave@example.com"], node="second")
        decided = client.post(
            f"/api/v1/approvals/{approval['id']}/decision",
            json={"decision": "approve"},
            headers=auth(acc.token),
        )
        assert decided.status_code == 200
        assert send_due(app.state.session_factory, up) == 0
        assert [m["To"] for m in inbox.messages] == ["carol@example.com"]


def test_without_an_smtp_server_nothing_is_queued(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    _ask(client, dev, wf, ["erin@example.com"])
    with db.session_factory() as session:
        assert session.scalars(select(ApprovalEmail)).all() == []
