"""`/api/v1/account`: the caller's account, its retention window and its API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from server.accounts import service
from server.accounts.schemas import AccountRead, AccountUpdate, TokenCreate, TokenCreated, TokenRead
from server.auth import CurrentAccount
from server.db import SessionDep

router = APIRouter(prefix="/account", tags=["account"])


@router.get("", response_model=AccountRead, summary="The caller's account")
def read_account(account: CurrentAccount) -> AccountRead:
    return AccountRead.model_validate(account)


@router.patch("", response_model=AccountRead, summary="Change account settings (run retention)")
def update_account(body: AccountUpdate, account: CurrentAccount, session: SessionDep) -> AccountRead:
    if body.run_retention_days is not None:
        service.set_run_retention_days(account, body.run_retention_days)
    session.flush()
    return AccountRead.model_validate(account)


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
