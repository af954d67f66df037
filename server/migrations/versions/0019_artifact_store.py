"""Artifacts' bytes move to the artifact store: each artifact row gets its account (the quota
counts per account) and the key of its bytes in the store; `data` may be null.

Rows stored before keep their bytes in `data` (and are served from there) until the server moves
them into the store in the background (server/artifact_store/service.py `move_database_blobs`):
a migration does not know where the store is, and nothing is lost in between.

Revision ID: 0019_artifact_store
Revises: 0018_run_frames
Create Date: 2026-11-29
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0019_artifact_store"
down_revision = "0018_run_frames"
branch_labels = None
depends_on = None


@contextmanager
def _batch(table: str) -> Iterator[BatchOperations]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
            yield batch


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("account_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("store_key", sa.String(300), nullable=True))
    op.execute(
        "UPDATE artifacts SET account_id = "
        "(SELECT runs.account_id FROM runs WHERE runs.id = artifacts.run_id)"
    )
    # SQLite cannot change NOT NULL in place: batch mode copies the table (its ids keep
    # AUTOINCREMENT). Reflecting it reads the runs table its key points at, whose expression
    # indexes SQLite cannot reflect: SQLAlchemy warns, and they are not touched.
    with _batch("artifacts") as batch:
        batch.alter_column("account_id", existing_type=sa.String(36), nullable=False)
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch.create_index("ix_artifacts_account_size", ["account_id", "size"])


def downgrade() -> None:
    # Bytes already in the store stay there: a downgrade keeps the rows whose bytes are in the database.
    op.execute("DELETE FROM artifacts WHERE data IS NULL")
    with _batch("artifacts") as batch:
        batch.drop_index("ix_artifacts_account_size")
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("store_key")
        batch.drop_column("account_id")
