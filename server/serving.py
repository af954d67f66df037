"""How `phoneflow serve` runs the app: one uvicorn server, or several processes sharing one socket.

* `QuietServer`: uvicorn's `Server`, idle at one wake-up a second. uvicorn's main loop ticks every
  0.1 s to notice a shutdown; on a small VM each wake-up of an idle process costs ~0.2 ms of CPU, so
  four idle processes spent ~7 ms of CPU every second doing nothing. Here the loop sleeps a second
  (the Date header is still refreshed every second) and a signal wakes it at once.
* `Supervisor`: `--workers N` processes (spawned, not forked) serving one listening socket. It
  wakes when a worker exits (the process's sentinel), when it is signalled, and every
  `HEALTH_CHECK_S` to ping the workers, which answer from their event loop: a worker that died is
  replaced, one whose loop has not answered for `HUNG_S` is killed and replaced. A worker that
  cannot start at the first start stops the server (another would fail the same way, and the
  operator is there to read why); once the server has served, a replacement that cannot start
  (the database or the artifact folder went away for a while) is tried again after 1, 2, 4 ... up
  to `RESTART_MAX_S` seconds, each failure logged, while the other workers keep serving.
  SIGINT or SIGTERM stops every worker gracefully (a second signal stops them at once). A worker
  takes any signal as "stop gracefully": Ctrl-C in a terminal or systemd's stop signal every
  process of the unit, and the supervisor's own signal then arrives too; only the supervisor's
  word (over the worker's pipe) stops it at once. A worker whose supervisor went away (its pipe
  closes) stops on its own.
* Metrics: the workers write their figures into a private folder of the supervisor (prometheus-
  client's multiprocess mode), so that `/metrics` answered by any of them sums them all (unless
  the operator named a folder in `PROMETHEUS_MULTIPROC_DIR`: then that one). The supervisor marks
  each dead worker's live gauges dead and removes its folder when it stops.

What happens once per server, not once per process, happens in `phoneflow serve` before the workers
start (the schema upgrade, the socket, the announcement). Background jobs run in every process's
app; on PostgreSQL one process at a time runs them (server/scheduler.py), and each job is safe in
several processes at once on either database (a cron slot makes one run: server/schedules/service.py).

Relies on uvicorn's `Server.main_loop`, `Server.on_tick(counter)` (a counter that is a multiple of 10
refreshes the Date header), `Server.handle_exit`, `Server.startup` and its protocols reading
`server_state.default_headers` as `headers + list(...)` or a loop: tested with uvicorn 0.54, pinned
below 0.55 in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from uvicorn import Config, Server

from server import metrics
from server.observability import configure_logging
from server.settings import Settings

_log = logging.getLogger("phoneflow.serve")

# An idle worker's main loop wakes this often (uvicorn's: ten times a second, to refresh the Date
# header and look at its exit flag). The Date header is made when an answer is sent (`DatedHeaders`)
# and a signal wakes the loop at once, so this is only a safety net: on a virtual machine a wake-up of
# an idle process can cost several milliseconds of CPU (6.8 ms measured on the two-core bench machine).
TICK_S = 60.0
# The supervisor pings its workers this often ...
HEALTH_CHECK_S = 10.0
# ... and replaces one whose event loop has not answered for this long (a blocked or hung loop).
HUNG_S = 60.0
# After SIGINT/SIGTERM, workers get this long to finish (requests in flight, then the app's
# shutdown: the scheduler's running jobs, the pools) before they are killed.
STOP_S = 30.0
# A replacement worker that cannot start is tried again after 1, 2, 4 ... seconds, at most this long.
RESTART_MAX_S = 30.0

_READY = b"ready"
_PING = b"ping"
_PONG = b"pong"
_NOW = b"now"  # the supervisor's second signal: stop without waiting for requests in flight
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The private metrics folders of supervisors: `phoneflow-metrics-<pid>-<random>` in the temp folder.
_METRICS_PREFIX = "phoneflow-metrics-"


class DatedHeaders(list[tuple[bytes, bytes]]):
    """uvicorn's default response headers, with a Date header of the second the answer is sent.

    uvicorn refreshes its `server_state.default_headers` (Date, then the configured headers) from its
    main loop ten times a second; an idle `QuietServer` does not wake for that, so the Date is made
    here when the headers are read (`headers + list(...)` or a loop over them, as uvicorn's protocols
    do), at most once a second."""

    def __init__(self, date: bool, extra: list[tuple[bytes, bytes]]) -> None:
        super().__init__(extra)
        self._date = date
        self._extra = list(extra)
        self._second = -1

    def _current(self) -> list[tuple[bytes, bytes]]:
        if self._date:
            now = int(time.time())
            if now != self._second:
                self._second = now
                self[:] = [(b"date", formatdate(now, usegmt=True).encode()), *self._extra]
        return self

    def __add__(self, other: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        return list.__add__(self._current(), other)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return list.__iter__(self._current())


class QuietServer(Server):
    """uvicorn's server, asleep while idle (uvicorn's wakes ten times a second); a shutdown signal
    wakes it at once, and the Date header is made as answers are sent (`DatedHeaders`).

    `on_started` is called once the server really serves (not after a failed start), `on_stopping`
    once it is told to stop, before it waits for the requests in flight. `supervisor`
    is the pipe of a worker to its `Supervisor`: told when the server is ready, pinged, and closed
    when the supervisor goes (the worker then stops).
    """

    def __init__(
        self,
        config: Config,
        on_started: Callable[[], None] | None = None,
        supervisor: Connection | None = None,
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping
        self._supervisor = supervisor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nap: asyncio.Future[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.server_state.default_headers = DatedHeaders(self.config.date_header, self.config.encoded_headers)
        await super().startup(sockets=sockets)
        if not self.started or self.should_exit:
            return
        if self._supervisor is not None:
            self._supervisor.send_bytes(_READY)
            asyncio.get_running_loop().add_reader(self._supervisor.fileno(), self._answer_supervisor)
        if self._on_started is not None:
            self._on_started()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A counter that is not a multiple of 10: the tick only looks at the exit flag (and the
        # request limit), leaving the headers to `DatedHeaders`.
        while not await self.on_tick(1):
            await self._sleep(TICK_S)
        if self._on_stopping is not None:  # before uvicorn waits for the requests in flight
            self._on_stopping()

    async def _sleep(self, seconds: float) -> None:
        assert self._loop is not None
        self._nap = self._loop.create_future()
        timer = self._loop.call_later(seconds, self._wake)
        try:
            await self._nap
        finally:
            timer.cancel()
            self._nap = None

    def _wake(self) -> None:
        if self._nap is not None and not self._nap.done():
            self._nap.set_result(None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._supervisor is not None and self.should_exit:
            # A worker: a second signal (the terminal's Ctrl-C or systemd's stop reaches every process,
            # then the supervisor's SIGTERM) is not impatience; the supervisor says when it is (_NOW).
            return
        super().handle_exit(sig, frame)
        self._stop_soon()

    def _stop_soon(self) -> None:
        """Wake the main loop now (safe from a signal handler or any thread) to see `should_exit`."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _answer_supervisor(self) -> None:
        assert self._supervisor is not None
        try:
            if self._supervisor.recv_bytes() == _NOW:
                self.should_exit = self.force_exit = True
                self._stop_soon()
                return
            self._supervisor.send_bytes(_PONG)
        except (EOFError, OSError):  # the supervisor is gone: stop, as on SIGTERM
            asyncio.get_running_loop().remove_reader(self._supervisor.fileno())
            self.should_exit = True
            self._stop_soon()


def run_worker(settings: Settings, options: dict[str, Any], sock: socket.socket, pipe: Connection) -> None:
    """A worker process of `Supervisor`: the app on the shared socket (a spawned process's target)."""
    # uvicorn re-raises the signal it stopped for once it is done: SIGTERM then ends like SIGINT.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # The supervisor started this process with SIGINT and SIGTERM blocked (a Ctrl-C while it
        # imports would print a traceback): one that came meanwhile stops it here, quietly.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        from server.app import create_app
        from server.stopping import stop_waiting

        app = create_app(settings)
        server = QuietServer(Config(app, **options), supervisor=pipe, on_stopping=partial(stop_waiting, app))
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass


@dataclass
class _Worker:
    process: BaseProcess
    pipe: Connection
    ready: bool = False
    answered: float = field(default_factory=time.monotonic)


class Supervisor:
    """`workers` processes running `run_worker` on `sock`, kept alive until SIGINT/SIGTERM.

    `on_ready` is called once, when every first worker serves. `run()` returns the exit status:
    0 after a signal, 1 when a worker of the first start exited before it served (the app could
    not start: its own message says why; another would fail the same way). A replacement that
    cannot start later is tried again with a backoff (`RESTART_MAX_S`).
    """

    def __init__(
        self,
        settings: Settings,
        options: dict[str, Any],
        sock: socket.socket,
        workers: int,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._sock = sock
        self._count = workers
        self._on_ready = on_ready
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker | None] = []
        # Slots whose replacement could not start: when to try again; failures in a row.
        self._restart_at: dict[int, float] = {}
        self._failures = 0
        self._signals = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        configure_logging(self._settings.log_level)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            with metrics_folder():
                try:
                    return self._supervise()
                finally:
                    self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals += 1
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:  # the pipe is full of earlier wake-ups: it wakes the loop anyway
            pass

    def _drain_wake_ups(self) -> None:
        try:
            while os.read(self._wake_r, 64):
                pass
        except BlockingIOError:
            pass

    def _supervise(self) -> int:
        self._workers = [self._start() for _ in range(self._count)]
        announced = False
        next_check = time.monotonic() + HEALTH_CHECK_S
        while not self._signals:
            waits: list[Any] = [self._wake_r]
            for worker in self._workers:
                if worker is not None:
                    waits += [worker.process.sentinel, worker.pipe]
            until = min([next_check, *self._restart_at.values()])
            ready = wait(waits, timeout=max(0.0, until - time.monotonic()))
            if self._signals:
                break
            for index, worker in enumerate(self._workers):
                if worker is None:
                    continue
                if worker.pipe in ready:
                    self._read(worker)
                if worker.process.sentinel in ready:
                    self._workers[index] = None
                    self._reap(worker)
                    if not worker.ready and not announced:
                        # The app could not start (its log says why): nor would another.
                        _log.error(
                            "a server process could not start (status %s): its error is above; fix what "
                            "it says and start phoneflow serve again (the other processes are stopped)",
                            worker.process.exitcode,
                        )
                        return 1
                    self._replace(index, worker)
            self._restart_due()
            if not announced and all(w is not None and w.ready for w in self._workers):
                announced = True
                if self._on_ready is not None:
                    self._on_ready()
            if time.monotonic() >= next_check:
                self._check_health()
                next_check = time.monotonic() + HEALTH_CHECK_S
        return 0

    def _reap(self, worker: _Worker) -> None:
        worker.process.join()
        worker.pipe.close()
        metrics.process_exited(worker.process.pid)

    def _replace(self, index: int, worker: _Worker) -> None:
        """Start another in the slot of `worker`, which exited: at once after it served; after a
        backoff when it could not start (the others serve meanwhile: the cause may pass)."""
        if worker.ready:
            _log.warning(
                "server process %s exited (status %s): starting another",
                worker.process.pid,
                worker.process.exitcode,
            )
            self._workers[index] = self._start()
            return
        self._failures += 1
        delay = min(RESTART_MAX_S, 2.0 ** (self._failures - 1))
        serving = sum(1 for w in self._workers if w is not None and w.ready)
        _log.error(
            "a new server process could not start (status %s; its error is above): trying again in %.0f s "
            "(%d of %d processes serving)",
            worker.process.exitcode,
            delay,
            serving,
            self._count,
        )
        self._restart_at[index] = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for index, when in list(self._restart_at.items()):
            if when <= now:
                del self._restart_at[index]
                self._workers[index] = self._start()

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_worker,
            args=(self._settings, self._options, self._sock, theirs),
            name="phoneflow-worker",
        )
        # The new process starts with SIGINT and SIGTERM blocked until run_worker can take them;
        # here they are held for the moment of the start and then handled.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()
        return _Worker(process, ours)

    def _read(self, worker: _Worker) -> None:
        try:
            while worker.pipe.poll():
                if worker.pipe.recv_bytes() == _READY:
                    worker.ready = True
                    if self._failures:
                        _log.warning("a new server process %s serves again", worker.process.pid)
                        self._failures = 0
                worker.answered = time.monotonic()
        except (EOFError, OSError):  # the worker is exiting: its sentinel tells
            pass

    def _check_health(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker is None or not worker.ready or not worker.process.is_alive():
                continue
            if now - worker.answered > HUNG_S:
                _log.error(
                    "server process %s has not answered for %.0f s: killing it", worker.process.pid, HUNG_S
                )
                worker.process.kill()  # its sentinel then starts another
                continue
            try:
                worker.pipe.send_bytes(_PING)
            except OSError:
                pass

    def _stop_all(self) -> None:
        """SIGTERM to every worker (graceful), at once on a further signal, SIGKILL after STOP_S."""
        workers = [w for w in self._workers if w is not None]
        alive = [w for w in workers if w.process.is_alive()]
        for worker in alive:
            _signal(worker.process, signal.SIGTERM)
        signals = self._signals
        deadline = time.monotonic() + STOP_S
        while alive and time.monotonic() < deadline:
            sentinels = [w.process.sentinel for w in alive]
            wait([*sentinels, self._wake_r], timeout=max(0.0, deadline - time.monotonic()))
            self._drain_wake_ups()
            if self._signals > signals:  # impatient: stop without waiting for requests in flight
                signals = self._signals
                for worker in alive:
                    try:
                        worker.pipe.send_bytes(_NOW)
                    except OSError:  # it is exiting already
                        pass
            alive = [w for w in alive if w.process.is_alive()]
        for worker in alive:
            _log.error("server process %s did not stop within %.0f s: killing it", worker.process.pid, STOP_S)
            worker.process.kill()
        for worker in workers:
            self._reap(worker)
        self._workers = []


@contextmanager
def metrics_folder() -> Iterator[None]:
    """The workers' figures summed by whichever answers `/metrics` (prometheus-client's multiprocess mode).

    A folder of this supervisor's own in `PROMETHEUS_MULTIPROC_DIR` while it runs (folders of
    supervisors that died without removing theirs are removed first), removed at the end. A folder
    the operator named in `PROMETHEUS_MULTIPROC_DIR` is used as it is (separate `phoneflow serve`
    commands may share it); emptying it before they start is theirs to do."""
    if metrics.multiprocess_dir():
        yield
        return
    temp = Path(tempfile.gettempdir())
    for stale in temp.glob(f"{_METRICS_PREFIX}*-*"):
        pid = stale.name.removeprefix(_METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and stale.is_dir() and stale.stat().st_uid == os.getuid():
            shutil.rmtree(stale, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # the workers, spawned from now on, inherit it
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(process: BaseProcess, sig: signal.Signals) -> None:
    if process.pid is not None:
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            pass
