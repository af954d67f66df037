"""`phoneflow serve` and `phoneflow admin`: run the server, create accounts and tokens."""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from uvicorn import Config

from server.accounts import service
from server.accounts.models import Account, Plan
from server.cli_checks import (
    DatabaseState,
    StartError,
    bind_socket,
    check_artifact_store,
    check_metrics_folder,
    open_engine,
    prepare_database,
    shown_url,
)
from server.db import make_session_factory, utcnow
from server.errors import AppError, Conflict
from server.settings import Settings, data_dir

serve_app = typer.Typer(add_completion=False, help="Run the phoneflow server.")
admin_app = typer.Typer(add_completion=False, help="Administer accounts and tokens.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=(
            "SQLAlchemy URL (default: $PHONEFLOW_DATABASE_URL, $DATABASE_URL, else phoneflow.db in "
            "$PHONEFLOW_DATA_DIR or ~/.local/share/phoneflow: the same for every command)."
        ),
    ),
]


def _settings(database_url: str | None, denylist: Path | None = None) -> Settings:
    try:
        # A URL given here is not looked for elsewhere (nor is the default's data folder made).
        settings = Settings(database_url=database_url) if database_url else Settings()
    except OSError as exc:  # the default database's folder cannot be made
        typer.echo(
            f"error: cannot create the data folder {exc.filename or data_dir()} ({exc.strerror}): set "
            "PHONEFLOW_DATA_DIR to a folder the server may write, or give --database-url",
            err=True,
        )
        raise typer.Exit(1) from None
    except ValidationError as exc:
        # A PHONEFLOW_ variable of the environment (or .env) that cannot be used: say which, not a traceback.
        problems = "; ".join(
            f"PHONEFLOW_{str(error['loc'][0]).upper() if error['loc'] else '?'}={error.get('input')!r}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        typer.echo(
            f"error: the server's settings cannot be used ({problems}): fix or unset the variable", err=True
        )
        raise typer.Exit(2) from None
    if denylist is not None:
        settings = settings.model_copy(update={"denylist_file": denylist})
    return settings


MAX_WORKERS = 64
# Seconds that requests in flight get to finish once the server is told to stop.
GRACEFUL_S = 10
# uvicorn's level names (its own few log lines follow PHONEFLOW_LOG_LEVEL when it is one of them).
_UVICORN_LEVELS = ("critical", "error", "warning", "info", "debug")


def _workers(value: int) -> int:
    if not 1 <= value <= MAX_WORKERS:
        cores = os.cpu_count() or 1
        raise typer.BadParameter(
            f"{value} processes: give 1 to {MAX_WORKERS} "
            f"(one a CPU core is a good start; this machine has {cores})"
        )
    return value


@serve_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help=(
                "Server processes sharing the port (a fleet needs several: about one a CPU core). "
                "A process that dies is replaced; SIGINT or SIGTERM stops them all. "
                "Several processes on SQLite take turns to write: PostgreSQL serves a fleet better."
            ),
            callback=_workers,
        ),
    ] = 1,
    backlog: Annotated[
        int,
        typer.Option(help="Connections the kernel holds until a process accepts them.", min=1, max=65535),
    ] = 2048,
    database_url: DatabaseUrl = None,
    denylist: Annotated[
        Path | None,
        typer.Option(
            "--denylist",
            help="The global package denylist: one name or glob a line, '#' comments.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Serve the API and the dashboard with uvicorn.

    The database schema is upgraded at start (unless PHONEFLOW_RUN_MIGRATIONS=false), once, before
    any process serves. Other settings come from PHONEFLOW_* environment variables (log level,
    background jobs, pool sizes, artifacts, e-mail, metrics): each with its default in
    docs/settings.md.
    """
    settings = _settings(database_url, denylist)
    try:
        check_metrics_folder()  # before prometheus-client writes there (the server's modules load)
    except StartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from server.serving import Supervisor

    try:
        settings.global_denylist  # noqa: B018 - read it now, so that a bad file stops the start with its message
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        engine = open_engine(settings.database_url)
        try:
            database = prepare_database(engine, migrate=settings.run_migrations)
        finally:
            engine.dispose()
        check_artifact_store(settings)
        sock = bind_socket(host, port, backlog)
    except StartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    base = f"http://{_browsable(host)}:{port}"
    from server.app import give_notices
    from server.observability import configure_logging

    configure_logging(settings.log_level)
    give_notices(settings)  # once, not once a process
    # The schema was brought up to date just above: the app need not do it again (in every process).
    settings = settings.with_notices_given().model_copy(update={"run_migrations": False})
    options: dict[str, Any] = {
        # Our middleware writes the access log as JSON lines; uvicorn's own would repeat it.
        "access_log": False,
        "log_config": None,
        "log_level": level if (level := settings.log_level.lower()) in _UVICORN_LEVELS else None,
        "backlog": backlog,
        # Requests in flight (an SSE stream never ends by itself) get this long once stopped.
        "timeout_graceful_shutdown": GRACEFUL_S,
    }
    announce = partial(_announce, base, database, workers)  # once, when every process serves
    try:
        if workers == 1:
            status = _serve_here(settings, options, sock, announce)
        else:
            status = Supervisor(settings, options, sock, workers, announce).run()
    finally:
        sock.close()
    if status:
        raise typer.Exit(status)


def _serve_here(
    settings: Settings, options: dict[str, Any], sock: socket.socket, on_started: Callable[[], None]
) -> int:
    """The app in this process; 0 once stopped by SIGINT or SIGTERM, 1 when it could not start."""
    from server.app import create_app
    from server.serving import QuietServer
    from server.stopping import stop_waiting

    # uvicorn re-raises the signal it stopped for once it is done: SIGTERM then ends like SIGINT.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app = create_app(settings)
        stopping = partial(stop_waiting, app)
        server = QuietServer(Config(app, **options), on_started=on_started, on_stopping=stopping)
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn's exit when the app's startup failed (its log says why)
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _browsable(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _announce(base: str, database: DatabaseState, workers: int) -> None:
    accounts = f"{database.accounts} account{'s' if database.accounts != 1 else ''}"
    processes = f" ({workers} processes)" if workers > 1 else ""
    lines = [
        f"phoneflow serving on {base}{processes}",
        f"  dashboard  {base}/   (sign in with an account's API token)",
        f"  API docs   {base}/docs",
        f"  database   {database.url} ({accounts})",
    ]
    if database.accounts == 0:
        lines.append("next: phoneflow admin create-account you@example.com   (prints the API token)")
    else:
        lines.append("next: phoneflow admin create-token EMAIL   (a new API token for an account)")
    lines.append(f"      phoneflow login --server {base}   (then: phoneflow workflows list, runs list, ...)")
    typer.echo("\n".join(lines), err=True)


@contextmanager
def _transaction(database_url: str | None) -> Iterator[Session]:
    """A session on the (upgraded) database, committed when the block ends without error.

    Says on stderr which database it uses; a database it cannot use stops the command with
    one line saying what to do."""
    try:
        engine = open_engine(_settings(database_url).database_url)
    except StartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        try:
            prepare_database(engine)
        except StartError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"database: {shown_url(engine)}", err=True)
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def _account(session: Session, email: str) -> Account:
    account = session.scalars(select(Account).where(Account.email == email.strip().lower())).first()
    if account is None:
        typer.echo(
            f"error: no account with email {email} in this database; create it with "
            f"`phoneflow admin create-account {email}` (or give the server's --database-url)",
            err=True,
        )
        raise typer.Exit(1)
    return account


@admin_app.command("create-account")
def create_account(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    plan: Annotated[Plan, typer.Option(help="The account's plan.")] = Plan.FREE,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account and print its first API token (shown this once)."""
    try:
        with _transaction(database_url) as session:
            account, token = service.create_account(session, email, plan)
            account_id, account_email = account.id, account.email
    except Conflict:
        typer.echo(
            f"error: an account with email {email.strip().lower()} already exists in this database; "
            f"make a new API token for it with: phoneflow admin create-token {email.strip().lower()}",
            err=True,
        )
        raise typer.Exit(1) from None
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"account {account_id} ({account_email}, plan {plan.value}) created.", err=True)
    typer.echo("Its API token follows, shown this once: store it now.", err=True)
    typer.echo(token)


@admin_app.command("create-token")
def create_token(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    name: Annotated[str, typer.Option(help="A name to tell the token apart.")] = "admin token",
    database_url: DatabaseUrl = None,
) -> None:
    """Print a new API token for an existing account (shown this once)."""
    with _transaction(database_url) as session:
        _, token = service.create_token(session, _account(session, email), name)
    typer.echo("A new API token follows, shown this once: store it now.", err=True)
    typer.echo(token)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _parse_size(text: str) -> int | None:
    """'5GB', '500 MB', '1048576' -> bytes (powers of 1024); 'plan' -> None. typer.BadParameter otherwise."""
    if text.strip().lower() == "plan":
        return None
    match = _SIZE.match(text)
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a size: give bytes or a number with KB, MB, GB or TB (e.g. 5GB), "
            "or 'plan' for the plan's quota"
        )
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


@admin_app.command("set-artifact-quota")
def set_artifact_quota(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    size: Annotated[
        str,
        typer.Argument(
            help="The bytes its artifacts may use (e.g. 20GB, 500MB), or 'plan' for its plan's quota."
        ),
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Give one account an artifact quota of its own, or back its plan's."""
    from server.artifact_store.service import bytes_used, human_bytes, quota_bytes

    quota = _parse_size(size)
    settings = _settings(database_url)
    with _transaction(database_url) as session:
        account = _account(session, email)
        account.artifact_quota_bytes = quota
        session.flush()
        effective, used = quota_bytes(settings, account), bytes_used(session, account.id)
        whose = "its own" if quota is not None else f"its {account.plan} plan's"
        typer.echo(
            f"account {account.email}: artifact quota {human_bytes(effective)} ({whose}); "
            f"{human_bytes(used)} in use",
            err=True,
        )


@admin_app.command("pairing-code")
def pairing_code(
    email: Annotated[str, typer.Argument(help="The email of the account the phone joins.")],
    server: Annotated[
        str | None,
        typer.Option("--server", help="The server URL the bridge reaches (shown in the next step)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a one-time pairing code for the account (the bridge redeems it with `bridge pair`)."""
    from server.devices.service import create_pairing_code

    settings = _settings(database_url)
    with _transaction(database_url) as session:
        code, expires_at = create_pairing_code(session, _account(session, email), settings)
    url = server or settings.public_url
    minutes = max(1, round((expires_at - utcnow()).total_seconds() / 60))
    typer.echo(
        f"A one-time pairing code follows; it expires in {minutes} min ({expires_at:%H:%M} UTC).", err=True
    )
    typer.echo(f"next: phoneflow bridge pair --server {url} --code {code} --serial SERIAL", err=True)
    typer.echo(code)
