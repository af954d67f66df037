"""What the server benchmarks share: a migrated database, a uvicorn server of the app, and CPU from /proc.

`bench/run_path.py`, `bench/fleet.py` and `bench/ingest.py` start the same server and read the same
counters; one copy here keeps them measuring the same thing.

* `database(kind, workdir)`: an empty migrated database URL (SQLite in `workdir`, or a fresh
  PostgreSQL schema on PHONEFLOW_TEST_DATABASE_URL, dropped afterwards);
* `server(url, workers)`: `phoneflow serve --workers N` in its own process group (the workers go
  with it even when the main process must be killed), the scheduler off;
* `cpu_s(pid)`, `process_tree(root)`, `tree_cpu_s(root)`: user + system CPU seconds (clock ticks);
  `threads_cpu_ns(pid)`: nanoseconds on CPU of every thread of a process (schedstat, finer).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.db import make_engine, normalise_url  # noqa: E402
from server.migrate import upgrade  # noqa: E402

PG_URL = os.environ.get("PHONEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Four server processes start in about a minute on a busy 2-core machine: wait longer than that.
SERVER_START_S = 300


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database URL of `kind` (`sqlite` or `postgresql`)."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, pool_pre_ping=False)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{normalise_url(PG_URL)}?options={quote(f'-csearch_path={schema}')}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    url: str, workers: int = 1, env: Mapping[str, str] | None = None, start_s: float = SERVER_START_S
) -> Iterator[tuple[str, int]]:
    """`phoneflow serve --workers N` on `url`, as the product runs (1: the app in the command's own
    process); its base URL and the pid of its main process. `env` adds to or overrides the server's
    environment. The database is already migrated (no upgrade at start), the scheduler is off."""
    port = free_port()
    environment = {
        **os.environ,
        "PHONEFLOW_DATABASE_URL": url,
        "PHONEFLOW_RUN_MIGRATIONS": "false",
        "PHONEFLOW_START_SCHEDULER": "false",
        "PHONEFLOW_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "phoneflow", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--backlog", "4096"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    serving = threading.Event()
    threading.Thread(target=_watch, args=(process, serving), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        # Announced once every process serves (a first process answers /healthz before the others).
        if not serving.wait(start_s) or process.poll() is not None:
            raise RuntimeError(f"the benchmark server did not start within {start_s:.0f} s")
        if httpx.get(base + "/healthz", timeout=10).status_code != 200:
            raise RuntimeError("the benchmark server does not answer /healthz")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _watch(process: subprocess.Popen[str], serving: threading.Event) -> None:
    """The server's stderr passed on, but its announcement (`serving` is set then); set at exit too."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("phoneflow serving on"):
            serving.set()
        if not line.startswith(_ANNOUNCEMENT):
            sys.stderr.write(line)
    serving.set()


_ANNOUNCEMENT = (
    "phoneflow serving on",
    "  dashboard ",
    "  API docs ",
    "  database ",
    "next: ",
    "      phoneflow ",
)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(root: int) -> list[int]:
    """`root` and its descendants now alive (uvicorn's workers and multiprocessing's helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of `root` and its descendants now alive."""
    return sum(cpu_s(pid) for pid in process_tree(root))


def threads_cpu_ns(pid: int) -> int:
    """Nanoseconds on CPU of every thread of `pid` now alive (/proc/PID/task/*/schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total
