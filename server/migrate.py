"""Schema upgrades: the app and the tests build the schema with the Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from server.db import make_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration pointing at `server/migrations` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer phoneflow than this one."""


def _refuse_unknown_revisions(connection: Connection, config: Config) -> None:
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    unknown = sorted(set(MigrationContext.configure(connection).get_current_heads()) - known)
    if unknown:
        url = connection.engine.url.render_as_string(hide_password=True)
        raise SchemaTooNew(
            f"the database at {url} is at schema revision {', '.join(unknown)}, which this phoneflow "
            "does not know: a newer phoneflow upgraded it. Run that newer version (or point "
            "DATABASE_URL at another database); an older one must not write to it."
        )


class SchemaBehind(RuntimeError):
    """The database's schema is older than this phoneflow's, and was not to be upgraded."""


def check_up_to_date(engine: Engine) -> None:
    """SchemaTooNew or SchemaBehind unless the database is at this phoneflow's newest revision."""
    with engine.connect() as connection:
        config = alembic_config()
        _refuse_unknown_revisions(connection, config)
        current = set(MigrationContext.configure(connection).get_current_heads())
        heads = set(ScriptDirectory.from_config(config).get_heads())
        if current != heads:
            url = engine.url.render_as_string(hide_password=True)
            at = ", ".join(sorted(current)) or "none (empty)"
            raise SchemaBehind(
                f"the database at {url} is at schema revision {at}, "
                f"older than this phoneflow's ({', '.join(sorted(heads))}), and PHONEFLOW_RUN_MIGRATIONS is "
                "false: upgrade it by starting phoneflow serve once without PHONEFLOW_RUN_MIGRATIONS=false "
                "(it upgrades the schema before it serves), or point --database-url at an upgraded database"
            )


def upgrade(engine_or_url: Engine | str, revision: str = "heads") -> None:
    """Bring the database to `revision` (default: the newest)."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several server processes may start at once: one migrates, the others wait.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7238001)")
            config = alembic_config()
            config.attributes["connection"] = connection
            _refuse_unknown_revisions(connection, config)
            command.upgrade(config, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
