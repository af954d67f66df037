"""The engine's execution log: its decisions in order, as it makes them, beside the trace.

    log = RunLog(clock, started=clock.monotonic())
    log.add("condition", "vars.n < 3 was true", {"expr": "vars.n < 3", "value": True})
    entries = log.to_json()

The trace says what each step did (the contract between the simulator and the phone, compared
by the golden cases); the log says why the run went where it went, with what the trace cannot
hold: each edge taken and why, a condition's value, a retry and its delay, every look of an
element wait, an approval asked and answered, a cancel or pause seen at a step boundary, and
the variables and node outputs as they changed. It is an additive part of the run result
(`RunResult.log`, `"log"` in `to_json()`), and it differs between a phone and the simulator
where their timing does (how many looks a wait took), never in what the trace says.

An entry is `{seq, atMs, step, nodeId, kind, text, values}`: `atMs` is the time since the run
started (on the run's clock), `step` the trace seq of the step it belongs to (null before the
first step and at the end), `kind` one of `KINDS`, `text` the words a person reads, `values`
the facts as JSON. Repeated looks of one wait (`wait-poll`) and the asks of a held run
(`pause-seen`) are one entry with `count` and `lastAtMs`.

Bounded, so that a loop of 10,000 steps or a wait of 600 s cannot grow a report: each string
in `values` is cut at `MAX_STRING` characters and all of an entry's values at `MAX_VALUES_CHARS`
("… N more characters"); `text` at `MAX_TEXT`; and of the entries the first `HEAD_ENTRIES`
and the last `TAIL_ENTRIES` are kept, with one `truncated` entry between them that says how
many were left out.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interpreter.clock import Clock

HEAD_ENTRIES = 200
TAIL_ENTRIES = 99
MAX_ENTRIES = HEAD_ENTRIES + 1 + TAIL_ENTRIES  # with the `truncated` marker
MAX_TEXT = 300
MAX_STRING = 200
MAX_VALUES_CHARS = 600

_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")

KINDS = (
    "start",  # the run begins: its first node, its inputs
    "wait-poll",  # a wait looked and did not find yet (element, app in front, scroll)
    "condition",  # a control.if and its value
    "retry",  # an attempt failed and another is scheduled after a delay
    "approval-asked",
    "approval-answered",
    "var-set",  # vars.NAME changed
    "output-set",  # nodes.ID.output was written
    "step",  # a step ended: outcome, attempts, time
    "edge",  # the way taken after a step, and why
    "cancel-seen",  # a cancel was seen before a step: no further step starts
    "pause-seen",  # the run holds before a step (repeated asks coalesced)
    "resumed",  # a held run goes on
    "halted",  # the run control ended the run (failed)
    "timeout",  # the run's time cap was reached
    "end",  # how the run ended
    "truncated",  # entries left out here (the bound)
)


Text = str | Callable[[], str]
"""An entry's words, or a function that makes them (called only for the entries kept)."""


@dataclass(slots=True)
class LogEntry:
    """One entry as written: raw values and clock times; bounded and rounded by `to_json`."""

    seq: int
    at: float  # the run's clock (monotonic seconds)
    step: int | None
    node_id: str | None
    kind: str
    text: Text
    values: Mapping[str, Any] | None
    count: int = 1
    last_at: float = 0.0
    key: str | None = None  # what makes a repeated poll the same poll (not sent)

    def to_json(self, started: float) -> dict[str, Any]:
        text = self.text if isinstance(self.text, str) else self.text()
        data: dict[str, Any] = {
            "seq": self.seq,
            "atMs": _ms(self.at - started),
            "step": self.step,
            "nodeId": self.node_id,
            "kind": self.kind,
            "text": bound_text(text, MAX_TEXT),
            "values": bound_values(self.values) if self.values else {},
        }
        if self.count > 1:
            data["count"] = self.count
            data["lastAtMs"] = _ms(self.last_at - started)
        return data


class RunLog:
    """One run's log; the engine and its steps write it, `to_json()` reads it (bounded).

    Writing is cheap (a step of a long loop writes several entries): an entry keeps references to
    its values and is bounded only when `to_json()` reads it, and only the entries kept are. The
    values must therefore not change after they were written (the engine's never do: a step makes
    new outputs, and setting a variable replaces its value)."""

    def __init__(self, clock: Clock | None = None, started: float = 0.0) -> None:
        self._clock = clock
        self._started = started
        self._head: list[LogEntry] = []
        self._tail: deque[LogEntry] = deque(maxlen=TAIL_ENTRIES)
        self._written = 0
        self.step: int | None = None  # the step in progress (its trace seq), set by the engine
        self.node_id: str | None = None

    @property
    def written(self) -> int:
        """How many entries were written (coalesced polls count once), kept or not."""
        return self._written

    def at_step(self, step: int | None, node_id: str | None) -> None:
        """The step (trace seq) and node the following entries belong to."""
        self.step, self.node_id = step, node_id

    def add(
        self,
        kind: str,
        text: Text,
        values: Mapping[str, Any] | None = None,
        *,
        node_id: str | None = None,
        step: int | None = None,
    ) -> None:
        """Write an entry for the current step (or the given one)."""
        self._written += 1
        entry = LogEntry(
            self._written,
            self._clock.monotonic() if self._clock is not None else self._started,
            self.step if step is None else step,
            self.node_id if node_id is None else node_id,
            kind,
            text,
            values,
        )
        if len(self._head) < HEAD_ENTRIES:
            self._head.append(entry)
        else:
            self._tail.append(entry)

    def poll(self, kind: str, key: str, text: Text, values: Mapping[str, Any] | None = None) -> None:
        """A repeated look (`wait-poll`, `pause-seen`): one entry per run of looks with one `key`.

        When the last entry is the same look of the same step, it counts one more and moves its
        `lastAtMs`; otherwise a new entry begins."""
        last = self._last()
        if (
            last is not None
            and last.key == key
            and last.kind == kind
            and last.step == self.step
            and last.node_id == self.node_id
        ):
            last.count += 1
            last.last_at = self._clock.monotonic() if self._clock is not None else self._started
            return
        self.add(kind, text, values)
        entry = self._last()
        if entry is not None:
            entry.key = key
            entry.last_at = entry.at

    def to_json(self) -> list[dict[str, Any]]:
        started = self._started
        entries = [entry.to_json(started) for entry in self._head]
        dropped = self._written - len(self._head) - len(self._tail)
        if dropped > 0:
            first_tail = self._tail[0] if self._tail else None
            entries.append(
                {
                    "seq": self._head[-1].seq + 1,
                    "atMs": _ms(first_tail.at - started) if first_tail else entries[-1]["atMs"],
                    "step": None,
                    "nodeId": None,
                    "kind": "truncated",
                    "text": (
                        f"… {dropped:,} more entries not kept (the log keeps the first "
                        f"{HEAD_ENTRIES} and the last {TAIL_ENTRIES})"
                    ),
                    "values": {"dropped": dropped},
                }
            )
        entries.extend(entry.to_json(started) for entry in self._tail)
        return entries

    def _last(self) -> LogEntry | None:
        if self._tail:
            return self._tail[-1]
        return self._head[-1] if self._head else None


def _ms(seconds: float) -> int:
    return max(int(round(seconds * 1000)), 0)


def bound_text(text: str, limit: int) -> str:
    """`text` cut at `limit` characters with how many more there were; no NUL or lone surrogate
    (they could not be sent as JSON to the server)."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return _clean(text)


def bound_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as plain JSON (finite numbers, text keys), each string cut at `MAX_STRING`, the whole
    at about `MAX_VALUES_CHARS` characters: what does not fit is replaced by a "…" marker."""
    budget = [MAX_VALUES_CHARS]
    return {_clean(str(key)[:100]): _bound(value, budget, 0) for key, value in values.items()}


def _bound(value: Any, budget: list[int], depth: int) -> Any:
    if budget[0] <= 0:
        return "…"
    if value is None or isinstance(value, bool):
        budget[0] -= 4
        return value
    if isinstance(value, int):
        budget[0] -= 8
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        budget[0] -= 8
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        cut = min(MAX_STRING, max(budget[0], 1))
        budget[0] -= min(len(value), cut) + 2
        return bound_text(value, cut)
    if isinstance(value, Mapping | list | tuple) and depth >= 6:
        return _summary(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        items = list(value.items())
        for index, (key, item) in enumerate(items):
            if budget[0] <= 0:
                out["…"] = f"{len(items) - index} more keys"
                break
            name = _clean(str(key)[:100])
            budget[0] -= len(name) + 3
            out[name] = _bound(item, budget, depth + 1)
        return out
    if isinstance(value, list | tuple):
        seq: list[Any] = []
        for index, item in enumerate(value):
            if budget[0] <= 0:
                seq.append(f"… {len(value) - index} more items")
                break
            seq.append(_bound(item, budget, depth + 1))
        return seq
    return _bound(str(value), budget, depth)


def _summary(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return bound_text(text, 40)


def _clean(text: str) -> str:
    return _UNSENDABLE.sub("\ufffd", text)


def short_json(value: Any, limit: int = 80) -> str:
    """`value` as compact JSON for a log line, cut at `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
