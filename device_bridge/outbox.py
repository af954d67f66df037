"""The durable outbox: every run report and artifact goes here before it goes to the server.

SQLite in WAL mode with `synchronous=FULL`, so a report the agent was told is queued is on
disk, and a `kill -9` at any moment leaves either the old or the new row, never half of one.
A step's frame is committed without waiting for the disk (`add_artifact(flush=False)`), and so is
the run in flight a step gate carries (`remember_in_flight`): each survives a `kill -9` at once and
a power cut from the next report on.
A run's final report may be queued held (`enqueue(hold=True)`): the uploader leaves it alone while the
worker carries it on its next claim (the server stores it with the claim, one request instead of two),
until the worker settles it by the claim's answer or lets it go (`release`) to be sent as any other.
Held is in memory only: after a crash the row is pending as ever and the uploader sends it.
A row leaves the outbox only after the server answered for it (`stored` / `unchanged`); a
row the server `rejected` stays, marked, with the server's reason, for `phoneflow bridge
outbox` to show. All writes go through one `Outbox` object (one connection, one lock):
it is the only writer of its tables.

Row states and their moves, written once (`move`):

    pending ──sent, stored/unchanged──> (deleted)
    pending ──sent, rejected─────────> rejected
    pending ──superseded by a newer report of the same run──> (deleted)
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from interpreter.device import Artifact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    run_status  TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_state ON reports (state, seq);
CREATE INDEX IF NOT EXISTS reports_by_run ON reports (run_id, state);
CREATE TABLE IF NOT EXISTS artifacts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    data          BLOB NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    meta          TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_by_state ON artifacts (state, id);
CREATE TABLE IF NOT EXISTS runs_in_flight (
    run_id      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    snapshot    TEXT NOT NULL
);
"""


class RowState(StrEnum):
    PENDING = "pending"
    REJECTED = "rejected"
    DONE = "done"  # never stored: a done row is deleted


_MOVES: dict[RowState, frozenset[RowState]] = {
    RowState.PENDING: frozenset({RowState.REJECTED, RowState.DONE}),
    RowState.REJECTED: frozenset(),
    RowState.DONE: frozenset(),
}


def can_move(current: RowState, new: RowState) -> bool:
    """Whether an outbox row may go from `current` to `new`."""
    return new in _MOVES[current]


class ReportResult(StrEnum):
    """What `runs.report` answered for one run."""

    STORED = "stored"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"

    @property
    def row_state(self) -> RowState:
        return RowState.REJECTED if self is ReportResult.REJECTED else RowState.DONE


@dataclass(frozen=True, slots=True)
class QueuedReport:
    seq: int
    run_id: str
    device_id: str
    run_status: str
    body: str
    state: RowState
    reason: str | None
    attempts: int
    last_error: str | None
    created_at: str

    def run(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass(frozen=True, slots=True)
class QueuedArtifact:
    id: int
    run_id: str
    device_id: str
    name: str
    content_type: str
    data: bytes
    state: RowState
    reason: str | None
    attempts: int
    meta: str | None = None  # a frame's step and screen, JSON (device_bridge/frames.py)


@dataclass(frozen=True, slots=True)
class Settlement:
    """The server's answer for one sent report row."""

    seq: int
    result: ReportResult
    reason: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Outbox:
    """The one writer of the outbox database. Thread-safe; open one per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we write BEGIN IMMEDIATE ourselves, so each change is one
        # short transaction and readers in other processes never see half of it.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Report rows a worker carries on its claim: not for the uploader until released (in memory).
        self._held: set[int] = set()
        with self._lock:
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(artifacts)")}
            if "meta" not in columns:  # an outbox an older bridge made
                self._db.execute("ALTER TABLE artifacts ADD COLUMN meta TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self, *, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. `flush=False`: committed to the log without waiting for the disk
        (`synchronous=NORMAL` for it): it survives the bridge being killed at once, and a power
        cut from the next flushed commit on, which writes the log out with it."""
        with self._lock:
            if not flush:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if not flush:
                    self._db.execute("PRAGMA synchronous=FULL")
            self._changed.notify_all()

    # --- reports -----------------------------------------------------------------------

    def enqueue(
        self, run: dict[str, Any], device_id: str, *, in_flight: bool | None = None, hold: bool = False
    ) -> int:
        """Queue a report of `run` (a runs.report run object); returns its sequence number.

        A newer report of a run supersedes the pending older ones: the agent only ever
        reports a run further along than before, and the server keeps the furthest state,
        so sending the older ones would only cost time. A row in flight that is superseded
        is simply gone when its answer comes back; the newer row is still pending.

        `in_flight=True` also remembers the run as moving on this device (its latest
        snapshot), `False` forgets it, in the same transaction: a bridge that died mid-run
        finds it with `runs_in_flight()` when it starts again, and ends it.

        `hold=True`: the row is held from the moment it is written (the uploader never sees it before
        the worker decides: see the module docstring); `settle` or `release` it.
        """
        body = json.dumps(run, separators=(",", ":"), sort_keys=True)
        status = str(run.get("status", ""))
        return self.enqueue_json(str(run["id"]), status, body, device_id, in_flight=in_flight, hold=hold)

    def enqueue_json(
        self,
        run_id: str,
        status: str,
        body: str,
        device_id: str,
        *,
        in_flight: bool | None = None,
        hold: bool = False,
    ) -> int:
        """`enqueue` of a run object already encoded (`body`, JSON; its `id` and `status` given)."""
        with self._write() as db:
            if in_flight is True:
                db.execute(
                    "INSERT OR REPLACE INTO runs_in_flight (run_id, device_id, snapshot) VALUES (?, ?, ?)",
                    (run_id, device_id, body),
                )
            elif in_flight is False:
                db.execute("DELETE FROM runs_in_flight WHERE run_id = ?", (run_id,))
            cursor = db.execute(
                "INSERT INTO reports (run_id, device_id, run_status, body, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, device_id, status, body, RowState.PENDING.value, _now()),
            )
            seq = int(cursor.lastrowid or 0)
            db.execute(
                "DELETE FROM reports WHERE run_id = ? AND state = ? AND seq < ?",
                (run_id, RowState.PENDING.value, seq),
            )
            if hold:
                self._held.add(seq)  # under the lock, before the commit wakes the uploader
        return seq

    def held_report(self, seq: int) -> QueuedReport | None:
        """The held, still pending report row `seq` (None once it is settled, superseded or released)."""
        with self._lock:
            if seq not in self._held:
                return None
            row = self._db.execute(
                "SELECT * FROM reports WHERE seq = ? AND state = ?", (seq, RowState.PENDING.value)
            ).fetchone()
        return _report(row) if row else None

    def release(self, seq: int) -> None:
        """Let a held row go to the uploader (a no-op for a row not held, or gone)."""
        with self._lock:
            if seq in self._held:
                self._held.discard(seq)
                self._changed.notify_all()

    def remember_in_flight(self, run_id: str, device_id: str, body: str) -> None:
        """Remember a run (`body`: a runs.report run object, JSON, that the server may have) as moving
        on this device, as `enqueue(in_flight=True)` does, without queuing a report of it.

        Committed without waiting for the disk (as a frame is): a step gate carries one per step, and
        a flushed commit per step cost a tenth of a millisecond of CPU and half of one waiting. It
        survives the bridge being killed at once; after a power cut the run is ended from the last
        flushed snapshot (the next queued report flushes this one with it). Nothing to send comes
        with it, so the uploader waiting for a change is not woken."""
        with self._lock:  # one statement: its own transaction (autocommit), no BEGIN/COMMIT round
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO runs_in_flight (run_id, device_id, snapshot) VALUES (?, ?, ?)",
                    (run_id, device_id, body),
                )
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def runs_in_flight(self) -> list[tuple[str, dict[str, Any]]]:
        """(device id, latest snapshot) of every run a bridge started here and never finished."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, snapshot FROM runs_in_flight ORDER BY run_id"
            ).fetchall()
        return [(str(device_id), json.loads(snapshot)) for device_id, snapshot in rows]

    def next_batch(self, limit: int = 100, max_bytes: int | None = None) -> list[QueuedReport]:
        """The oldest pending reports of one device (the device of the oldest one).

        At most `limit` rows and, past the first row, at most `max_bytes` of run JSON (the
        server caps request bodies). One run appears at most once, so one answer settles one row.
        """
        with self._lock:
            held = list(self._held)  # a few at most (one a phone): left out by the statements
            not_held = f" AND seq NOT IN ({','.join('?' * len(held))})" if held else ""
            first = self._db.execute(
                f"SELECT device_id FROM reports WHERE state = ?{not_held} ORDER BY seq LIMIT 1",
                (RowState.PENDING.value, *held),
            ).fetchone()
            if first is None:
                return []
            rows = self._db.execute(
                f"SELECT * FROM reports WHERE state = ? AND device_id = ?{not_held} ORDER BY seq LIMIT ?",
                (RowState.PENDING.value, first[0], *held, limit),
            ).fetchall()
        batch: list[QueuedReport] = []
        seen: set[str] = set()
        size = 0
        for row in rows:
            report = _report(row)
            if report.run_id in seen:
                continue
            size += len(report.body) + 1
            if batch and max_bytes is not None and size > max_bytes:
                break
            seen.add(report.run_id)
            batch.append(report)
        return batch

    def settle(self, settlements: Iterable[Settlement]) -> None:
        """Apply the server's answers in one transaction: done rows go, rejected rows stay marked (a held
        row settled is no longer held)."""
        with self._write() as db:
            for item in settlements:
                self._held.discard(item.seq)
                target = item.result.row_state
                if not can_move(RowState.PENDING, target):  # pragma: no cover - the table says yes
                    raise AssertionError(f"outbox row cannot move pending -> {target}")
                if target is RowState.DONE:
                    db.execute(
                        "DELETE FROM reports WHERE seq = ? AND state = ?", (item.seq, RowState.PENDING.value)
                    )
                else:
                    db.execute(
                        "UPDATE reports SET state = ?, reason = ?, attempts = attempts + 1"
                        " WHERE seq = ? AND state = ?",
                        (
                            target.value,
                            item.reason or "rejected (no reason given)",
                            item.seq,
                            RowState.PENDING.value,
                        ),
                    )

    def note_failure(self, seqs: Sequence[int], error: str) -> None:
        """Remember that sending these rows failed (they stay pending)."""
        with self._write() as db:
            db.executemany(
                "UPDATE reports SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(error, seq) for seq in seqs],
            )

    def reports(
        self, states: Sequence[RowState] = (RowState.PENDING, RowState.REJECTED)
    ) -> list[QueuedReport]:
        """Queued reports in the given states, oldest first."""
        marks = ",".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM reports WHERE state IN ({marks}) ORDER BY seq", [s.value for s in states]
            ).fetchall()
        return [_report(row) for row in rows]

    def count(self, state: RowState = RowState.PENDING) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM reports WHERE state = ?", (state.value,)).fetchone()
        return int(row[0])

    def has_pending_report(self, run_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM reports WHERE run_id = ? AND state = ? LIMIT 1",
                (run_id, RowState.PENDING.value),
            ).fetchone()
        return row is not None

    def wait_for_change(self, timeout: float) -> None:
        """Block until something is written through this object, or `timeout` passes."""
        with self._changed:
            self._changed.wait(timeout)

    # --- artifacts ---------------------------------------------------------------------

    def add_artifact(
        self,
        run_id: str,
        device_id: str,
        artifact: Artifact,
        meta: dict[str, Any] | None = None,
        *,
        flush: bool = True,
    ) -> int:
        """Queue an artifact of a run (`meta`: a frame's step and screen, sent beside it).

        `flush=False` (a step's frame: one per step, beside that step's report) does not wait
        for the disk: the frame survives a killed bridge at once, a power cut once the next
        report is queued (see `_write`)."""
        meta_text = json.dumps(meta, separators=(",", ":")) if meta is not None else None
        with self._write(flush=flush) as db:
            cursor = db.execute(
                "INSERT INTO artifacts (run_id, device_id, name, content_type, data, state, created_at, meta)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    device_id,
                    artifact.name,
                    artifact.content_type,
                    artifact.data,
                    RowState.PENDING.value,
                    _now(),
                    meta_text,
                ),
            )
            return int(cursor.lastrowid or 0)

    def next_artifact(self) -> QueuedArtifact | None:
        """The oldest pending artifact whose run has no pending report left (the server knows the run)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts a WHERE a.state = ? AND NOT EXISTS"
                " (SELECT 1 FROM reports r WHERE r.run_id = a.run_id AND r.state = ?) ORDER BY a.id LIMIT 1",
                (RowState.PENDING.value, RowState.PENDING.value),
            ).fetchone()
        return _artifact(row) if row else None

    def artifact_done(self, artifact_id: int) -> None:
        """The server has the artifact: its row goes, without waiting for the disk (one a step with
        frames; after a power cut an artifact is at worst sent again: the server keeps its copy)."""
        with self._write(flush=False) as db:
            db.execute(
                "DELETE FROM artifacts WHERE id = ? AND state = ?", (artifact_id, RowState.PENDING.value)
            )

    def artifact_rejected(self, artifact_id: int, reason: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE artifacts SET state = ?, reason = ?, attempts = attempts + 1"
                " WHERE id = ? AND state = ?",
                (RowState.REJECTED.value, reason, artifact_id, RowState.PENDING.value),
            )

    def artifact_failed(self, artifact_id: int, error: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE artifacts SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, artifact_id),
            )

    def artifacts(
        self, states: Sequence[RowState] = (RowState.PENDING, RowState.REJECTED)
    ) -> list[QueuedArtifact]:
        marks = ",".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE state IN ({marks}) ORDER BY id",
                [s.value for s in states],
            ).fetchall()
        return [_artifact(row) for row in rows]


def _report(row: tuple[Any, ...]) -> QueuedReport:
    seq, run_id, device_id, run_status, body, state, reason, attempts, last_error, created_at = row
    return QueuedReport(
        int(seq),
        run_id,
        device_id,
        run_status,
        body,
        RowState(state),
        reason,
        int(attempts),
        last_error,
        created_at,
    )


_ARTIFACT_COLUMNS = "id, run_id, device_id, name, content_type, data, state, reason, attempts, meta"


def _artifact(row: tuple[Any, ...]) -> QueuedArtifact:
    art_id, run_id, device_id, name, content_type, data, state, reason, attempts, meta = row
    return QueuedArtifact(
        int(art_id),
        run_id,
        device_id,
        name,
        content_type,
        bytes(data),
        RowState(state),
        reason,
        int(attempts),
        meta,
    )
