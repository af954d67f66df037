"""`phoneflow approvals list|approve|reject`: runs waiting for a person's answer."""

from __future__ import annotations

from typing import Annotated

import typer

from client.common import AsJson, Profile, connect
from client.output import out, print_json, print_table, styled, when

approvals_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Approvals waiting for people: list, approve, reject."
)

ApprovalId = Annotated[
    str, typer.Argument(help="The approval's id (see `approvals list`).", show_default=False)
]
Note = Annotated[str | None, typer.Option("--note", help="A note kept with the answer.")]


@approvals_app.command("list")
def list_command(
    status: Annotated[
        str, typer.Option("--status", help="pending, approved, rejected, timed_out, cancelled or all.")
    ] = "pending",
    run: Annotated[str | None, typer.Option("--run", help="Only this run's approvals.")] = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """The account's approvals, newest first (default: those waiting)."""
    with connect(profile) as api:
        approvals = api.get("/approvals", status=None if status == "all" else status, runId=run)
    if as_json:
        print_json(approvals)
        return
    rows = [
        [a["id"], a["runId"], a["nodeId"], a["message"], styled(a["status"]), when(a["expiresAt"]),
         ", ".join(a["approvers"]) or "anyone", a.get("decidedBy") or ""]
        for a in approvals
    ]  # fmt: skip
    print_table(
        None, ("id", "run", "step", "message", "status", "expires", "approvers", "answered by"), rows,
        f"no approvals{'' if status == 'all' else f' {status}'}",
    )  # fmt: skip


def _decide(approval_id: str, decision: str, note: str | None, profile: str | None, as_json: bool) -> None:
    with connect(profile) as api:
        answered = api.post(f"/approvals/{approval_id}/decision", {"decision": decision, "note": note})
    if as_json:
        print_json(answered)
    else:
        out.print(f"approval {approval_id} {answered['status']}; run {answered['runId']} goes on")


@approvals_app.command("approve")
def approve_command(
    approval_id: ApprovalId, note: Note = None, profile: Profile = None, as_json: AsJson = False
) -> None:
    """Approve: the run follows the step's `approved` edge."""
    _decide(approval_id, "approve", note, profile, as_json)


@approvals_app.command("reject")
def reject_command(
    approval_id: ApprovalId, note: Note = None, profile: Profile = None, as_json: AsJson = False
) -> None:
    """Reject: the run follows the step's `rejected` edge."""
    _decide(approval_id, "reject", note, profile, as_json)
