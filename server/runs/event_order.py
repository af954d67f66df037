"""The order the event tail hands `run_events` rows out in: by id, never skipping an id that commits later.

Writers take event ids from a sequence without any lock between them (a lock held until commit made
every report in every server process wait for the one before, disk flush included). So on PostgreSQL
id 11 may become visible before id 10. The tail delivers rows in id order up to the first missing id
(a gap) and waits there while a transaction that may hold that id is still running:

* every transaction has its transaction id before it takes an event id (the id's default,
  `phoneflow_next_run_event_id`, migration 0023);
* so when the tail reads, in one statement, rows above a gap and the statement's snapshot, the
  holder of the missing id either committed (its row is visible), rolled back, or is in the
  snapshot's list of running transactions — it took its id before the visible row above it did;
* that list is the gap's suspects. At a later read (rows and snapshot again in one statement) whose
  snapshot runs none of them, the gap is settled: its row is visible by then, or it never will be
  (a rollback) and the tail goes past it.

SSE ids therefore stay increasing, and `Last-Event-ID` resumes from any id the tail has handed out.
On SQLite one writer at a time commits, so ids become visible in order and there is no snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A PostgreSQL snapshot: transactions below `xmin` have ended; `running` are those that had not."""

    xmin: int
    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """From `pg_current_snapshot()::text`: `xmin:xmax:xid,xid,...`."""
        xmin, _xmax, running = text.split(":")
        return cls(int(xmin), frozenset(int(xid) for xid in running.split(",") if xid))

    def still_running(self, suspects: frozenset[int]) -> bool:
        """Whether any of `suspects` is still running in this snapshot."""
        return any(xid >= self.xmin and xid in self.running for xid in suspects)


class HasId(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=HasId)


@dataclass
class EventOrder(Generic[RowT]):
    """The tail's position (every id up to it is delivered or will never exist) and the gaps it waits at."""

    position: int
    # The first id of each gap seen above the position -> the transactions that may hold it.
    _suspects: dict[int, frozenset[int]] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        """True while a gap holds rows back: the tail should look again soon (a rollback sends no NOTIFY)."""
        return bool(self._suspects)

    def advance(self, rows: list[RowT], snapshot: Snapshot | None) -> list[RowT]:
        """The rows that may go out now, in id order, from `rows`: those visible above the position,
        in id order, read in one statement with `snapshot` (None: ids become visible in order)."""
        ready: list[RowT] = []
        expected = self.position + 1
        for row in rows:
            if row.id < expected:
                continue
            if row.id > expected and snapshot is not None:
                suspects = self._suspects.setdefault(expected, snapshot.running)
                if snapshot.still_running(suspects):
                    break
            ready.append(row)
            expected = row.id + 1
        if ready:
            self.position = ready[-1].id
        self._suspects = {start: xids for start, xids in self._suspects.items() if start > self.position}
        return ready
