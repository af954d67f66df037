"""`run_in_worker` (server/worker_threads.py) behaves as anyio's `run_sync` did for the busiest calls'
transactions: the result or the exception comes back, the caller's context goes along, no more threads
work than the default thread limiter allows, and a cancelled caller waits for its thread to finish."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest
from anyio import to_thread

from server.worker_threads import run_in_worker

pytestmark = pytest.mark.timeout(30)

_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


def test_the_result_the_exception_and_the_callers_context_come_along() -> None:
    async def main() -> None:
        _where.set("request 7")
        loop_thread = threading.get_ident()
        seen = await run_in_worker(lambda: (_where.get(), threading.get_ident()))
        assert seen[0] == "request 7"
        assert seen[1] != loop_thread

        def fails() -> None:
            raise LookupError("no such run")

        with pytest.raises(LookupError, match="no such run"):
            await run_in_worker(fails)

        def stops() -> None:
            raise StopIteration

        with pytest.raises(RuntimeError, match="StopIteration"):  # a future cannot carry it, as in anyio
            await run_in_worker(stops)

        # One after the other, the calls find an idle thread (none is started for each).
        before = {t.ident for t in threading.enumerate()}
        threads = {await run_in_worker(threading.get_ident) for _ in range(20)}
        assert len(threads - before) <= 1

    asyncio.run(main())


def test_no_more_threads_work_than_the_default_limiter_allows() -> None:
    working = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal working, most
        with lock:
            working += 1
            most = max(most, working)
        time.sleep(0.05)
        with lock:
            working -= 1

    async def main() -> None:
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = 3
        await asyncio.gather(*(run_in_worker(work) for _ in range(10)), to_thread.run_sync(work))
        assert limiter.borrowed_tokens == 0  # every token went back

    asyncio.run(main())
    assert most == 3


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_cancelled_caller_waits_for_its_thread_to_finish(release: threading.Event) -> None:
    finished: list[float] = []

    def transaction() -> str:
        release.wait(5)
        finished.append(time.monotonic())
        return "committed"

    async def main() -> None:
        task = asyncio.create_task(run_in_worker(transaction))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done()  # the thread still works: the caller waits for it
        task.cancel()  # cancelled again meanwhile: it still waits
        await asyncio.sleep(0.05)
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(finished) == 1  # its transaction ended before the caller went
        assert to_thread.current_default_thread_limiter().borrowed_tokens == 0

    asyncio.run(main())
