"""The bridge's wake-up long poll: `GET /devices/me/wakeup?wait=N` answers `{"runQueued": true}` as
soon as a run this device may take is queued, or `false` after N seconds.

A run queued for the device (or its tag) answers the poll as soon as the run-event tail reads
it, without looking into the database again. It claims nothing: the bridge then claims as always
(`POST /devices/me/claim`, whose conditional UPDATE hands a run out once), so a poll the bridge
abandons (it stopped, the connection broke) loses nothing. An idle bridge thus starts a queued
run at once instead of at its next claim poll.

The wake-up comes from the run-event tail of the process holding the poll (events.py): every
change to a run writes a `run_events` row, and a row saying a run is now `queued` wakes the polls
of the devices that may take it (wakeup_waiters.py). The tail hears of rows this process commits
at once, of other processes' rows at once on PostgreSQL (`LISTEN/NOTIFY`, pg_notify.py) and
within its poll interval on SQLite. The poll also looks into the database every
`claim_recheck_interval_s` (a retry whose backoff ends wakes nobody). Waiting holds no session.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.auth import _bearer, device_ref
from server.db import session_factory_from
from server.runs import service
from server.runs.events import get_hub

router = APIRouter(tags=["runs"])
# The longest a poll may be held (the bridge's HTTP timeout is longer).
MAX_WAIT_S = 30.0


class WakeupOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    run_queued: bool = Field(
        alias="runQueued", description="A run this device may take is queued: claim it now"
    )


@router.get(
    "/devices/me/wakeup",
    response_model=WakeupOut,
    summary="The bridge's wake-up long poll: answers as soon as a run this device may take is queued",
)
async def wakeup(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for a queued run")] = 0,
) -> WakeupOut:
    """Whether a run this device may claim is queued, waiting up to `wait` seconds for one."""
    hub = get_hub(request.app)
    factory = session_factory_from(request)
    recheck_s: float = request.app.state.settings.claim_recheck_interval_s

    def look() -> tuple[bool, tuple[str, str, frozenset[str]]]:
        with factory.begin() as session:
            device = device_ref(session, credentials)
            who = (device.account_id, device.id, frozenset(device.tags or ()))
            return service.has_claimable_run(session, device), who

    deadline = time.monotonic() + wait
    await hub.ensure_running()
    await hub.catch_up()  # rows left unread while nobody here listened: not news to this poll
    seen = hub.last_event_id
    queued, (account_id, device_id, tags) = await run_in_threadpool(look)
    if queued or wait <= 0:
        return WakeupOut(run_queued=queued)
    with hub.queued_waiters.listen(account_id, device_id, tags) as waiter:
        # The tail read rows before this waiter listened: one of them may be its run.
        if hub.last_event_id != seen:
            waiter.woken.set()
        hub.read_unread()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or hub.stopping or await request.is_disconnected():
                return WakeupOut(run_queued=False)
            try:
                await asyncio.wait_for(waiter.woken.wait(), timeout=min(recheck_s, remaining))
            except TimeoutError:
                pass
            waiter.woken.clear()
            if waiter.run_queued:
                # The tail saw the run queued for this device or its tag: answer at once, without a
                # database look; the claim decides who gets it (a phone that lost it claims nothing
                # and polls again).
                return WakeupOut(run_queued=True)
            queued, _ = await run_in_threadpool(look)
            if queued:
                return WakeupOut(run_queued=True)
