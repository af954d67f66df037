"""Saving, reading and deleting artifacts: the one place that pairs an `artifacts` row with its
bytes in the store, counts an account's bytes and holds its quota.

Order of writes, so that no row ever points at bytes that are not there:
* saving puts the bytes first, then inserts the row; a row that loses a race (the same name
  again) or a transaction that rolls back deletes the bytes it put;
* deleting (retention) removes the rows first and the bytes after the commit (`delete_keys`);
  bytes whose delete fails are logged (left over, never referenced).
Bytes no row points at (a server that died between the put and the insert, a delete that failed)
are removed by `sweep_orphans` once they are older than any save in progress could be.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.accounts.models import Account, Plan
from server.artifact_store.store import (
    ArtifactStore,
    MissingObject,
    StoredObject,
    StoreError,
    check_key,
    new_key,
)
from server.db import after_commit, utcnow
from server.errors import AppError, NotFound, Unavailable
from server.runs.models import Artifact
from server.runs.sql import dialect_insert
from server.settings import Settings

STORE_INFO_KEY = "phoneflow_artifact_store"  # in Session.info: the store, set by create_app
STORE_RETRY_AFTER_S = 5
# An object younger than this may belong to a save whose row is not committed yet.
ORPHAN_GRACE = timedelta(hours=1)
# What the sweep may delete: keys as the server makes them (account and run ids, then a name), never
# other objects that share the bucket or the folder.
_SERVER_KEY = re.compile(r"[0-9a-f-]{36}/[0-9a-f-]{36}/[A-Za-z0-9._-]+")
_PENDING_KEY = "phoneflow_artifact_keys_put"
_log = logging.getLogger("phoneflow.artifacts")


class QuotaReached(AppError):
    """413: storing the artifact would take the account over its artifact quota."""

    status_code = 413
    title = "Artifact quota reached"


def use_store(session_factory: sessionmaker[Session], store: ArtifactStore) -> None:
    """Make `store` the artifact store of every session `session_factory` makes."""
    info = dict(session_factory.kw.get("info") or {})
    info[STORE_INFO_KEY] = store
    session_factory.configure(info=info)


def store_of(session: Session) -> ArtifactStore:
    """The artifact store of this session's server (`use_store`)."""
    store = session.info.get(STORE_INFO_KEY)
    if store is None:
        raise RuntimeError("this session has no artifact store: call use_store on its session factory")
    return store  # type: ignore[no-any-return]


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB' (powers of 1024, one decimal)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def quota_bytes(settings: Settings, account: Account) -> int:
    """The artifact bytes `account` may keep: its own quota when an administrator set one
    (`phoneflow admin set-artifact-quota`), else its plan's."""
    if account.artifact_quota_bytes is not None:
        return account.artifact_quota_bytes
    return {
        Plan.FREE: settings.artifact_quota_free_bytes,
        Plan.PRO: settings.artifact_quota_pro_bytes,
        Plan.TEAM: settings.artifact_quota_team_bytes,
    }[Plan(account.plan)]


def bytes_used(session: Session, account_id: str) -> int:
    """The bytes of all the account's artifacts (the index on account_id, size answers it)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Artifact.size), 0)).where(Artifact.account_id == account_id)
    )
    return int(total or 0)


def check_quota(session: Session, settings: Settings, account_id: str, adding: int) -> None:
    """QuotaReached when `adding` more bytes would take the account over its quota."""
    account = session.get(Account, account_id)
    if account is None:  # the run's account is gone (deleted meanwhile): nothing may be stored
        raise NotFound(f"account {account_id} no longer exists; its runs take no artifacts")
    quota = quota_bytes(settings, account)
    used = bytes_used(session, account_id)
    if used + adding <= quota:
        return
    whose = "its own" if account.artifact_quota_bytes is not None else f"its {account.plan} plan's"
    raise QuotaReached(
        f"this account's artifacts use {human_bytes(used)} of {whose} {human_bytes(quota)} quota, "
        f"and this file of {human_bytes(adding)} does not fit; the artifact is not stored. "
        "Free space by deleting runs or shortening run retention (Settings, or PATCH /api/v1/account "
        "runRetentionDays), or have the quota raised (a larger plan; on the server: "
        f"phoneflow admin set-artifact-quota {account.email} SIZE, or "
        f"PHONEFLOW_ARTIFACT_QUOTA_{account.plan.upper()}_BYTES for the whole plan)"
    )


def _forget_on_rollback(session: Session, store: ArtifactStore, key: str) -> None:
    """Delete `key` from the store if this transaction rolls back (its row never existed)."""
    pending: list[str] | None = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = session.info[_PENDING_KEY] = []

        @event.listens_for(session, "after_commit")
        def _committed(sess: Session) -> None:
            sess.info.get(_PENDING_KEY, []).clear()

        @event.listens_for(session, "after_rollback")
        def _rolled_back(sess: Session) -> None:
            keys = list(sess.info.get(_PENDING_KEY, []))
            sess.info.get(_PENDING_KEY, []).clear()
            delete_keys(store, keys)

    pending.append(key)


def _put(store: ArtifactStore, key: str, data: bytes, content_type: str) -> None:
    try:
        store.put(key, data, content_type)
    except StoreError as exc:
        _log.error("artifact not stored: %s", exc)
        raise Unavailable(
            f"the artifact store cannot take the file now ({exc}); send it again later",
            STORE_RETRY_AFTER_S,
        ) from exc


def save_artifact(
    session: Session,
    settings: Settings,
    *,
    account_id: str,
    run_id: str,
    name: str,
    content_type: str,
    data: bytes,
    meta: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> bool:
    """Store one artifact of a run (every artifact is saved here); False when the run already has
    one of that name (nothing changes). QuotaReached (413) when it would not fit the account's quota."""
    exists = session.scalar(select(Artifact.id).where(Artifact.run_id == run_id, Artifact.name == name))
    if exists is not None:
        return False
    check_quota(session, settings, account_id, len(data))
    store = store_of(session)
    key = new_key(account_id, run_id)
    _put(store, key, data, content_type)
    inserted = session.execute(
        _insert_row(
            session, run_id, account_id, name, content_type, len(data), key, meta, created_at or utcnow()
        )
        .on_conflict_do_nothing(index_elements=["run_id", "name"])
        .returning(Artifact.id)
    ).scalar_one_or_none()
    if inserted is None:  # another upload of the same name won the race
        delete_keys(store, [key])
        return False
    _forget_on_rollback(session, store, key)
    return True


def _insert_row(
    session: Session,
    run_id: str,
    account_id: str,
    name: str,
    content_type: str,
    size: int,
    key: str,
    meta: dict[str, Any] | None,
    created_at: datetime,
) -> Any:
    """The INSERT of an artifact's row whose bytes are in the store under `key` (the caller adds
    what happens on a conflict)."""
    return dialect_insert(session, Artifact).values(
        run_id=run_id,
        account_id=account_id,
        name=name,
        content_type=content_type,
        size=size,
        store_key=key,
        data=None,
        meta=meta,
        created_at=created_at,
    )


def replace_artifact(
    session: Session,
    settings: Settings,
    *,
    account_id: str,
    run_id: str,
    name: str,
    content_type: str,
    data: bytes,
    meta: dict[str, Any] | None = None,
) -> None:
    """Store or replace the run's artifact `name` (the live screen, the run's video), under one key
    per run and name."""
    old = session.execute(
        select(Artifact.size, Artifact.store_key).where(Artifact.run_id == run_id, Artifact.name == name)
    ).first()
    check_quota(session, settings, account_id, len(data) - (old.size if old else 0))
    store = store_of(session)
    # The name is one of the server's own (live.jpg), never a client's: fit for a key.
    key = check_key(f"{account_id}/{run_id}/{name}")
    _put(store, key, data, content_type)
    now = utcnow()
    session.execute(
        _insert_row(
            session, run_id, account_id, name, content_type, len(data), key, meta, now
        ).on_conflict_do_update(
            index_elements=["run_id", "name"],
            set_={"size": len(data), "store_key": key, "data": None, "meta": meta, "created_at": now},
        )
    )
    if old is not None and old.store_key not in (None, key):
        stale = old.store_key
        after_commit(session, lambda: delete_keys(store, [stale]))


def read_artifact(session: Session, row: Artifact) -> Iterator[bytes]:
    """The artifact's bytes in chunks: from the store, or from the row when it predates the store."""
    if row.store_key is None:
        return iter([row.data or b""])
    try:
        return store_of(session).stream(row.store_key)
    except MissingObject as exc:
        raise NotFound(
            f"the bytes of artifact {row.name!r} are gone from the artifact store ({exc}); "
            "the run keeps its other artifacts"
        ) from exc
    except StoreError as exc:
        raise Unavailable(
            f"the artifact store cannot be read now ({exc}); try again", STORE_RETRY_AFTER_S
        ) from exc


def delete_keys(store: ArtifactStore, keys: Iterable[str]) -> None:
    """Remove these objects; a failure is logged (the bytes are left over, no row points at them)."""
    keys = list(keys)
    if not keys:
        return
    try:
        store.delete(keys)
    except StoreError as exc:
        _log.error("%d artifacts left in the store after their rows were deleted: %s", len(keys), exc)


def keys_of_runs(session: Session, run_ids: list[str]) -> list[str]:
    """The store keys of these runs' artifacts (to delete after their rows)."""
    return [
        key
        for key in session.scalars(
            select(Artifact.store_key).where(Artifact.run_id.in_(run_ids), Artifact.store_key.is_not(None))
        )
        if key is not None
    ]


def move_database_blobs(
    session_factory: sessionmaker[Session],
    store: ArtifactStore,
    *,
    batch_size: int = 50,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Move the bytes of rows stored before the artifact store (in `artifacts.data`) into the store,
    a batch per transaction; how many were moved. Safe beside other server processes doing the same."""
    moved = 0
    while not should_stop():
        put: list[str] = []
        lost: list[str] = []
        try:
            with session_factory.begin() as session:
                rows = session.execute(
                    select(
                        Artifact.id,
                        Artifact.account_id,
                        Artifact.run_id,
                        Artifact.content_type,
                        Artifact.data,
                    )
                    .where(Artifact.store_key.is_(None), Artifact.data.is_not(None))
                    .order_by(Artifact.id)
                    .limit(batch_size)
                ).all()
                for row in rows:
                    key = new_key(row.account_id, row.run_id)
                    store.put(key, row.data, row.content_type)
                    put.append(key)
                    changed = session.execute(  # type: ignore[attr-defined]
                        update(Artifact)
                        .where(Artifact.id == row.id, Artifact.store_key.is_(None))
                        .values(store_key=key, data=None)
                    ).rowcount
                    if changed:
                        moved += 1
                    else:  # another process moved it (or retention removed it) meanwhile
                        lost.append(key)
        except BaseException:
            delete_keys(store, put)  # the rows still hold their bytes
            raise
        delete_keys(store, lost)
        if len(rows) < batch_size:
            break
    return moved


def sweep_orphans(
    session_factory: sessionmaker[Session],
    store: ArtifactStore,
    *,
    now: datetime | None = None,
    grace: timedelta = ORPHAN_GRACE,
    runs_per_query: int = 200,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete the objects of the store that no artifact row points at and that were written more
    than `grace` before `now` (only keys shaped as the server makes them); how many it deleted (a
    delete the store refuses is logged by `delete_keys`, and tried again by the next sweep).
    Keys are `ACCOUNT/RUN/…`: the rows are looked up a batch of runs at a time (by the run index).
    Safe beside other server processes."""
    cutoff = (now or utcnow()) - grace
    removed = 0
    batch: dict[str, list[str]] = {}
    for stored in store.objects():
        if should_stop():
            return removed
        if stored.modified > cutoff or not _SERVER_KEY.fullmatch(stored.key):
            continue
        batch.setdefault(_run_of(stored), []).append(stored.key)
        if len(batch) >= runs_per_query:
            removed += _delete_unreferenced(session_factory, store, batch)
            batch = {}
    return removed + _delete_unreferenced(session_factory, store, batch)


def _run_of(stored: StoredObject) -> str:
    parts = stored.key.split("/")
    return parts[1] if len(parts) >= 3 else ""


def _delete_unreferenced(
    session_factory: sessionmaker[Session], store: ArtifactStore, keys_by_run: dict[str, list[str]]
) -> int:
    if not keys_by_run:
        return 0
    with session_factory() as session:
        referenced = set(
            session.scalars(select(Artifact.store_key).where(Artifact.run_id.in_(list(keys_by_run))))
        )
    orphans = [key for keys in keys_by_run.values() for key in keys if key not in referenced]
    delete_keys(store, orphans)
    return len(orphans)
