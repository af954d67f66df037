"""Sending approval e-mails: the background job (every `smtp_poll_s` seconds in every process).

Like webhook deliveries: a row is taken with a lease by a conditional UPDATE (one process sends
each), sent outside any transaction, and its outcome written after; a failure is retried after
`webhook_retry_base_s * 2^(n-1)` seconds (at most `webhook_retry_max_s`) and given up after
`webhook_max_attempts`. An approval that is no longer pending by then is not mailed.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.approvals.models import Approval, ApprovalStatus
from server.approvals.service import effective_status
from server.db import utcnow
from server.notifications.models import ApprovalEmail
from server.settings import Settings
from server.webhooks.delivery import retry_delay

BATCH_SIZE = 20
_log = logging.getLogger("phoneflow.notifications")


def smtp_send(settings: Settings, to_address: str, subject: str, body: str) -> None:
    """Send one plain-text e-mail through the configured SMTP server; raises on any failure."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to_address
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="phoneflow")
    message.set_content(body)
    host, port, timeout = settings.smtp_host or "", settings.smtp_port, settings.smtp_timeout_s
    context = ssl.create_default_context()
    if settings.smtp_ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if settings.smtp_starttls and not settings.smtp_ssl:
            client.starttls(context=context)
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
        client.send_message(message)


def _claim(session_factory: sessionmaker[Session], email_id: str, now: datetime, lease_s: float) -> bool:
    with session_factory.begin() as session:
        taken = session.execute(
            update(ApprovalEmail)
            .where(
                ApprovalEmail.id == email_id,
                ApprovalEmail.status == "pending",
                or_(ApprovalEmail.lease_until.is_(None), ApprovalEmail.lease_until < now),
            )
            .values(lease_until=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _send_one(session_factory: sessionmaker[Session], settings: Settings, email_id: str) -> bool:
    with session_factory() as session:
        row = session.execute(
            select(ApprovalEmail.to_address, ApprovalEmail.subject, ApprovalEmail.body, Approval)
            .join(Approval, Approval.id == ApprovalEmail.approval_id)
            .where(ApprovalEmail.id == email_id)
        ).first()
        still_waiting = row is not None and effective_status(row.Approval) is ApprovalStatus.PENDING
        session.rollback()
    error: str | None = None
    if row is not None and still_waiting:
        try:
            smtp_send(settings, row.to_address, row.subject, row.body)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
    with session_factory.begin() as session:
        email = session.get(ApprovalEmail, email_id)
        if email is None:
            return False
        email.lease_until = None
        now = utcnow()
        if row is None or not still_waiting:
            email.status, email.last_error, email.next_attempt_at = (
                "failed",
                "the approval was answered first",
                None,
            )
            return False
        email.attempts += 1
        if error is None:
            email.status, email.sent_at, email.next_attempt_at, email.last_error = "sent", now, None, None
            return True
        email.last_error = error
        if email.attempts >= settings.webhook_max_attempts:
            email.status, email.next_attempt_at = "failed", None
            _log.warning("approval e-mail to %s failed for good: %s", email.to_address, error)
        else:
            email.next_attempt_at = now + timedelta(seconds=retry_delay(email.attempts, settings))
            _log.warning("approval e-mail to %s not sent (%s); trying again later", email.to_address, error)
        return False


def send_due(
    session_factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> int:
    """Send every approval e-mail that is due; how many went out."""
    if not settings.smtp_host:
        return 0
    moment = now or utcnow()
    with session_factory() as session:
        due = list(
            session.scalars(
                select(ApprovalEmail.id)
                .where(
                    ApprovalEmail.status == "pending",
                    ApprovalEmail.next_attempt_at <= moment,
                    or_(ApprovalEmail.lease_until.is_(None), ApprovalEmail.lease_until < moment),
                )
                .order_by(ApprovalEmail.next_attempt_at)
                .limit(BATCH_SIZE)
            )
        )
        session.rollback()
    lease_s = settings.smtp_timeout_s * 3 + 30
    return sum(
        _send_one(session_factory, settings, email_id)
        for email_id in due
        if _claim(session_factory, email_id, moment, lease_s)
    )


def warn_if_off(settings: Settings) -> None:
    """Say (once a server: `phoneflow serve` says it for all its processes) that no e-mail goes out."""
    if not settings.smtp_host:
        _log.warning(
            "approval e-mails are off: set PHONEFLOW_SMTP_HOST (and PHONEFLOW_SMTP_FROM) to tell "
            "approvers by e-mail"
        )


def register_jobs(
    scheduler: BaseScheduler, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Send approval e-mails every `smtp_poll_s` seconds (when an SMTP server is configured)."""
    if not settings.smtp_host:
        if not settings.notices_given:
            warn_if_off(settings)
        return
    scheduler.add_job(
        send_due,
        "interval",
        seconds=settings.smtp_poll_s,
        args=[session_factory, settings],
        id="notifications.send",
        replace_existing=True,
    )
