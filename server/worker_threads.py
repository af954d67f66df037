"""The worker threads that run the transactions of the phones' busiest calls (`in_one_transaction`).

`run_in_worker(func)` does what starlette's `run_in_threadpool` (anyio's `to_thread.run_sync`) does for
them, for less of the event loop's CPU: anyio's path yields to the loop once before it starts (an
extra turn of the loop, with its poll), enters a cancel scope and the limiter's async context, looks
up its per-loop state through context variables and hands the job over through a `queue.Queue`
(locks and a condition written in Python). Measured on the ASGI stack with the database work
stubbed, that was about a third of the event loop's CPU for a single-run `runs.report`.

What stays as with anyio:
* at most as many threads work as anyio's default thread limiter allows (40), shared with every
  other `run_in_threadpool` and `def` endpoint of the loop: a call takes one of its tokens, without
  waiting, and holds it until its thread is done; when none is free it goes anyio's way and waits;
* `func` runs in a copy of the caller's context (the request id of the log lines);
* a caller cancelled while its thread works waits for the thread to finish (its transaction committed
  or rolled back), then is cancelled: the shielded wait of anyio's `run_sync`;
* a thread idle for `IDLE_S` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import WouldBlock, to_thread
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

IDLE_S = 10.0  # as anyio's worker threads

# (context, func, future, loop, limiter, token) of each job not taken yet.
_Job = tuple[
    contextvars.Context, Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop, Any, object
]


class _Threads:
    """Threads taking jobs from one queue; one is started when no idle thread is there to take a job."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()  # in C: a put is one lock release
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job that no job handed in so far is counted on

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                start = False
            else:
                start = True
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._serve, name="phoneflow worker", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                context, func, future, loop, limiter, token = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._idle:  # no job counts on this thread: it ends
                        self._idle -= 1
                        return
                continue  # a job was handed in for it: take it
            result: Any = None
            error: BaseException | None = None
            try:
                result = context.run(func)
            except BaseException as exc:
                error = exc
            with self._lock:  # idle before the caller hears: its next call finds this thread
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, limiter, token, result, error)
            del context, func, future, loop, limiter, token, result, error  # nothing kept while idle


_THREADS = _Threads()


def _settle(
    future: asyncio.Future[Any], limiter: Any, token: object, result: Any, error: BaseException | None
) -> None:
    """On the loop: the thread is done; its token goes back and the caller gets the outcome."""
    limiter.release_on_behalf_of(token)
    waiter = _working.pop(token)
    if waiter is not None:  # a cancelled caller waits for this moment (`run_in_worker`)
        waiter.set_result(None)
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):  # a future cannot carry one (anyio says the same)
        wrapped = RuntimeError("coroutine raised StopIteration")
        wrapped.__cause__ = error
        future.set_exception(wrapped)
    else:
        future.set_exception(error)


# The calls whose thread is working, by their token: None, or what a cancelled caller waits on.
_working: dict[object, asyncio.Future[None] | None] = {}
# Each loop's default thread limiter, looked up once: anyio finds it through context variables.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def run_in_worker(func: Callable[[], T]) -> T:
    """`func()` in a worker thread, in a copy of the caller's context; its result or its exception."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = to_thread.current_default_thread_limiter()
    token = object()
    try:
        limiter.acquire_on_behalf_of_nowait(token)
    except WouldBlock:  # every thread the limiter allows is busy: wait for one as anyio does
        return await run_in_threadpool(func)
    future: asyncio.Future[T] = loop.create_future()
    _working[token] = None
    _THREADS.submit((contextvars.copy_context(), func, future, loop, limiter, token))
    try:
        return await future
    except asyncio.CancelledError:
        if token in _working:  # cancelled while the thread works: wait for it, then go
            done = _working[token] = loop.create_future()
            while not done.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(done)
        raise
