"""The migrations build exactly the schema the models describe (tables, columns, indexes, keys),
on both databases: a model changed without its migration, or the other way round, fails here."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import server.dashboard.models  # noqa: F401 - the dashboard's table, which server.models leaves out
from server.models import Base
from tests.server.factories import Db


def test_the_migrated_schema_is_the_models_schema(db: Db) -> None:
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes; alembic says so and skips comparing them.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    assert differences == []
