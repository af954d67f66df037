"""What `phoneflow serve` and `phoneflow admin` check before they start: the database, the artifact
store and the port.

Each failure is one `StartError` whose message says what was wrong and what to do; the commands
print it on one line and exit non-zero (never a traceback, never "serving on ..." first).
"""

from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from server.accounts.models import Account
from server.db import make_engine
from server.migrate import SchemaBehind, SchemaTooNew, check_up_to_date, upgrade
from server.settings import Settings

DATABASE_OPTION = "--database-url (or PHONEFLOW_DATABASE_URL / DATABASE_URL)"
URL_FORMS = "sqlite:///PATH/phoneflow.db or postgresql://USER@HOST:5432/DATABASE"


class StartError(Exception):
    """Something a command needs is not usable; the message says what to do."""


def shown_url(engine: Engine) -> str:
    """The engine's URL without its password, as every command prints it."""
    return engine.url.render_as_string(hide_password=True)


def open_engine(url: str) -> Engine:
    """An engine for `url`, or a `StartError` when the URL itself cannot be used."""
    try:
        if url.startswith(("postgresql", "postgres")):
            # Fail in seconds, not minutes, when a PostgreSQL server does not answer.
            return make_engine(url, connect_args={"connect_timeout": 5})
        return make_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StartError(
            f"the database URL {_without_password(url)!r} cannot be used ({_first_line(exc)}): "
            f"give {DATABASE_OPTION} as {URL_FORMS}"
        ) from None


@dataclass(frozen=True)
class DatabaseState:
    url: str
    accounts: int


def prepare_database(engine: Engine, migrate: bool = True) -> DatabaseState:
    """Reach the database, bring its schema up to date (or, unless `migrate`, check that it is) and
    count its accounts."""
    where = shown_url(engine)
    try:
        if migrate:
            upgrade(engine)
        else:
            check_up_to_date(engine)
        with engine.connect() as conn:
            accounts = int(conn.execute(select(func.count()).select_from(Account)).scalar_one())
    except (SchemaTooNew, SchemaBehind) as exc:
        raise StartError(str(exc)) from None
    except OperationalError as exc:
        raise StartError(
            f"cannot use the database at {where}: {_first_line(exc.orig or exc)}. Check {DATABASE_OPTION} "
            "and that the database is running (and, for SQLite, that its folder exists)"
        ) from None
    return DatabaseState(where, accounts)


def check_metrics_folder() -> None:
    """A PROMETHEUS_MULTIPROC_DIR the operator set names a folder the server may write (prometheus-client
    writes there from the moment the server's modules load: a missing one was a traceback)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")
    if folder and not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
        raise StartError(
            f"PROMETHEUS_MULTIPROC_DIR names {folder}, which is not a folder the server may write: create "
            "it (empty) or unset the variable (phoneflow serve --workers N sums its processes without it)"
        )


def check_artifact_store(settings: Settings) -> None:
    """The artifact store the settings name can be used (its folder written, its bucket reached)."""
    from server.artifact_store import store_from_settings
    from server.artifact_store.store import StoreError

    try:
        store_from_settings(settings).check()
    except (StoreError, ValueError) as exc:
        raise StartError(str(exc)) from None


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port (handed to uvicorn), or a `StartError` saying what to do."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartError(f"cannot listen on host {host!r}: {exc.strerror}; give --host an address") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartError(
                f"port {port} on {host} is already in use (another phoneflow serve?): stop that "
                f"process or choose another port with --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartError(
                f"not allowed to listen on port {port}: ports below 1024 need root; use --port 8000"
            ) from None
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
