"""Small dialect seams the runs domain needs on both SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Engine, Row, Table, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.runs.models import SEARCH_VALUE_CHARS, Run, RunInputValue, input_values


def utc_ms(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a `Z` (as `interpreter.trace.iso_utc`, without strftime,
    which costs more than the rest of storing a trace event)."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def dialect_name(session: Session) -> str:
    """`sqlite` or `postgresql`."""
    return session.get_bind().dialect.name


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT that knows `ON CONFLICT DO NOTHING` on the session's database."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


_PG_TRACE_INSERT = text(
    "INSERT INTO trace_events (run_id, seq, event) "
    "SELECT row->>0, (row->>1)::integer, row->2 FROM json_array_elements(CAST(:rows AS json)) AS row "
    "ON CONFLICT (run_id, seq) DO NOTHING"
)
_SQLITE_TRACE_INSERT_SQL = (
    "INSERT INTO trace_events (run_id, seq, event) VALUES (?, ?, ?) ON CONFLICT (run_id, seq) DO NOTHING"
)


def insert_runs_if_new(session: Session, rows: list[dict[str, Any]]) -> dict[str, Row[Any]]:
    """`INSERT ... ON CONFLICT (id) DO NOTHING RETURNING *` for many runs: the rows this call inserted,
    by id, as `select(Run.__table__)` reads them (so that who writes `run.updated` next need not).

    PostgreSQL gets every row in one JSON parameter (`json_populate_recordset`), SQLite a cached
    Core statement through executemany.
    """
    table = cast(Table, Run.__table__)
    if dialect_name(session) == "postgresql":
        columns = ", ".join(table.columns.keys())
        statement = text(
            f"INSERT INTO runs ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::runs, "
            f"CAST(:rows AS json)) ON CONFLICT (id) DO NOTHING RETURNING {columns}"
        ).columns(*table.columns)
        document = json.dumps(rows, default=json_time, separators=(",", ":"))
        return {row.id: row for row in session.execute(statement, {"rows": document})}
    insert = sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(*table.columns)
    return {row.id: row for row in session.execute(insert, rows)}


def insert_input_values(session: Session, account_id: str, runs: list[tuple[str, dict[str, Any]]]) -> None:
    """Index the input values of runs just inserted, `(run id, inputs)` each, for the list's search."""
    rows = [
        {"run_id": run_id, "value": value, "account_id": account_id}
        for run_id, inputs in runs
        for value in input_values(inputs)
    ]
    if rows:
        session.execute(dialect_insert(session, RunInputValue).on_conflict_do_nothing(), rows)


_RUNS = cast(Table, Run.__table__)
# A run's whole row as `select(Run.__table__)` reads it, for statements sent to the driver as is: the
# columns by name, in the table's order.
_RunRow = namedtuple("_RunRow", _RUNS.c.keys())  # type: ignore[misc]
_TIMES = tuple(index for index, column in enumerate(_RUNS.c) if column.type.python_type is datetime)


def run_row(values: Sequence[Any]) -> Row[Any]:
    """A run's whole row as the driver read it (`values`: its columns in the table's order), as
    `select(Run.__table__)` reads it: columns as attributes, timestamps in UTC (`UtcDateTime`)."""
    row = list(values)
    for index in _TIMES:
        moment = row[index]
        if moment is not None:
            row[index] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return cast(Row[Any], _RunRow(*row))


def json_time(value: object) -> str:
    """`json.dumps`'s `default` for rows with timestamps: ISO 8601 in UTC, as PostgreSQL reads them."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def insert_trace_rows(session: Session, rows: list[tuple[str, int, str]], *, fresh: bool = False) -> None:
    """Insert trace events `(run_id UUID, seq, event JSON text)` unless `(run_id, seq)` is stored, in few
    round trips.

    A batch of 50 runs of 50 events is 2,500 rows: PostgreSQL gets them by COPY when `fresh`
    (their runs were inserted by this transaction, so no row can conflict), else as one JSON
    document in one statement; SQLite through the driver's executemany; all skip the ORM.
    """
    if dialect_name(session) == "postgresql":
        if fresh:
            # Rows of runs this transaction inserted cannot conflict: COPY, the fastest way in.
            # The text format is written here in one piece: run ids are UUIDs and compact JSON
            # has no raw tab or newline, so a backslash is the one character to escape.
            data = "".join(f"{run_id}\t{seq}\t{_copy_escape(event)}\n" for run_id, seq, event in rows)
            driver = session.connection().connection.driver_connection
            with driver.cursor().copy("COPY trace_events (run_id, seq, event) FROM STDIN") as copy:  # type: ignore[union-attr]
                copy.write(data.encode())
            return
        document = "[" + ",".join(f'["{run_id}",{seq},{event}]' for run_id, seq, event in rows) + "]"
        session.execute(_PG_TRACE_INSERT, {"rows": document})
        return
    # The driver's own executemany (a C loop) in the transaction SQLAlchemy began: binding
    # 2,500 parameter sets through SQLAlchemy costs more than SQLite's writing them.
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_TRACE_INSERT_SQL, rows)
    finally:
        cursor.close()


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\") if "\\" in text else text


def once_per_transaction(session: Session, what: str) -> bool:
    """True the first time `what` is asked in `session`'s current transaction, False after: a
    transaction-scoped lock or a NOTIFY needs one round trip, however many writes ask for it."""
    key = f"phoneflow_done_{what}"
    transaction = session.get_transaction()
    if transaction is None or session.info.get(key) is transaction:
        return transaction is None
    session.info[key] = transaction
    return True


def day_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as `YYYY-MM-DD` text."""
    if dialect_name(session) == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def escape_like(value: str) -> str:
    """`value` for a LIKE pattern with `\\` as the escape character: its `%` and `_` match themselves."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def input_value_starts_with(account_id: str, needle: str) -> ColumnElement[bool]:
    """Runs of the account one of whose input values starts with `needle`, ignoring case: a range of
    the `run_input_values` index, however many runs there are. The values compare byte by byte
    (PostgreSQL's "C" collation, SQLite's BINARY), so the range holds exactly the values that
    start with the text."""
    prefix = needle.strip().lower()[:SEARCH_VALUE_CHARS]
    matching = select(RunInputValue.run_id).where(
        RunInputValue.account_id == account_id,
        RunInputValue.value >= prefix,
        RunInputValue.value < prefix + "\U0010ffff",
    )
    return Run.id.in_(matching)


def reader_engine(engine: Engine) -> Engine:
    """An engine for reads that must not queue behind writers (the event tail, SSE replay).

    The app's SQLite engine begins every transaction with BEGIN IMMEDIATE, i.e. takes the
    write lock even to read. WAL lets plain readers go on beside a writer, so reads of the
    event log use a second engine on the same file with pysqlite's default (deferred)
    transactions and `query_only` on. PostgreSQL readers never block: the engine is shared.
    """
    if engine.dialect.name != "sqlite":
        return engine
    reader = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(reader, "connect", _query_only)
    return reader


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()
