"""`/api/v1/denylist`: the global package denylist (read-only) and the account's own entries."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from server.auth import CurrentAccount
from server.db import SessionDep
from server.denylist import service
from server.denylist.schemas import DenylistEntryCreate, DenylistEntryRead, DenylistRead
from server.errors import problem_responses
from server.runs.lease import account_lease_until, commit_then_wait_out
from server.settings import Settings

router = APIRouter(prefix="/denylist", tags=["denylist"])


@router.get("", response_model=DenylistRead, summary="The global and the account's denylist")
def read_denylist(request: Request, account: CurrentAccount, session: SessionDep) -> DenylistRead:
    settings: Settings = request.app.state.settings
    return DenylistRead(
        global_entries=list(settings.global_denylist.entries),
        account_entries=[
            DenylistEntryRead.model_validate(e) for e in service.list_entries(session, account.id)
        ],
    )


@router.post(
    "",
    response_model=DenylistEntryRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a package name or glob to the account's denylist",
    responses=problem_responses(409, c409="Already on the denylist"),
)
def add_entry(
    body: DenylistEntryCreate, request: Request, account: CurrentAccount, session: SessionDep
) -> DenylistEntryRead:
    """The entry applies to runs in flight from their next step once this answers (a bridge that holds a
    lease on one of the account's runs has let it run out by then)."""
    entry = DenylistEntryRead.model_validate(service.add_entry(session, account, body.pattern))
    lease_s = request.app.state.settings.run_lease_s
    commit_then_wait_out(session, lambda s: account_lease_until(s, account.id, lease_s))
    return entry


@router.delete(
    "/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove an entry from the account's denylist",
)
def remove_entry(entry_id: str, account: CurrentAccount, session: SessionDep) -> Response:
    service.remove_entry(session, account, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
