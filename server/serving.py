"""How `phoneflow serve` runs the app: one uvicorn server, or several processes sharing one socket.

* `QuietServer`: uvicorn's `Server`, idle at one wake-up a second. uvicorn's main loop ticks every
  0.1 s to notice a shutdown; on a small VM each wake-up of an idle process costs ~0.2 ms of CPU, so
  four idle processes spent ~7 ms of CPU every second doing nothing. Here the loop sleeps a second
  (the Date header is still refreshed every second) and a signal wakes it at once.
* `Supervisor`: `--workers N` processes (spawned, not forked) serving one listening socket. It
  wakes when a worker exits (the process's sentinel), when it is signalled, and every
  `HEALTH_CHECK_S` to ping the workers, which answer from their event loop: a worker that died is
  replaced, one whose loop has not answered for `HUNG_S` is killed and replaced. SIGINT or SIGTERM
  stops every worker gracefully (a second signal stops them at once). A worker whose supervisor
  went away (its pipe closes) stops on its own.

What happens once per server, not once per process, happens in `phoneflow serve` before the workers
start (the schema upgrade, the socket, the announcement). Background jobs run in every process's
app; on PostgreSQL one process at a time runs them (server/scheduler.py), and each job is safe in
several processes at once on either database (a cron slot makes one run: server/schedules/service.py).

Relies on uvicorn's `Server.main_loop`, `Server.on_tick(counter)` (a counter that is a multiple of 10
refreshes the Date header), `Server.handle_exit` and `Server.startup`: tested with uvicorn 0.54,
pinned below 0.55 in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from uvicorn import Config, Server

from server import metrics
from server.observability import configure_logging
from server.settings import Settings

_log = logging.getLogger("phoneflow.serve")

# An idle worker's main loop wakes this often (uvicorn's: ten times a second).
TICK_S = 1.0
# The supervisor pings its workers this often ...
HEALTH_CHECK_S = 10.0
# ... and replaces one whose event loop has not answered for this long (a blocked or hung loop).
HUNG_S = 60.0
# After SIGINT/SIGTERM, workers get this long to finish (requests in flight, then the app's
# shutdown: the scheduler's running jobs, the pools) before they are killed.
STOP_S = 30.0

_READY = b"ready"
_PING = b"ping"
_PONG = b"pong"


class QuietServer(Server):
    """uvicorn's server, waking once a second while idle; a shutdown signal wakes it at once.

    `on_started` is called once the server really serves (not after a failed start). `supervisor`
    is the pipe of a worker to its `Supervisor`: told when the server is ready, pinged, and closed
    when the supervisor goes (the worker then stops).
    """

    def __init__(
        self,
        config: Config,
        on_started: Callable[[], None] | None = None,
        supervisor: Connection | None = None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._supervisor = supervisor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nap: asyncio.Future[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
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
        # A counter of 0 makes every tick refresh the Date header (uvicorn does it every tenth).
        while not await self.on_tick(0):
            await self._sleep(TICK_S)

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
        super().handle_exit(sig, frame)
        self._stop_soon()

    def _stop_soon(self) -> None:
        """Wake the main loop now (safe from a signal handler or any thread) to see `should_exit`."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _answer_supervisor(self) -> None:
        assert self._supervisor is not None
        try:
            self._supervisor.recv_bytes()
            self._supervisor.send_bytes(_PONG)
        except (EOFError, OSError):  # the supervisor is gone: stop, as on SIGTERM
            asyncio.get_running_loop().remove_reader(self._supervisor.fileno())
            self.should_exit = True
            self._stop_soon()


def run_worker(settings: Settings, options: dict[str, Any], sock: socket.socket, pipe: Connection) -> None:
    """A worker process of `Supervisor`: the app on the shared socket (a spawned process's target)."""
    from server.app import create_app

    # uvicorn re-raises the signal it stopped for once it is done: SIGTERM then ends like SIGINT.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        config = Config(create_app(settings), **options)
        QuietServer(config, supervisor=pipe).run(sockets=[sock])
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
    0 after a signal, 1 when a worker exited before it served (the app could not start: its own
    message says why; another would fail the same way).
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
        self._workers: list[_Worker] = []
        self._signals = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        configure_logging(self._settings.log_level)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._supervise()
        finally:
            self._stop_all()
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
                waits += [worker.process.sentinel, worker.pipe]
            ready = wait(waits, timeout=max(0.0, next_check - time.monotonic()))
            if self._signals:
                break
            for index, worker in enumerate(self._workers):
                if worker.pipe in ready:
                    self._read(worker)
                if worker.process.sentinel in ready:
                    worker.process.join()
                    if worker.process.pid is not None:
                        metrics.process_exited(worker.process.pid)
                    if not worker.ready:  # the app could not start (its log says why): nor would another
                        _log.error(
                            "a server process could not start (status %s): stopping the others",
                            worker.process.exitcode,
                        )
                        return 1
                    _log.warning(
                        "server process %s exited (status %s): starting another",
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    worker.pipe.close()
                    self._workers[index] = self._start()
            if not announced and all(worker.ready for worker in self._workers):
                announced = True
                if self._on_ready is not None:
                    self._on_ready()
            if time.monotonic() >= next_check:
                self._check_health()
                next_check = time.monotonic() + HEALTH_CHECK_S
        return 0

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_worker,
            args=(self._settings, self._options, self._sock, theirs),
            name="phoneflow-worker",
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _read(self, worker: _Worker) -> None:
        try:
            while worker.pipe.poll():
                if worker.pipe.recv_bytes() == _READY:
                    worker.ready = True
                worker.answered = time.monotonic()
        except (EOFError, OSError):  # the worker is exiting: its sentinel tells
            pass

    def _check_health(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if not worker.ready or not worker.process.is_alive():
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
        """SIGTERM to every worker (graceful), SIGINT on a further signal (at once), SIGKILL after STOP_S."""
        alive = [w.process for w in self._workers if w.process.is_alive()]
        for process in alive:
            _signal(process, signal.SIGTERM)
        signals = self._signals
        deadline = time.monotonic() + STOP_S
        while alive and time.monotonic() < deadline:
            wait([p.sentinel for p in alive] + [self._wake_r], timeout=max(0.0, deadline - time.monotonic()))
            self._drain_wake_ups()
            if self._signals > signals:  # impatient: stop without waiting for requests in flight
                signals = self._signals
                for process in alive:
                    _signal(process, signal.SIGINT)
            alive = [p for p in alive if p.is_alive()]
        for process in alive:
            _log.error("server process %s did not stop within %.0f s: killing it", process.pid, STOP_S)
            process.kill()
        for worker in self._workers:
            worker.process.join()
            worker.pipe.close()


def _signal(process: BaseProcess, sig: signal.Signals) -> None:
    if process.pid is not None:
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            pass
