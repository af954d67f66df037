"""A run's screens: one frame per step the bridge (or the simulator) kept, with the element it acted on.

A frame is an artifact named `frame-SEQ.jpg` (or `.webp`; SEQ is the trace `seq` of the step the
screen follows, five digits, `00000` for the screen before the first step) uploaded with `meta`:

    {"seq": 3, "nodeId": "new", "kind": "action.tapByText", "outcome": "ok",
     "bounds": [40, 812, 1040, 968], "screen": [1080, 2340], "takenAt": "2026-11-29T09:40:01.250Z"}

`bounds` (left, top, right, bottom in screen pixels) is the element the step acted on, or null.
When a frame is stored the first time, a `run.frame` event goes out over the run's SSE stream
(`record_frame`), so a page showing the run swaps its screen without asking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from interpreter import safe_json
from server.artifact_store.service import replace_artifact
from server.db import after_commit, utcnow
from server.errors import FieldProblem, NotFound, ValidationFailed
from server.runs.events import RUN_FRAME
from server.runs.models import Artifact, Run, RunEvent
from server.runs.pg_notify import notify_on_commit
from server.settings import Settings

FRAME_MODES = ("every", "failures", "off")
FRAME_NAME = re.compile(r"^frame-(\d{5})\.(jpg|webp)$")
# The newest screen of a run watched live (replaced by each live frame; not part of the replay).
LIVE_FRAME = "live.jpg"
MAX_META_CHARS = 2000


def run_frames(definition: dict[str, Any], run_setting: str | None = None) -> str:
    """When the bridge keeps a claimed run's screens: the run's own setting (given at trigger), else
    its workflow's `frames`, else `every`; sent with the claim, the bridge keeps the lesser of it and
    its own setting."""
    for mode in (run_setting, definition.get("frames")):
        if mode in FRAME_MODES:
            return str(mode)
    return "every"


class FrameMeta(BaseModel):
    """What comes beside a frame's bytes (the upload's `meta` field, JSON)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    seq: int = Field(ge=0, le=100_000)
    node_id: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=100)
    outcome: str | None = Field(default=None, max_length=16)
    bounds: tuple[int, int, int, int] | None = None
    screen: tuple[int, int] | None = None
    taken_at: str | None = Field(default=None, max_length=40)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


def parse_meta(text: str | None, name: str) -> dict[str, Any] | None:
    """The upload's `meta` as stored JSON, or None when there is none; 422 when it is unusable."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_META_CHARS:
        raise ValidationFailed(
            [FieldProblem("/meta", f"meta is longer than {MAX_META_CHARS} characters", "")]
        )
    try:
        # safe_json: a multipart field is not seen by the input gate (deep, NUL, lone surrogates).
        meta = FrameMeta.model_validate(safe_json.loads(text)).to_json()
    except (ValueError, ValidationError) as exc:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/meta",
                    f"meta is not a frame's metadata: {exc}",
                    'send {"seq": N, "bounds": [l, t, r, b] or null, "screen": [w, h], ...}',
                )
            ]
        ) from exc
    match = FRAME_NAME.match(name)
    if match is None:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/name", f"{name!r} is not a frame's name", "name a frame frame-SEQ.jpg (5 digits)"
                )
            ]
        )
    if int(match.group(1)) != meta["seq"]:
        raise ValidationFailed(
            [FieldProblem("/meta/seq", f"meta.seq {meta['seq']} is not the seq in the name {name!r}", "")]
        )
    return meta


def frame_event(run_id: str, name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The `run.frame` event's data: the run, the frame's name and step, and where to fetch it."""
    return {"id": run_id, "name": name, "url": f"/api/v1/runs/{run_id}/artifacts/{name}", **meta}


def record_frame(
    session: Session,
    account_id: str,
    run_id: str,
    name: str,
    meta: dict[str, Any],
    notify: Callable[[], object] | None,
) -> None:
    """Write the `run.frame` event of a newly stored frame; `notify` wakes the hub after the commit."""
    session.execute(
        insert(RunEvent).values(
            account_id=account_id,
            run_id=run_id,
            payload=frame_event(run_id, name, meta),
            event=RUN_FRAME,
            created_at=utcnow(),
        )
    )
    notify_on_commit(session)
    if notify is not None:
        after_commit(session, notify)


def store_live_frame(
    session: Session,
    settings: Settings,
    device_id: str,
    run_id: str,
    data: bytes,
    notify: Callable[[], object] | None,
) -> None:
    """Replace the run's `live.jpg` and announce it (`run.frame` with `live: true`)."""
    run = session.scalars(select(Run).where(Run.id == run_id.lower(), Run.device_id == device_id)).first()
    if run is None:
        raise NotFound(f"this device has no run {run_id}; report the run with runs.report before its frames")
    now = utcnow()
    replace_artifact(
        session,
        settings,
        account_id=run.account_id,
        run_id=run.id,
        name=LIVE_FRAME,
        content_type="image/jpeg",
        data=data,
    )
    payload = {
        "id": run.id,
        "name": LIVE_FRAME,
        "url": f"/api/v1/runs/{run.id}/artifacts/{LIVE_FRAME}",
        "live": True,
        "takenAt": now.isoformat(),
    }
    session.execute(
        insert(RunEvent).values(
            account_id=run.account_id, run_id=run.id, payload=payload, event=RUN_FRAME, created_at=now
        )
    )
    notify_on_commit(session)
    if notify is not None:
        after_commit(session, notify)


def frames_of(session: Session, run_id: str) -> list[dict[str, Any]]:
    """A run's frames in step order: each its meta plus `name` and `size`."""
    rows = session.execute(
        select(Artifact.name, Artifact.size, Artifact.meta).where(
            Artifact.run_id == run_id, Artifact.meta.is_not(None)
        )
    ).all()
    frames = [{**row.meta, "name": row.name, "size": row.size} for row in rows if FRAME_NAME.match(row.name)]
    frames.sort(key=lambda frame: (int(frame.get("seq", 0)), frame["name"]))
    return frames
