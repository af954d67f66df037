"""Accounts and API tokens: the rules, over a session the caller owns (nothing here commits)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.accounts.models import RETENTION_CAP_DAYS, Account, ApiToken, Plan
from server.auth import hash_token, new_account_token
from server.db import utcnow
from server.errors import Conflict, FieldProblem, NotFound, ValidationFailed

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def create_account(
    session: Session, email: str, plan: Plan = Plan.FREE, token_name: str = "first token"
) -> tuple[Account, str]:
    """A new account and its first API token (returned in clear, once)."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise ValidationFailed(
            [FieldProblem("/email", f"'{email}' is not an email address", "write it as name@example.com")]
        )
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise Conflict(f"an account with email {email} already exists; use its token or another email")
    account = Account(email=email, plan=plan.value)
    session.add(account)
    session.flush()
    _, token = create_token(session, account, token_name)
    return account, token


def create_token(session: Session, account: Account, name: str) -> tuple[ApiToken, str]:
    """A new API token for `account`; the clear token is returned once and never stored."""
    token = new_account_token()
    row = ApiToken(account_id=account.id, name=name, token_hash=hash_token(token), display_prefix=token[:12])
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session, account: Account) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.account_id == account.id)
            .order_by(ApiToken.created_at, ApiToken.id)
        )
    )


def revoke_token(session: Session, account: Account, token_id: str) -> ApiToken:
    """Revoke one of the account's tokens; it stops working at once. Revoking twice is harmless."""
    token = session.scalars(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.account_id == account.id)
    ).first()
    if token is None:
        raise NotFound(f"no API token {token_id} in this account; list them with GET /api/v1/account/tokens")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def set_run_retention_days(account: Account, days: int) -> None:
    """Change how long runs are kept, within the plan's cap (422 naming the cap otherwise)."""
    cap = RETENTION_CAP_DAYS[Plan(account.plan)]
    if days > cap:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/runRetentionDays",
                    f"{days} days is above the {account.plan} plan's cap of {cap} days",
                    f"choose 1 to {cap} days, or move to a plan with a longer cap "
                    f"(free {RETENTION_CAP_DAYS[Plan.FREE]}, pro {RETENTION_CAP_DAYS[Plan.PRO]}, "
                    f"team {RETENTION_CAP_DAYS[Plan.TEAM]})",
                )
            ]
        )
    account.run_retention_days = days
