"""An account's saved app models, and recording into one from the screen inspector's commands.

Nothing here commits (the request's transaction does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interpreter.appmodel import AppModel
from interpreter.appmodel.recording import Foreground, Model, empty_model, record_click, record_screen
from interpreter.errors import AppModelError
from interpreter.hierarchy import HierarchyError, from_android_xml
from server.accounts.models import Account
from server.appmodels.models import SavedAppModel
from server.appmodels.schemas import AppModelRead, AppModelSummary, Recorded
from server.devices import commands
from server.errors import Conflict, FieldProblem, NotFound, ValidationFailed


def check_model(model: Model, pointer: str = "/model") -> Model:
    """The model if the simulator can run it (an empty one is fine); 422 at `pointer` otherwise."""
    if (
        model.get("apps") == []
        and set(model) <= {"schemaVersion", "apps"}
        and model.get("schemaVersion") == 1
    ):
        return model
    try:
        AppModel.from_dict(model)
    except AppModelError as exc:
        raise ValidationFailed(
            [FieldProblem(pointer, str(exc), "send an app model as docs/app-model.md describes it")]
        ) from None
    return model


def summary(row: SavedAppModel) -> dict[str, Any]:
    apps = row.model.get("apps", []) if isinstance(row.model, dict) else []
    return {
        "id": row.id,
        "name": row.name,
        "packages": [str(app.get("package")) for app in apps],
        "screens": sum(len(app.get("screens", [])) for app in apps),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def read(row: SavedAppModel) -> AppModelRead:
    return AppModelRead.model_validate({**summary(row), "model": row.model})


def list_summaries(session: Session, account: Account) -> list[AppModelSummary]:
    rows = session.scalars(
        select(SavedAppModel).where(SavedAppModel.account_id == account.id).order_by(SavedAppModel.name)
    ).all()
    return [AppModelSummary.model_validate(summary(row)) for row in rows]


def get(session: Session, account: Account, model_id: str) -> SavedAppModel:
    row = session.scalars(
        select(SavedAppModel).where(
            SavedAppModel.id == model_id.lower(), SavedAppModel.account_id == account.id
        )
    ).first()
    if row is None:
        raise NotFound(f"no app model {model_id} in this account: list them with GET /api/v1/app-models")
    return row


def _flush_named(session: Session, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"this account already has an app model named {name!r}: choose another name") from None


def create(
    session: Session, account: Account, name: str, model: Model | None, now: datetime
) -> SavedAppModel:
    row = SavedAppModel(
        account_id=account.id,
        name=name.strip(),
        model=check_model(model) if model is not None else empty_model(),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    _flush_named(session, row.name)
    return row


def update(
    session: Session, row: SavedAppModel, name: str | None, model: Model | None, now: datetime
) -> SavedAppModel:
    if name is not None:
        row.name = name.strip()
    if model is not None:
        row.model = check_model(model)
    row.updated_at = now
    _flush_named(session, row.name)
    return row


def _foreground(data: Any, where: str) -> Foreground:
    package = data.get("package") if isinstance(data, dict) else None
    if not isinstance(package, str) or not package:
        raise Conflict(f"the command's {where} does not say which app was in front: update the bridge")
    activity = data.get("activity")
    return Foreground(package, activity if isinstance(activity, str) and activity else None)


def record(
    session: Session, account: Account, row: SavedAppModel, device_id: str, command_id: str, now: datetime
) -> Recorded:
    """Record what a done inspect or click command saw into the model (which is saved)."""
    command = commands.read_command(session, account, device_id, command_id, now)
    if command.status != "done" or not command.result:
        raise Conflict(
            f"command {command.id} is {command.status}, not done: record a command the phone answered"
        )
    result = command.result
    try:
        after = from_android_xml(str(result.get("hierarchy") or ""))
        after_foreground = _foreground(result.get("foreground"), "answer")
        if command.kind == "click":
            before_part = result.get("before") or {}
            before = from_android_xml(str(before_part.get("hierarchy") or ""))
            clicked = result.get("clicked") or command.params
            model, click = record_click(
                row.model,
                before,
                _foreground(before_part.get("foreground"), "screen before the click"),
                (int(clicked["x"]), int(clicked["y"])),
                after,
                after_foreground,
            )
            recorded = Recorded(
                package=click.after_package,
                screen=click.after,
                before=click.before,
                widget=click.widget,
                action=click.action,
            )
        else:
            model, screen = record_screen(row.model, after, after_foreground)
            recorded = Recorded(package=after_foreground.package, screen=screen)
    except HierarchyError as exc:
        raise Conflict(f"the phone's window hierarchy cannot be read: {exc}") from None
    row.model = check_model(model)
    row.updated_at = now
    session.flush()
    return recorded
