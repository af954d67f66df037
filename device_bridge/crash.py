"""What the bridge keeps when a run breaks in a way the engine did not foresee.

A run that raises (a driver bug, a screen the bridge cannot read, a full disk) ends `failed`
with a message a person can act on, and `bridge-error.json` goes with it as an artifact: the
error, where it happened, the traceback, and what the phone showed at that moment (the raw
window hierarchy dump as text, whatever it holds), so the cause can be seen without the phone.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

from interpreter.device import Artifact
from interpreter.hierarchy import HierarchyError, from_android_xml

log = logging.getLogger(__name__)

ARTIFACT_NAME = "bridge-error.json"
# The dump is kept whole up to this many characters (a phone's is usually 20–200 KB).
MAX_DUMP_CHARS = 2_000_000


def crash_message(exc: BaseException, steps_done: int) -> str:
    """The run's `errorMessage` for an unexpected exception after `steps_done` steps."""
    return (
        f"the bridge could not go on with this run after {steps_done} step(s): "
        f"{type(exc).__name__}: {exc}. The phone may have shown something the bridge cannot read, "
        f"or lost its connection; see the artifact {ARTIFACT_NAME} for what it showed, check the phone, "
        "and trigger the run again (the bridge goes on serving)"
    )


def crash_artifact(exc: BaseException, *, run_id: str, serial: str, dump: Any, steps_done: int) -> Artifact:
    """`bridge-error.json`: the error, its traceback and `dump` (the raw hierarchy text, or why
    there is none)."""
    if isinstance(dump, str):
        seen: dict[str, Any] = {"hierarchy": dump[:MAX_DUMP_CHARS], "truncated": len(dump) > MAX_DUMP_CHARS}
    else:
        seen = {"hierarchy": None, "why": str(dump)}
    body = {
        "runId": run_id,
        "serial": serial,
        "at": datetime.now(UTC).isoformat(),
        "stepsDone": steps_done,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exception(exc),
        "screen": seen,
    }
    data = json.dumps(body, ensure_ascii=True, indent=1).encode("ascii")
    return Artifact(ARTIFACT_NAME, "application/json", data)


def hierarchy_artifact(stem: str, dump: str) -> Artifact:
    """The raw window hierarchy as the phone sent it: `<stem>-hierarchy.xml` when it is XML the
    bridge can read, else `<stem>-hierarchy.json` holding the text and why it cannot be read."""
    try:
        from_android_xml(dump)
    except HierarchyError as exc:
        body = {"readable": False, "why": str(exc), "hierarchy": dump[:MAX_DUMP_CHARS]}
        data = json.dumps(body, ensure_ascii=True, indent=1).encode("ascii")
        return Artifact(f"{stem}-hierarchy.json", "application/json", data)
    return Artifact(
        f"{stem}-hierarchy.xml", "application/xml", dump.encode("utf-8", errors="backslashreplace")
    )
