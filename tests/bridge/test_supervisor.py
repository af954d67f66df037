"""The bridge's supervisor: a thread that dies is restarted with backoff, counted and its error kept."""

from __future__ import annotations

import threading
import time

from device_bridge.supervisor import Supervisor


def test_a_dead_thread_is_restarted_with_backoff_and_reported() -> None:
    stop = threading.Event()
    supervisor = Supervisor(stop, backoff_base_s=0.2, backoff_max_s=1.0)
    starts: list[float] = []
    serving = threading.Event()

    def work() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 2:
            raise ValueError(f"the claim answer was not JSON (start {len(starts)})")
        serving.set()
        stop.wait()

    slot = supervisor.add("device-test", work)
    supervisor.start_all()
    deadline = time.monotonic() + 10
    while not serving.is_set():
        assert time.monotonic() < deadline, slot.health()
        supervisor.check()
        time.sleep(0.02)
    health = slot.health()
    assert health["restarts"] == 2
    assert health["lastError"] == "ValueError: the claim answer was not JSON (start 2)"
    assert health["lastErrorAt"] is not None
    assert health["alive"] is True
    # Backoff: each restart waited at least half its step (0.2 s, then 0.4 s, with jitter above).
    assert starts[1] - starts[0] >= 0.1
    assert starts[2] - starts[1] >= 0.2

    stop.set()
    supervisor.join(5)
    assert not slot.alive
    supervisor.check()  # stopping: nothing is restarted
    assert not slot.alive
    assert slot.restarts == 2


def test_a_thread_that_returns_while_the_bridge_runs_counts_as_dead() -> None:
    stop = threading.Event()
    supervisor = Supervisor(stop, backoff_base_s=0.05, backoff_max_s=0.1)
    runs: list[int] = []
    slot = supervisor.add("uploader", lambda: runs.append(1))
    supervisor.start_all()
    deadline = time.monotonic() + 10
    while len(runs) < 2:
        assert time.monotonic() < deadline
        supervisor.check()
        time.sleep(0.02)
    assert slot.health()["lastError"] == "the thread returned while the bridge was not stopping"
    stop.set()
