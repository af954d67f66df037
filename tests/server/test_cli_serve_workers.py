"""`phoneflow serve --workers N`: processes sharing the port, replaced when they die, stopped by a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from phoneflow.cli import app as phoneflow
from server.accounts.models import Account
from server.db import utcnow
from server.devices.models import Device
from server.runs.models import Run
from server.schedules import service as schedules
from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.test_cli_server import _free_port
from tests.server.test_metrics import scrape


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def workers(self) -> set[int]:
        """The server's worker processes now alive (its spawned children, not multiprocessing's helper)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                command = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.process.pid and b"spawn_main" in command:
                found.add(int(stat.parent.name))
        return found

    def answering_pids(self) -> set[int]:
        """The processes of the access log's lines so far."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return {entry["pid"] for entry in entries if entry.get("logger") == "phoneflow.access"}

    def stop(self, sig: signal.Signals) -> float:
        """Signal the server; the seconds it took to exit (it must exit 0)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        assert self.process.wait(timeout=20) == 0, self.log.read_text(encoding="utf-8")
        return time.monotonic() - started


def _until(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.05)


def _serve(db: Db, tmp_path: Path, workers: int, **env: str) -> Served:
    port = _free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "phoneflow", "serve", "--workers", str(workers), "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--database-url", db.url],
            cwd=tmp_path,
            env={**os.environ, "PHONEFLOW_START_SCHEDULER": "false", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"phoneflow serve exited:\n{log.read_text(encoding='utf-8')}")
        return "phoneflow serving on" in log.read_text(encoding="utf-8")

    _until(up, "phoneflow serve did not come up", timeout=60)
    return served


def _answer(served: Served, pids: int) -> None:
    """Requests on new connections until `pids` processes answered."""

    def answered() -> bool:
        assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
        return len(served.answering_pids()) >= pids

    _until(answered, f"not {pids} processes answered")


def test_workers_share_the_port_fire_a_cron_slot_once_are_replaced_and_stop_on_a_signal(
    db: Db, tmp_path: Path
) -> None:
    """Each process runs the background jobs' scheduler (on PostgreSQL one at a time): a due cron slot
    still makes one run. What does not depend on the database is checked on SQLite only."""
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    with db.session_factory.begin() as session:
        owner = session.get(Account, account.id)
        assert owner is not None
        # A yearly slot, due since five minutes ago: each process looks for it every 0.1 s.
        past = utcnow() - timedelta(minutes=5)
        created = schedules.create_schedule(
            session, owner, workflow.id, device_id=device.id, cron="0 0 1 1 *", now=past
        )
        created.next_fire_at = past

    served = _serve(db, tmp_path, 2, PHONEFLOW_START_SCHEDULER="true", PHONEFLOW_SCHEDULE_POLL_S="0.1")
    try:
        first = served.workers()
        assert len(first) == 2
        assert "(2 processes)" in served.log.read_text(encoding="utf-8")
        _answer(served, 2)
        assert served.answering_pids() == first

        def runs() -> int:
            with db.session_factory() as session:
                return int(session.scalar(select(func.count()).select_from(Run)) or 0)

        _until(lambda: runs() >= 1, "the due schedule made no run")
        time.sleep(0.5)  # both processes polled several times since
        assert runs() == 1

        if db.kind == "sqlite":
            victim = min(first)
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                alive = served.workers()
                return victim not in alive and len(alive) == 2

            _until(replaced, "no worker replaced the killed one")
            replacement = (served.workers() - first).pop()

            def replacement_answered() -> bool:
                assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
                return replacement in served.answering_pids()

            _until(replacement_answered, "the new worker never answered")
        workers = served.workers()
        assert served.stop(signal.SIGTERM if db.kind == "sqlite" else signal.SIGINT) < 10
    finally:
        if served.process.poll() is None:
            served.process.kill()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert served.log.read_text(encoding="utf-8").count("phoneflow serving on") == 1


def test_metrics_sum_every_worker_and_a_replacement_that_cannot_start_is_tried_again(
    db: Db, tmp_path: Path
) -> None:
    """`/metrics` answered by either process counts both processes' requests and pools (a private
    multiprocess folder, no PROMETHEUS_MULTIPROC_DIR given). A worker killed while the artifact
    folder cannot be used cannot be replaced at once: the supervisor says so, tries again with a
    backoff while the other process keeps answering, and the replacement serves once the folder is
    back. The start's notices are said once, not once a process."""
    if db.kind != "sqlite":
        pytest.skip("nothing here depends on the database")
    artifacts = tmp_path / "artifacts"
    env = {"PHONEFLOW_METRICS_PUBLIC": "true", "PHONEFLOW_ARTIFACT_DIR": str(artifacts)}
    served = _serve(db, tmp_path, 2, PHONEFLOW_START_SCHEDULER="true", **env)
    try:
        assert served.log.read_text(encoding="utf-8").count("approval e-mails are off") == 1
        sent = 0

        def both_answered() -> bool:
            nonlocal sent
            assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
            sent += 1
            return len(served.answering_pids()) >= 2

        _until(both_answered, "not 2 processes answered")
        healthz = 'phoneflow_http_request_duration_seconds_count{method="GET",route="/healthz"}'
        scrapers: set[int] = set()

        def scraped_by_both() -> bool:
            with httpx.Client(base_url=served.base, timeout=10) as http:
                figures = scrape(http, token=None)
            assert figures[healthz] == sent  # every process's requests, whichever answers
            assert figures["phoneflow_db_pool_capacity"] == 2 * 15  # two live pools
            scrapers.update(served.answering_pids())
            return len(scrapers) >= 2

        _until(scraped_by_both, "the scrapes were not answered by both processes")
        folders = list(Path(tempfile.gettempdir()).glob(f"phoneflow-metrics-{served.process.pid}-*"))
        assert len(folders) == 1

        artifacts.rename(tmp_path / "artifacts-away")
        artifacts.write_text("not a folder", encoding="utf-8")
        first = served.workers()
        os.kill(min(first), signal.SIGKILL)
        _until(
            lambda: "could not start" in served.log.read_text(encoding="utf-8"),
            "the failed replacement was not reported",
        )
        log = served.log.read_text(encoding="utf-8")
        assert "trying again in 1 s (1 of 2 processes serving)" in log
        assert served.process.poll() is None
        assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200  # the other one answers

        artifacts.unlink()
        (tmp_path / "artifacts-away").rename(artifacts)
        _until(
            lambda: "serves again" in served.log.read_text(encoding="utf-8"),
            "the replacement never served",
            timeout=60,
        )
        assert len(served.workers()) == 2
        with httpx.Client(base_url=served.base, timeout=10) as http:
            figures = scrape(http, token=None)
        assert figures[healthz] >= sent + 1  # the killed process's requests still count ...
        assert figures["phoneflow_db_pool_capacity"] == 2 * 15  # ... its pool no longer does
        assert served.stop(signal.SIGTERM) < 20
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
    assert not folders[0].exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_event_streams_and_long_polls_properly_and_exits_0(
    db: Db, tmp_path: Path, sig: signal.Signals
) -> None:
    """Open event streams end with their last chunk (the clients resume elsewhere) and a bridge's
    long poll is answered (no command) as soon as the server is told to stop: neither holds the stop
    until uvicorn's graceful wait runs out and is then cut (a truncated stream, a 500)."""
    if db.kind != "sqlite":
        pytest.skip("nothing here depends on the database")
    account = create_account(db)
    device = create_device(db, account.id)
    served = _serve(db, tmp_path, 2)
    outcomes: dict[str, str] = {}

    def stream(name: str, subscribed: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {account.token}"}
        try:
            with httpx.stream("GET", f"{served.base}/api/v1/events", headers=headers, timeout=60) as answer:
                for line in answer.iter_lines():
                    if line == ": subscribed":
                        subscribed.set()
            outcomes[name] = "ended"
        except httpx.HTTPError as exc:
            outcomes[name] = f"{type(exc).__name__}: {exc}"

    def poll() -> None:
        headers = {"Authorization": f"Bearer {device.token}"}
        try:
            answer = httpx.get(
                f"{served.base}/api/v1/devices/me/commands?wait=25", headers=headers, timeout=60
            )
            outcomes["poll"] = f"{answer.status_code} {answer.text}"
        except httpx.HTTPError as exc:
            outcomes["poll"] = f"{type(exc).__name__}: {exc}"

    def polled() -> bool:
        with db.session_factory() as session:
            return session.get(Device, device.id).commands_polled_at is not None  # type: ignore[union-attr]

    threads = []
    try:
        for name in ("stream-1", "stream-2"):
            subscribed = threading.Event()
            threads.append(threading.Thread(target=stream, args=(name, subscribed)))
            threads[-1].start()
            assert subscribed.wait(30), outcomes
        threads.append(threading.Thread(target=poll))
        threads[-1].start()
        _until(polled, "the long poll never came")
        served.process.send_signal(sig)
        assert served.process.wait(timeout=60) == 0
        for thread in threads:
            thread.join(timeout=60)
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
    assert outcomes == {"stream-1": "ended", "stream-2": "ended", "poll": '200 {"commands":[]}'}
    log = served.log.read_text(encoding="utf-8")
    assert "Traceback" not in log
    assert "without completing response" not in log


@pytest.mark.parametrize(("value", "said"), [("0", "0 processes: give 1 to 64"), ("65", "give 1 to 64")])
def test_a_bad_number_of_workers_is_refused_with_what_to_give(value: str, said: str) -> None:
    result = CliRunner().invoke(phoneflow, ["serve", "--workers", value])
    assert result.exit_code == 2
    unwrapped = " ".join(result.output.replace("│", " ").split())
    assert said in unwrapped
    assert "CPU core" in unwrapped
