"""Following one run live: `run.updated` over server-sent events (GET /api/v1/events).

Each event of the run is a signal to read the run again (events carry no trace). The stream is
opened first and the run read after, so no change between the two is lost; a stream quiet for
longer than the server's pings (or dropped) is reopened with `Last-Event-ID`, which replays
what was missed, after reading the run once more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from client.api import API, Api
from client.exit_codes import CliError, Exit
from client.output import STEP_COLUMNS, out, run_summary, step_row, styled

TERMINAL = frozenset({"success", "failed", "cancelled", "timeout"})
# Longer than the server's 15 s pings: a read timeout means the stream is stuck, not just quiet.
QUIET_S = 20.0


class RunView:
    """What the watcher shows: a live table on a terminal, one line per change elsewhere (CI logs)."""

    def __init__(self, title: str, live: bool) -> None:
        self.title = title
        self.live_mode = live
        self.printed_steps = 0
        self.printed_status: str | None = None
        self.live: Live | None = None

    def __enter__(self) -> RunView:
        if self.live_mode:
            self.live = Live(Text(f"{self.title}: connecting…"), console=out, auto_refresh=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def show(self, run: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(self._renderable(run), refresh=True)
            return
        for event in run.get("trace", [])[self.printed_steps :]:
            row = step_row(event)
            out.print(
                Text.assemble(f"step {row[0]} {row[1]} ({row[2]}) ", row[3], f" {row[5]}  {row[6]}".rstrip())
            )
        self.printed_steps = len(run.get("trace", []))
        if run["status"] != self.printed_status:
            self.printed_status = run["status"]
            if run["status"] in TERMINAL:
                out.print(Text.assemble(f"run {run['id']}: ", run_summary(run)))
            else:
                out.print(Text.assemble(f"run {run['id']}: ", styled(run["status"])))

    def _renderable(self, run: dict[str, Any]) -> Group:
        table = Table(title=self.title, title_justify="left")
        for column in STEP_COLUMNS:
            table.add_column(column, overflow="fold")
        for event in run.get("trace", []):
            table.add_row(*step_row(event))
        footer = run_summary(run) if run["status"] in TERMINAL else Text.assemble("… ", styled(run["status"]))
        return Group(table, footer)


def follow(
    api: Api,
    run_id: str,
    on_change: Callable[[dict[str, Any]], None],
    *,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Call `on_change(run)` with the run (and its trace) at every change until it ends; the last run."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last_id: str | None = None
    run: dict[str, Any] = api.get(f"/runs/{run_id}")
    on_change(run)
    while run["status"] not in TERMINAL:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        read_s = QUIET_S if deadline is None else max(0.5, min(QUIET_S, deadline - time.monotonic()))
        try:
            with connect_sse(
                api.http, "GET", f"{API}/events", headers=headers, timeout=httpx.Timeout(10, read=read_s)
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise api.refused(source.response)
                if not source.response.headers.get("content-type", "").startswith("text/event-stream"):
                    raise SSEError("the answer is not an event stream")  # e.g. a proxy's page: retried
                run = _refresh(api, run, on_change)
                if run["status"] in TERMINAL:  # it ended before the stream listened: no event will say so
                    break
                # Every line counts, the server's pings too: a quiet run's stream is never read out (the
                # pings keep each read within its timeout), and `--timeout` must end it all the same.
                for sse in _events(source.response.iter_lines()):
                    _check(deadline, run)
                    if sse is None:
                        continue
                    event, data, event_id = sse
                    if event_id:
                        last_id = event_id
                    if event == "run.updated" and _run_id(data) == run["id"]:
                        run = _refresh(api, run, on_change)
                        if run["status"] in TERMINAL:
                            break
        except (httpx.ReadTimeout, httpx.RemoteProtocolError, SSEError):
            run = _refresh(api, run, on_change)  # quiet or dropped: read the run, then listen again
        except httpx.TransportError as exc:
            raise api.unreachable(exc) from None
        _check(deadline, run)
    return run


def _refresh(
    api: Api, previous: dict[str, Any], on_change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    run: dict[str, Any] = api.get(f"/runs/{previous['id']}")
    if (run["status"], len(run.get("trace", [])), run.get("updatedAt")) != (
        previous["status"], len(previous.get("trace", [])), previous.get("updatedAt"),
    ):  # fmt: skip
        on_change(run)
    return run


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str, str | None] | None]:
    """For every line of a server-sent event stream, the event it completes as (event, data, id), or
    None (a comment such as the server's pings, or a field of an event still to come)."""
    event, data, event_id = "", list[str](), None
    for line in lines:
        if not line:  # a blank line ends an event
            completed = (event or "message", "\n".join(data), event_id) if data else None
            event, data, event_id = "", [], None
            yield completed
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
        yield None  # a comment (empty field name), or a field of the event being read


def _run_id(data: str) -> str | None:
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload.get("id") if isinstance(payload, dict) else None


def _check(deadline: float | None, run: dict[str, Any]) -> None:
    if deadline is not None and time.monotonic() > deadline and run["status"] not in TERMINAL:
        raise CliError(
            f"run {run['id']} is still {run['status']} after the --timeout; it goes on: "
            f"`phoneflow runs watch {run['id']}` follows it again",
            Exit.RUN_TIMEOUT,
        )
