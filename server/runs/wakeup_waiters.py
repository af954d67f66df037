"""The bridges' wake-up long polls waiting in one server process, and waking them (wakeup.py).

The run-event tail (events.py) calls `QueuedWaiters.wake` for every row saying a run is now
`queued`; the polls of that account whose device may take the run (its own device, or a device
carrying its tag) are woken, in whichever event loop they wait.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class QueuedWaiter:
    """One waiting poll: its device, the device's tags, and the event it waits on."""

    device_id: str
    tags: frozenset[str]
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by `wake`: a run this device may take was queued (the poll answers without looking again).
    run_queued: bool = False

    def may_take(self, payload: dict[str, Any]) -> bool:
        device = payload.get("deviceId")
        if device is not None:
            return bool(device == self.device_id)
        tag = payload.get("deviceTag")
        return isinstance(tag, str) and tag in self.tags


class QueuedWaiters:
    """The wake-up polls waiting in one process, by account."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: dict[str, set[QueuedWaiter]] = {}

    @contextmanager
    def listen(self, account_id: str, device_id: str, tags: frozenset[str]) -> Iterator[QueuedWaiter]:
        waiter = QueuedWaiter(device_id, tags, asyncio.get_running_loop())
        with self._lock:
            self._by_account.setdefault(account_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiting = self._by_account.get(account_id)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._by_account[account_id]

    def count(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._by_account.values())

    def wake_all(self) -> None:
        """Wake every poll (the server stops), without a run: each answers that none is queued."""
        with self._lock:
            waiting = [w for ws in self._by_account.values() for w in ws]
        for waiter in waiting:
            try:
                waiter.loop.call_soon_threadsafe(waiter.woken.set)
            except RuntimeError:  # that loop closed: nobody waits there any more
                pass

    def wake(self, account_id: str, payload: dict[str, Any]) -> None:
        """A run of `account_id` is now queued (`payload`: its summary): wake the polls that may take it."""
        with self._lock:
            waiting = [w for w in self._by_account.get(account_id, ()) if w.may_take(payload)]
        for waiter in waiting:
            waiter.run_queued = True
            try:
                waiter.loop.call_soon_threadsafe(waiter.woken.set)
            except RuntimeError:  # that loop closed: nobody waits there any more
                pass
