"""Helpers for the runs tests: report bodies, and real uvicorn servers on 127.0.0.1.

`serve_in_thread(app)` runs an app in this process (its engine shared with the test);
`serve_in_subprocess(db_url)` starts a separate server process on the same database, as
a second machine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.server.factories import WorkflowFixture

REPO_ROOT = Path(__file__).resolve().parents[2]
# The day before yesterday at 10:00 UTC: fixed within a test run, and always inside the windows the server
# counts from today (a week of stats, retention), whatever day the suite runs on.
T0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=2)
SUBPROCESS_START_S = 120.0


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace_event(
    seq: int, *, node: str | None = None, outcome: str = "ok", message: str | None = None
) -> dict[str, Any]:
    """The trace event at `seq` (deterministic, so two reports of one run agree on it)."""
    return {
        "seq": seq,
        "nodeId": node or f"n{seq}",
        "kind": "action.tapByText",
        "outcome": outcome,
        "message": message,
        "startedAt": iso(T0 + timedelta(seconds=seq)),
        "durationMs": 80 + seq,
        "attempts": 1,
        "output": {},
    }


def run_report(
    run_id: str,
    workflow: WorkflowFixture,
    *,
    status: str = "running",
    steps: int = 0,
    started_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A runs.report run object with `steps` trace events (seqs 1..steps)."""
    body: dict[str, Any] = {
        "id": run_id,
        "workflowId": workflow.id,
        "workflowVersionId": workflow.version_id,
        "status": status,
        "trigger": "device",
        "inputs": {},
        "startedAt": iso(started_at or T0),
        "trace": [trace_event(seq) for seq in range(1, steps + 1)],
    }
    if status in ("success", "failed", "cancelled", "timeout"):
        body.update(
            endedAt=iso((started_at or T0) + timedelta(seconds=steps + 1)),
            durationMs=(steps + 1) * 1000,
            nSteps=steps,
            nFailed=1 if status == "failed" else 0,
            nRetries=0,
        )
        if status in ("failed", "timeout"):
            body["errorMessage"] = "no element with text 'Saved' on screen"
    body.update(fields)
    return body


def new_run_id() -> str:
    return str(uuid.uuid4())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    base_url: str, timeout_s: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until `/healthz` answers; a server process that exits meanwhile ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server at {base_url} exited with {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base_url} did not come up within {timeout_s} s")
        time.sleep(0.1)


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def serve_in_subprocess(db_url: str, *, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A separate uvicorn process serving the app on `db_url` (schema already built)."""
    port = free_port()
    env = {
        **os.environ,
        "PHONEFLOW_DATABASE_URL": db_url,
        "PHONEFLOW_RUN_MIGRATIONS": "false",
        "PHONEFLOW_START_SCHEDULER": "false",
        "PHONEFLOW_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            # A cold start imports the whole app: on a loaded 2-core machine that took over 30 s.
            wait_until_up(base_url, SUBPROCESS_START_S, process)
        except RuntimeError:
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(
                f"server process failed to start: {err.decode(errors='replace')[-2000:]}"
            ) from None
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


class SseReader:
    """Reads `GET /api/v1/events` on its own event loop in a thread; events land in a queue.

    Async so that `close()` can cancel the read at once (a blocking read cannot be interrupted).
    """

    def __init__(self, base_url: str, token: str, last_event_id: str | None = None) -> None:
        self.events: queue.Queue[dict[str, str]] = queue.Queue()
        self.comments: list[str] = []
        self.subscribed = threading.Event()
        self.status_code: int | None = None
        self._headers = auth_header(token)
        if last_event_id is not None:
            self._headers["Last-Event-ID"] = last_event_id
        self._base_url = base_url
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._task = self._loop.create_task(self._read())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    async def _read(self) -> None:
        timeout = httpx.Timeout(30, read=None)
        try:
            async with (
                httpx.AsyncClient(base_url=self._base_url, timeout=timeout) as client,
                client.stream("GET", "/api/v1/events", headers=self._headers) as response,
            ):
                self.status_code = response.status_code
                if response.status_code != 200:
                    return
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                        self.subscribed.set()
                    elif line == "":
                        if fields:
                            self.events.put(fields)
                            fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass  # the server went away
        finally:
            self.subscribed.set()

    def wait_subscribed(self, timeout_s: float = 10) -> None:
        assert self.subscribed.wait(timeout_s), "the event stream did not open"
        assert self.status_code == 200, f"the event stream answered {self.status_code}"

    def next(self, timeout_s: float = 5) -> dict[str, str]:
        return self.events.get(timeout=timeout_s)

    def close(self) -> None:
        if self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=5)


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
