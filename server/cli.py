"""`phoneflow serve` and `phoneflow admin`: run the server, create accounts and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server.accounts import service
from server.accounts.models import Account, Plan
from server.db import make_engine, make_session_factory
from server.errors import AppError
from server.migrate import SchemaTooNew, upgrade
from server.settings import Settings

serve_app = typer.Typer(add_completion=False, help="Run the phoneflow server.")
admin_app = typer.Typer(add_completion=False, help="Administer accounts and tokens.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL (default: $PHONEFLOW_DATABASE_URL, $DATABASE_URL, ./.phoneflow/phoneflow.db).",
    ),
]


def _settings(database_url: str | None, denylist: Path | None = None) -> Settings:
    settings = Settings()
    updates: dict[str, object] = {}
    if database_url:
        updates["database_url"] = database_url
    if denylist is not None:
        updates["denylist_file"] = denylist
    return settings.model_copy(update=updates) if updates else settings


@serve_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
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
    """Serve the API with uvicorn; the database schema is upgraded at start."""
    import uvicorn

    from server.app import create_app

    settings = _settings(database_url, denylist)
    try:
        settings.global_denylist  # noqa: B018 - read it now, so that a bad file stops the start with its message
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    app = create_app(settings)
    typer.echo(f"phoneflow serving on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    # Our middleware writes the access log as JSON lines; uvicorn's own would repeat it.
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)


@contextmanager
def _transaction(database_url: str | None) -> Iterator[Session]:
    """A session on the (upgraded) database, committed when the block ends without error."""
    engine = make_engine(_settings(database_url).database_url)
    try:
        try:
            upgrade(engine)
        except SchemaTooNew as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except OperationalError as exc:
            where = engine.url.render_as_string(hide_password=True)
            typer.echo(
                f"error: cannot use the database at {where}: {exc.orig}. Check --database-url "
                "(or PHONEFLOW_DATABASE_URL / DATABASE_URL) and that the database is running.",
                err=True,
            )
            raise typer.Exit(1) from None
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


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
        account = session.scalars(select(Account).where(Account.email == email.strip().lower())).first()
        if account is None:
            typer.echo(
                f"error: no account with email {email}; create it with `phoneflow admin create-account`",
                err=True,
            )
            raise typer.Exit(1)
        _, token = service.create_token(session, account, name)
    typer.echo(token)
