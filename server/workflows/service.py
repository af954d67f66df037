"""Workflows and their immutable versions: validation, numbering, publishing (nothing here commits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.version_diff import diff_definitions
from server.accounts.models import Account
from server.db import utcnow
from server.errors import FieldProblem, NotFound, ValidationFailed
from server.workflows.models import Workflow, WorkflowVersion


def validate_definition(definition: Any, denylist: Denylist) -> list[dict[str, Any]]:
    """Validate with the interpreter (schema, graph, denylist); 422 listing every error.

    Returns the warnings (as JSON) when there is no error.
    """
    from interpreter.validation import validate  # the interpreter's one validator

    problems = validate(definition, denylist)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ValidationFailed(
            [FieldProblem("/definition" + p.pointer, p.message, p.hint) for p in errors],
            message=(
                f"the workflow definition has {len(errors)} problem{'s' if len(errors) != 1 else ''}; "
                f"first at {errors[0].pointer or '/'}: {errors[0].message}"
            ),
        )
    return [p.to_json() for p in problems]


def draft_problems(definition: Any, denylist: Denylist) -> dict[str, list[dict[str, str]]]:
    """Every problem of a draft, split into `errors` and `warnings` (pointers into the definition)."""
    from interpreter.validation import validate

    report: dict[str, list[dict[str, str]]] = {"errors": [], "warnings": []}
    for problem in validate(definition, denylist):
        found = {"pointer": problem.pointer, "message": problem.message, "hint": problem.hint}
        report["errors" if problem.severity == "error" else "warnings"].append(found)
    return report


def create_workflow(
    session: Session,
    account_id: str,
    name: str,
    definition: dict[str, Any],
    problems: Sequence[dict[str, Any]] = (),
) -> tuple[Workflow, WorkflowVersion]:
    """A workflow with its first version, stored as given (validate first: `validate_definition`)."""
    workflow = Workflow(account_id=account_id, name=name)
    session.add(workflow)
    session.flush()
    version = store_version(session, workflow, definition, problems)
    return workflow, version


def store_version(
    session: Session, workflow: Workflow, definition: dict[str, Any], problems: Sequence[dict[str, Any]] = ()
) -> WorkflowVersion:
    """The next numbered, immutable version of `workflow`.

    The number comes from a conditional increment on the workflow row, so that two
    concurrent saves get different numbers (the unique key backs it up).
    """
    session.flush()
    session.execute(
        update(Workflow)
        .where(Workflow.id == workflow.id)
        .values(latest_version_number=Workflow.latest_version_number + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(workflow, ["latest_version_number", "updated_at"])
    version = WorkflowVersion(
        workflow_id=workflow.id,
        account_id=workflow.account_id,
        number=workflow.latest_version_number,
        definition=definition,
        problems=list(problems),
    )
    session.add(version)
    session.flush()
    return version


def list_workflows(session: Session, account: Account) -> list[Workflow]:
    return list(
        session.scalars(
            select(Workflow)
            .where(Workflow.account_id == account.id)
            .order_by(Workflow.created_at, Workflow.id)
        )
    )


def get_workflow(session: Session, account: Account, workflow_id: str) -> Workflow:
    """One of the account's workflows; another account's is 'not found' too."""
    workflow = session.scalars(
        select(Workflow).where(Workflow.id == workflow_id, Workflow.account_id == account.id)
    ).first()
    if workflow is None:
        raise NotFound(f"no workflow {workflow_id} in this account; list them with GET /api/v1/workflows")
    return workflow


def list_versions(session: Session, workflow: Workflow) -> list[WorkflowVersion]:
    return list(
        session.scalars(
            select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == workflow.id)
            .order_by(WorkflowVersion.number)
        )
    )


def get_version(session: Session, workflow: Workflow, version_id: str) -> WorkflowVersion:
    version = session.scalars(
        select(WorkflowVersion).where(
            WorkflowVersion.id == version_id, WorkflowVersion.workflow_id == workflow.id
        )
    ).first()
    if version is None:
        raise NotFound(
            f"no version {version_id} of workflow {workflow.id}; "
            f"list them with GET /api/v1/workflows/{workflow.id}/versions"
        )
    return version


def latest_version(session: Session, workflow: Workflow) -> WorkflowVersion:
    version = session.scalars(
        select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow.id)
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    ).first()
    if version is None:  # every workflow is created with a version
        raise NotFound(f"workflow {workflow.id} has no versions")
    return version


def publish(session: Session, workflow: Workflow, version_id: str) -> WorkflowVersion:
    """Make `version_id` the version that runs."""
    version = get_version(session, workflow, version_id)
    workflow.published_version_id = version.id
    workflow.updated_at = utcnow()
    return version


def diff_versions(before: WorkflowVersion, after: WorkflowVersion) -> dict[str, Any]:
    """What changed from `before` to `after` (see interpreter.version_diff), naming both versions."""
    return {
        "workflowId": after.workflow_id,
        "fromVersion": {"id": before.id, "number": before.number},
        "toVersion": {"id": after.id, "number": after.number},
        **diff_definitions(before.definition, after.definition),
    }
