"""The device's in-memory filesystem: directories and regular files with modes and mtimes.

Enough of Android's tree for adb and uiautomator2: `/data/local/tmp` (where clients
push `u2.jar`), `/sdcard` (where `uiautomator dump` and `screencap` write), and a few
system folders so that `ls /` looks familiar. Paths are absolute and POSIX; `.`
and `..` are resolved, symlinks do not exist.
"""

from __future__ import annotations

import posixpath
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


class FsError(Exception):
    """A filesystem call failed; `strerror` reads like the libc message (`No such file or directory`)."""

    def __init__(self, path: str, strerror: str) -> None:
        super().__init__(f"{path}: {strerror}")
        self.path = path
        self.strerror = strerror


NOT_FOUND = "No such file or directory"
IS_DIR = "Is a directory"
NOT_DIR = "Not a directory"
EXISTS = "File exists"
NOT_EMPTY = "Directory not empty"
READ_ONLY = "Read-only file system"
DENIED = "Permission denied"

# Where the shell user (adb's uid 2000) may create, change and remove files on a phone; the rest
# is read-only (the system partitions and the root) or another user's (the rest of /data).
SHELL_WRITABLE = ("/data/local/tmp", "/sdcard", "/storage")
_READ_ONLY_ROOTS = ("/system", "/vendor", "/product", "/apex", "/proc")


@dataclass(slots=True)
class FileNode:
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644
    mtime: int = field(default_factory=lambda: int(time.time()))


@dataclass(slots=True)
class DirNode:
    mode: int = stat.S_IFDIR | 0o771
    mtime: int = field(default_factory=lambda: int(time.time()))
    entries: dict[str, FileNode | DirNode] = field(default_factory=dict)


Node = FileNode | DirNode

# The folders a fresh device has, with Android's modes.
_INITIAL_DIRS = {
    "/data": 0o771,
    "/data/local": 0o751,
    "/data/local/tmp": 0o771,
    "/sdcard": 0o770,
    "/sdcard/Download": 0o770,
    "/sdcard/Pictures": 0o770,
    "/storage": 0o755,
    "/system": 0o755,
    "/system/bin": 0o755,
    "/proc": 0o555,
    "/dev": 0o755,
    "/vendor": 0o755,
}


def normalize(path: str, cwd: str = "/") -> str:
    """An absolute, normalised path (`a/../b` → `/b`)."""
    joined = posixpath.join(cwd, path) if not path.startswith("/") else path
    result = posixpath.normpath(joined)
    # normpath keeps a leading '//' as POSIX allows; the device does not.
    return "/" + result.lstrip("/")


class FileSystem:
    """A tree of `DirNode`/`FileNode` under `/`."""

    def __init__(self) -> None:
        self.root = DirNode(mode=stat.S_IFDIR | 0o755)
        self.system = True  # the device's own writes (its initial tree, /proc) are not the shell's
        # Files whose content is made when read (`/proc/uptime`); their node is an empty placeholder,
        # as /proc files show size 0 on Linux.
        self.live: dict[str, Callable[[], bytes]] = {}
        for path, mode in _INITIAL_DIRS.items():
            self.mkdir(path, parents=True, mode=mode)
        self.system = False

    # -- lookups ------------------------------------------------------------------
    def lookup(self, path: str) -> Node | None:
        """The node at `path`, or None."""
        node: Node = self.root
        for part in _parts(path):
            if not isinstance(node, DirNode):
                return None
            child = node.entries.get(part)
            if child is None:
                return None
            node = child
        return node

    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def is_dir(self, path: str) -> bool:
        return isinstance(self.lookup(path), DirNode)

    def read(self, path: str) -> bytes:
        node = self.lookup(path)
        if node is None:
            raise FsError(path, NOT_FOUND)
        if isinstance(node, DirNode):
            raise FsError(path, IS_DIR)
        source = self.live.get(normalize(path))
        return source() if source is not None else node.data

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        """The entries of a directory, sorted by name."""
        node = self.lookup(path)
        if node is None:
            raise FsError(path, NOT_FOUND)
        if not isinstance(node, DirNode):
            raise FsError(path, NOT_DIR)
        return sorted(node.entries.items())

    def walk_files(self, path: str) -> Iterator[tuple[str, FileNode]]:
        """Every regular file under `path` (or `path` itself), with its full path."""
        node = self.lookup(path)
        if isinstance(node, FileNode):
            yield normalize(path), node
        elif isinstance(node, DirNode):
            for name in sorted(node.entries):
                yield from self.walk_files(posixpath.join(normalize(path), name))

    # -- changes -------------------------------------------------------------------
    def _parent(self, path: str, create: bool = False) -> tuple[DirNode, str]:
        path = normalize(path)
        if path == "/":
            raise FsError(path, EXISTS)
        parent_path, name = posixpath.split(path)
        if create:
            self.mkdir(parent_path, parents=True)
        parent = self.lookup(parent_path)
        if parent is None:
            raise FsError(path, NOT_FOUND)
        if not isinstance(parent, DirNode):
            raise FsError(path, NOT_DIR)
        if not self.system and not any(path.startswith(root + "/") for root in SHELL_WRITABLE):
            raise FsError(path, _denial(path))  # after the lookup: a missing folder says so first
        return parent, name

    def write(
        self,
        path: str,
        data: bytes,
        mode: int | None = None,
        mtime: int | None = None,
        make_parents: bool = False,
    ) -> FileNode:
        """Create or replace a regular file; `mode` holds the permission bits (type bits are ignored)."""
        parent, name = self._parent(path, create=make_parents)
        existing = parent.entries.get(name)
        if isinstance(existing, DirNode):
            raise FsError(path, IS_DIR)
        perms = (
            stat.S_IMODE(mode)
            if mode is not None
            else (stat.S_IMODE(existing.mode) if existing is not None else 0o666)
        )
        now = int(time.time())
        node = FileNode(data=bytes(data), mode=stat.S_IFREG | perms, mtime=now if mtime is None else mtime)
        parent.entries[name] = node
        parent.mtime = now
        return node

    def append(self, path: str, data: bytes) -> None:
        node = self.lookup(path)
        if isinstance(node, DirNode):
            raise FsError(path, IS_DIR)
        if node is None:
            self.write(path, data)
        else:
            node.data += data
            node.mtime = int(time.time())

    def mkdir(self, path: str, parents: bool = False, mode: int = 0o771) -> None:
        path = normalize(path)
        if path == "/":
            if parents:
                return
            raise FsError(path, EXISTS)
        existing = self.lookup(path)
        if existing is not None:
            if parents and isinstance(existing, DirNode):
                return
            raise FsError(path, EXISTS)
        parent, name = self._parent(path, create=parents)
        parent.entries[name] = DirNode(mode=stat.S_IFDIR | stat.S_IMODE(mode))
        parent.mtime = int(time.time())

    def remove(self, path: str, recursive: bool = False) -> None:
        parent, name = self._parent(path)
        node = parent.entries.get(name)
        if node is None:
            raise FsError(path, NOT_FOUND)
        if isinstance(node, DirNode) and not recursive:
            raise FsError(path, IS_DIR)
        del parent.entries[name]
        parent.mtime = int(time.time())

    def rmdir(self, path: str) -> None:
        node = self.lookup(path)
        if node is None:
            raise FsError(path, NOT_FOUND)
        if not isinstance(node, DirNode):
            raise FsError(path, NOT_DIR)
        if node.entries:
            raise FsError(path, NOT_EMPTY)
        self.remove(path, recursive=True)


def _denial(path: str) -> str:
    """Why the shell user may not change `path`: a read-only partition (or the root), or another user's."""
    if path.count("/") == 1 or any(path == root or path.startswith(root + "/") for root in _READ_ONLY_ROOTS):
        return READ_ONLY
    return DENIED


def _parts(path: str) -> list[str]:
    return [part for part in normalize(path).split("/") if part]
