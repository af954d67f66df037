"""The database: the declarative base, engines, sessions and the request's transaction.

The request dependency `SessionDep` owns the transaction: it commits when the path
operation returns and rolls back when it raises. Code below it only adds and
flushes. Work that must see committed data (publishing `run.updated`) registers
itself with `after_commit(session, callback)` and runs right after the commit,
never before and never after a rollback.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, String, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from server.worker_threads import run_in_worker

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_AFTER_COMMIT_KEY = "phoneflow_after_commit"
_log = logging.getLogger("phoneflow.db")


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the only clock the models use."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh UUID as a string: every id in the database."""
    return str(uuid.uuid4())


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The one declarative base of every server model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        list[str]: JSON(),
        list[dict[str, Any]]: JSON(),
        str: String(),
    }


def normalise_url(url: str) -> str:
    """`postgresql://` (and `postgres://`) use the psycopg 3 driver; anything else is left alone."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers (the dashboard, SSE replay) go on while a report is written;
    # busy_timeout makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL via psycopg 3.

    The pool holds 5 connections and opens up to 10 more under load (SQLAlchemy's defaults; pass
    `pool_size` / `max_overflow` / `pool_timeout` to change them): four server processes then stay
    well inside PostgreSQL's default max_connections of 100, and a burst waits for the pool
    instead of being refused by the database. A PostgreSQL connection that sat idle in the pool for
    `PING_IDLE_AFTER_S` is pinged before it is handed out (and replaced when dead); `pool_pre_ping=False`
    turns that off.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _configure_sqlite)
        # pysqlite's own transaction handling defers BEGIN; emit BEGIN IMMEDIATE ourselves
        # so a transaction takes the write lock when it starts: concurrent writers then
        # wait on busy_timeout instead of failing to upgrade a read lock ("database is locked").
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        event.listen(engine, "connect", _disable_pysqlite_transactions, insert=True)
        return engine
    ping_idle = kwargs.pop("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    if ping_idle:
        event.listen(engine, "checkin", _stamp_checkin)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection back in the pool for longer than this is pinged before it is handed out again.
# SQLAlchemy's pool_pre_ping pings at every checkout: a round trip to the database for each request
# (each runs.report), though a connection used a moment ago is alive as far as anyone can know.
# One that sat idle (the database restarted, a proxy cut it) is checked, and replaced when dead.
PING_IDLE_AFTER_S = 1.0
_CHECKED_IN_AT = "phoneflow_checked_in_at"


def _stamp_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    checked_in_at = record.info.get(_CHECKED_IN_AT)
    if checked_in_at is None or time.monotonic() - checked_in_at < PING_IDLE_AFTER_S:
        return  # just opened, or just used
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()  # the ping opened a transaction; the pool hands out none
    except Exception as exc:
        # The pool drops this connection and checks out another (a fresh one if need be).
        raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


def _disable_pysqlite_transactions(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built from them)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_soft_rollback", _drop_after_commit)
    return factory


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run `callback()` once, right after `session`'s current transaction commits.

    Callbacks run synchronously in the committing thread, in the order registered;
    a rollback drops them. An exception in one is logged and does not undo the commit.
    """
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint was released (begin_nested); the outer transaction has not committed yet.
        return
    callbacks: list[Callable[[], object]] = session.info.pop(_AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the data is committed; a failed notification must not look like a failed write
            _log.exception("after-commit callback failed")


def _drop_after_commit(session: Session, _previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_AFTER_COMMIT_KEY, None)


def session_factory_from(request: Request) -> sessionmaker[Session]:
    """The app's session factory (set by `create_app`)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_session(request: Request) -> Iterator[Session]:
    """The request's session and transaction: commit on success, roll back on error."""
    session = session_factory_from(request)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


async def in_one_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work(session)` in one worker thread, in one transaction: commit when it returns, roll back
    when it raises (as `SessionDep` does); the result, or the exception, comes back to the caller.

    For the endpoints every phone calls at every step (claim, step gate, runs.report): written as
    `async def` with their database work in here, a request crosses to a worker thread once.
    A `def` endpoint with `SessionDep` and `CurrentDevice` crosses four times (the session
    opened, the device looked up, the endpoint, the commit), and each crossing wakes a thread.
    The crossing itself is `run_in_worker` (server/worker_threads.py), leaner than anyio's.
    """
    factory = session_factory_from(request)
    return await run_in_worker(lambda: in_transaction(factory, work))


def in_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work(session)` in one transaction of a new session of `factory`, in this thread: commit when it
    returns, roll back when it raises (`in_one_transaction` without the crossing to a worker)."""
    session = factory()
    try:
        result = work(session)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit happens when the path operation returns, before the
# response is sent, so a client never sees an answer whose data is not yet committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
