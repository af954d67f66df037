"""`/api/v1/account`: the caller's account, its retention window, its artifact bytes and quota, and its
API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from server.accounts import service
from server.accounts.models import Account
from server.accounts.schemas import AccountRead, AccountUpdate, TokenCreate, TokenCreated, TokenRead
from server.artifact_store.service import bytes_used, quota_bytes
from server.auth import CurrentAccount
from server.db import SessionDep

router = APIRouter(prefix="/account", tags=["account"])


def _read(account: Account, session: Session, request: Request) -> AccountRead:
    usage = {
        "artifact_bytes_used": bytes_used(session, account.id),
        "artifact_quota_bytes": quota_bytes(request.app.state.settings, account),
    }
    fields = {name: getattr(account, name) for name in AccountRead.model_fields if name not in usage}
    return AccountRead.model_validate({**fields, **usage})


@router.get(
    "", response_model=AccountRead, summary="The caller's account (with its artifact bytes and quota)"
)
def read_account(account: CurrentAccount, session: SessionDep, request: Request) -> AccountRead:
    return _read(account, session, request)


@router.patch("", response_model=AccountRead, summary="Change account settings (run retention)")
def update_account(
    body: AccountUpdate, account: CurrentAccount, session: SessionDep, request: Request
) -> AccountRead:
    if body.run_retention_days is not None:
        service.set_run_retention_days(account, body.run_retention_days)
    session.flush()
    return _read(account, session, request)


@router.get("/tokens", response_model=list[TokenRead], summary="The account's API tokens (never the tokens)")
def list_tokens(account: CurrentAccount, session: SessionDep) -> list[TokenRead]:
    return [TokenRead.model_validate(t) for t in service.list_tokens(session, account)]


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Make an API token (shown once)",
)
def create_token(body: TokenCreate, account: CurrentAccount, session: SessionDep) -> TokenCreated:
    row, token = service.create_token(session, account, body.name)
    return TokenCreated.model_validate({**TokenRead.model_validate(row).model_dump(), "token": token})


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke an API token",
)
def revoke_token(token_id: str, account: CurrentAccount, session: SessionDep) -> Response:
    service.revoke_token(session, account, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
