"""How the API commands print: rich tables for people, `--json` for scripts, errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

STATUS_STYLES = {
    "success": "bold green",
    "failed": "bold red",
    "timeout": "bold yellow",
    "cancelled": "magenta",
    "running": "cyan",
    "queued": "dim",
    "waiting_for_approval": "bold yellow",
    "pending": "bold yellow",
    "approved": "green",
    "rejected": "red",
}
OUTCOME_STYLES = {"ok": "green", "skipped": "yellow", "failed": "bold red"}


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else (scripts read it)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    # A lone surrogate (no character UTF-8 can carry) stays the JSON escape it came as.
    out.out(text.encode("utf-8", "backslashreplace").decode("utf-8"), highlight=False)


def styled(value: str | None, styles: dict[str, str] = STATUS_STYLES) -> Text:
    return Text(value or "", style=styles.get(value or "", ""))


def when(value: str | None) -> str:
    """An API time (ISO-8601 UTC) as local `YYYY-MM-DD HH:MM:SS`."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        # ids stay whole (to copy); other columns wrap, but never inside their header's words
        whole = column in ("id", "run")
        grid.add_column(column, overflow="fold", no_wrap=whole, min_width=None if whole else len(column))
    for row in rows:
        grid.add_row(*row)
    return grid


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    if not rows:
        err.print(empty)
        return
    out.print(table(title, columns, rows))


def step_row(event: dict[str, Any]) -> list[str | Text]:
    """A trace event as a table row: #, step, kind, outcome, tries, duration, message or output."""
    detail = event.get("message") or (
        json.dumps(event["output"], ensure_ascii=False) if event.get("output") else ""
    )
    return [
        str(event.get("seq", "")),
        str(event.get("nodeId", "")),
        str(event.get("kind", "")),
        styled(event.get("outcome"), OUTCOME_STYLES),
        str(event.get("attempts", "")),
        duration(event.get("durationMs")),
        detail,
    ]


STEP_COLUMNS = ("#", "step", "kind", "outcome", "tries", "duration", "message / output")


def run_summary(run: dict[str, Any]) -> Text:
    """`success · 6 steps · 0 failed · 0 retries · 1.2 s[ · error]`."""
    text = Text.assemble(
        styled(run.get("status")),
        f" · {run.get('nSteps') or 0} steps · {run.get('nFailed') or 0} failed"
        f" · {run.get('nRetries') or 0} retries",
    )
    if run.get("durationMs") is not None:
        text.append(f" · {duration(run['durationMs'])}")
    if run.get("errorMessage"):
        text.append(f" · {run['errorMessage']}")
    return text
