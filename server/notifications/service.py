"""Composing and enqueueing approval e-mails (in the transaction that asks the approval)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.accounts.models import Account
from server.approvals.models import Approval
from server.db import new_id, utcnow
from server.notifications.models import ApprovalEmail
from server.runs.models import Run
from server.runs.sql import dialect_insert, utc_ms
from server.settings import Settings
from server.workflows.models import Workflow

MAX_SUBJECT = 300


def recipients(session: Session, approval: Approval) -> list[str]:
    """Who may answer: the node's approvers, or the account's own address when it names none."""
    named = [address.strip() for address in approval.approvers or [] if address.strip()]
    if named:
        return list(dict.fromkeys(named))
    account = session.get(Account, approval.account_id)
    return [account.email] if account is not None else []


def compose(session: Session, approval: Approval, public_url: str) -> tuple[str, str]:
    """(subject, plain-text body) of the e-mail about `approval`."""
    run = session.get(Run, approval.run_id)
    workflow = session.get(Workflow, run.workflow_id) if run is not None else None
    name = workflow.name if workflow is not None else "a workflow"
    question = approval.message.strip() or f"step {approval.node_id}"
    subject = f"Approval needed: {name} — {question}"
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1] + "…"
    page = f"{public_url.rstrip('/')}/runs/{approval.run_id}"
    deadline = (
        f"It times out at {utc_ms(approval.expires_at)} (UTC); the run then goes on as if rejected."
        if approval.expires_at is not None
        else "It waits without a time limit."
    )
    body = "\n".join(
        [
            f"A run of {name} waits for your answer:",
            "",
            f"    {question}",
            "",
            f"Approve or reject it on the run's page: {page}",
            f"(or POST /api/v1/approvals/{approval.id}/decision with an account token).",
            deadline,
            "",
            f"Run {approval.run_id}, step {approval.node_id}.",
            "— phoneflow",
        ]
    )
    return subject, body


def enqueue_approval_emails(session: Session, settings: Settings, approval: Approval) -> int:
    """One e-mail per recipient of a waiting approval, unless already queued; how many this call queued.

    Nothing when no SMTP server is configured (the server logs that at start)."""
    if not settings.smtp_host:
        return 0
    subject, body = compose(session, approval, settings.public_url)
    now = utcnow()
    made = 0
    for address in recipients(session, approval):
        result = session.execute(
            dialect_insert(session, ApprovalEmail)
            .values(
                id=new_id(),
                account_id=approval.account_id,
                approval_id=approval.id,
                to_address=address,
                subject=subject,
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["approval_id", "to_address"])
        )
        made += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return made
