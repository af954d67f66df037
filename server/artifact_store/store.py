"""Where an artifact's bytes live: a small interface and its directory implementation.

The `artifacts` table keeps what an artifact is (run, account, name, type, size, key); the bytes
sit in an `ArtifactStore` under a key the server made (`ACCOUNT/RUN/RANDOM`, never a name a
client sent), so a store never sees a path a phone chose.

    StoreError           the store could not do it (disk full, S3 unreachable, bucket missing)
    └── MissingObject    no object under that key (deleted behind the server's back)
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

CHUNK_BYTES = 64 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}){0,4}$")


class StoreError(Exception):
    """The store failed; the message says which store, which key and why."""


class MissingObject(StoreError):
    """No object under the key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object in a store: its key and when it was last written (UTC)."""

    key: str
    modified: datetime


def new_key(account_id: str, run_id: str) -> str:
    """A fresh key for an artifact of this run: `ACCOUNT/RUN/RANDOM` (ids the server made)."""
    return check_key(f"{account_id}/{run_id}/{secrets.token_hex(12)}")


def is_key(key: str) -> bool:
    """Whether `key` is one the server could have made."""
    return _KEY.fullmatch(key) is not None


def check_key(key: str) -> str:
    """`key` when it is one the server could have made (no `..`, no leading dot or slash), else ValueError."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not an artifact store key")
    return key


class ArtifactStore(Protocol):
    """What the server needs of a place for bytes. Every method takes keys from `new_key`."""

    def describe(self) -> str:
        """Where the bytes go, for messages and logs (a folder, a bucket at an endpoint)."""
        ...

    def check(self) -> None:
        """Raise StoreError, saying what to fix, when the store cannot be used (at start)."""
        ...

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing what was there; all or nothing."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key` (MissingObject when there are none)."""
        ...

    def stream(self, key: str) -> Iterator[bytes]:
        """The bytes under `key` in chunks; MissingObject is raised before the first chunk."""
        ...

    def size(self, key: str) -> int:
        """How many bytes are stored under `key` (MissingObject when none)."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Remove these objects; a key with nothing under it is no error."""
        ...

    def objects(self) -> Iterator[StoredObject]:
        """Every object in the store, in no set order (the orphan sweep reads them)."""
        ...


class DirectoryStore:
    """Artifacts as files under one folder (the default): `ROOT/ACCOUNT/RUN/RANDOM`.

    A put writes a temporary file beside the target and renames it over, so a reader sees the
    old bytes or the new ones, never half of them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"the folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the artifact folder {self.root}: {exc.strerror}; "
                "set PHONEFLOW_ARTIFACT_DIR to a folder the server may write"
            ) from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(
                f"the artifact folder {self.root} is not writable by the server; "
                "fix its permissions or set PHONEFLOW_ARTIFACT_DIR"
            )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            except FileNotFoundError:  # a delete emptied and removed the folder just then
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write artifact {key} into {self.root}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise MissingObject(f"artifact {key} is not in {self.root}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read artifact {key} from {self.root}: {exc.strerror}") from exc

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise MissingObject(f"artifact {key} is not in {self.root}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read artifact {key} from {self.root}: {exc.strerror}") from exc

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk

        return chunks()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise MissingObject(f"artifact {key} is not in {self.root}") from exc

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot delete artifact {key} from {self.root}: {exc.strerror}") from exc
            # An emptied run folder goes too (then its account's, when that is empty).
            for folder in (path.parent, path.parent.parent):
                try:
                    folder.rmdir()
                except OSError:
                    break

    def objects(self) -> Iterator[StoredObject]:
        # Temporary files of a put (".tmp-…") are not objects: names starting with a dot never are keys.
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if not is_key(key):
                    continue
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield StoredObject(key, datetime.fromtimestamp(modified, UTC))
