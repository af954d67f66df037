"""`run.updated` over SSE: `GET /api/v1/events`.

Every change to a run writes a `RunEvent` row in the changing transaction; the row's id is
the SSE `id:`. One `RunEventHub` per server process tails that table and fans new rows out
to the subscribers of each account:

* after a commit in this process, `notify()` (registered with `after_commit`) wakes the tail
  at once, so the event leaves within milliseconds of the commit — never before it;
* on PostgreSQL the writing transaction also sends a `NOTIFY` (delivered at commit) that
  every process's hub `LISTEN`s for, so events committed by other server processes arrive
  at once too (see pg_notify.py);
* every `POLL_INTERVAL_S` the tail looks anyway: other processes on SQLite, lost wake-ups; on
  PostgreSQL, where every commit's NOTIFY wakes it (and the listener wakes it again whenever it
  reconnects), only every `LISTENING_POLL_INTERVAL_S`: an idle server process then spends next
  to nothing on its tail (4 processes polling twice a second were ~25 ms of CPU a second);
* a reconnecting client's `Last-Event-ID` is replayed from the table (sse-starlette keeps no
  history), then the live tail continues without gaps or repeats;
* one query per wake-up serves every subscriber, however many there are;
* a row saying a run is now `queued` also wakes the bridges' wake-up long polls of the phones
  that may take it (wakeup.py): a run queued on any process reaches an idle phone at once;
* a process where only wake-up polls listen (no SSE subscriber: every process of a fleet's
  server, as idle phones wait while others work) reads its tail only when a NOTIFY says a run was
  queued (pg_notify.QUEUED), and then reads the payloads of queued rows alone: every step of
  every run used to make every process read every row (at 1 phone and 8 idle ones, the three
  processes not serving the phone spent ~18 ms of CPU each per 10-step run on it).

A subscriber that cannot keep up is disconnected rather than buffered without bound; its
client reconnects with `Last-Event-ID` and catches up from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple, TypeVar

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from server.auth import CurrentAccount, current_account
from server.errors import AppError, FieldProblem, ValidationFailed
from server.metrics import SSE_SUBSCRIBERS
from server.runs.event_order import EventOrder, Snapshot
from server.runs.models import RunEvent
from server.runs.pg_notify import Listener
from server.runs.sql import reader_engine
from server.runs.wakeup_waiters import QueuedWaiters

POLL_INTERVAL_S = 0.5
LISTENING_POLL_INTERVAL_S = 5.0
# While the listener hears every commit and has heard of none, the tail reads only this often.
QUIET_POLL_INTERVAL_S = 60.0
PING_INTERVAL_S = 15.0
FETCH_BATCH = 1000
# While a gap in the ids holds events back, the tail looks again this often: a transaction that
# rolled back sends no NOTIFY. At start it waits this long at most for transactions in flight.
GAP_POLL_INTERVAL_S = 0.01
START_WAIT_S = 2.0
REPLAY_LIMIT = 10_000
SUBSCRIBER_BUFFER = 10_000
_log = logging.getLogger("phoneflow.runs.events")
RUN_UPDATED = "run.updated"
# A step's screen reached the server: `data` names the run, the frame's step and its URL.
RUN_FRAME = "run.frame"
# The step a bridge is about to start (the step in flight): `data` {"id", "seq", "nodeId", "startedAt"}.
RUN_STEP = "run.step"


# Rows after an id, in id order, and the snapshot they were read in: one statement, so that the
# snapshot says which transactions may still hold an id missing among them (event_order.py).
# `:everything` false: the payload of queued rows only (what wake-up polls read), the others' is NULL.
_PG_TAIL = text(
    "SELECT CAST(s.snap AS text) AS snapshot, e.id, e.account_id, e.payload, e.event "
    "FROM (SELECT pg_current_snapshot() AS snap) AS s LEFT JOIN LATERAL ("
    "SELECT id, account_id, CASE WHEN :everything OR (event IS NULL AND payload->>'status' = 'queued') "
    "THEN payload END AS payload, event FROM run_events WHERE id > :after ORDER BY id LIMIT :limit"
    ") AS e ON true ORDER BY e.id"
)
_SNAPSHOT = text("SELECT CAST(pg_current_snapshot() AS text)")


class _TailRow(NamedTuple):
    id: int
    account_id: str
    payload: Any
    event: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event ready to send: its id, account and SSE frame (encoded once for all subscribers)."""

    id: int
    account_id: str
    frame: bytes


def _delivery(event_id: int, account_id: str, payload: Any, event: str | None = None) -> Delivery:
    data = json.dumps(payload, separators=(",", ":"))
    frame = ServerSentEvent(data=data, event=event or RUN_UPDATED, id=str(event_id)).encode()
    return Delivery(event_id, account_id, frame)


_CLOSE = Delivery(-1, "", b"")


@dataclass(eq=False)
class Subscription:
    """One connected client's pending deliveries, and the future its stream waits on when there are none.

    A deque and a future rather than an `asyncio.Queue`: at 1,000 subscribers each event is 1,000
    puts, and the queue's bookkeeping (size checks, its unfinished-task event) cost more than
    waking the stream.
    """

    account_id: str
    pending: deque[Delivery] = field(default_factory=deque)
    waiter: asyncio.Future[None] | None = None

    def push(self, delivery: Delivery) -> bool:
        """Add a delivery and wake the stream; False (nothing added) when `SUBSCRIBER_BUFFER` are pending."""
        if len(self.pending) >= SUBSCRIBER_BUFFER:
            return False
        self.pending.append(delivery)
        self._wake()
        return True

    def close(self) -> None:
        """End the stream after what is pending (the client resumes with Last-Event-ID)."""
        self.pending.append(_CLOSE)
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, timeout_s: float | None = None) -> list[Delivery]:
        """Everything pending, oldest first; waits until there is something (or `timeout_s`: [])."""
        while not self.pending:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout_s)
            except TimeoutError:
                return []
            finally:
                self.waiter = None
        taken = list(self.pending)
        self.pending.clear()
        return taken


class RunEventHub:
    """Tails `run_events` and fans rows out to subscriptions by account (one per process)."""

    def __init__(self, engine: Engine) -> None:
        self._app_engine = engine
        self._engine = reader_engine(engine)
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._draining: asyncio.Lock | None = None  # one read at a time: the tail's, or a catch-up
        # The tail's start while it is under way: the subscribers that come meanwhile wait for the same
        # start (each starting one would take a connection and leave a second tail running).
        self._starting: asyncio.Task[None] | None = None
        self._drained_at = 0.0
        self._order: EventOrder[_TailRow] = EventOrder(0)
        self._listener: Listener | None = None
        # The listener heard of rows since the tail's last read (they are read when someone wants them).
        self._unread = False
        # The tail's own connection, kept between reads and in autocommit: a read is then one
        # round trip (no pool checkout and ping, no BEGIN and ROLLBACK), every process, every event.
        self._tail_connection: Connection | None = None
        # Runs becoming `queued` are also handed to the bridges' wake-up long polls (wakeup.py).
        self.queued_waiters = QueuedWaiters()
        self.stopping = False  # the server stops: streams end, polls are answered (`stop_streams`)

    def notify(self) -> None:
        """Wake the tail now: called after a commit in this process, from any thread.

        While the listener hears every commit and only wake-up polls listen here, the commit's own
        NOTIFY wakes the tail if it queued a run (`_heard`): this wake-up would be a read for nothing."""
        listener = self._listener
        if listener is not None and listener.listening and self._only_waiters():
            return
        self._wake_tail()

    def _heard(self, notice: str | None) -> None:
        """A NOTIFY arrived (the listener's thread): wake the tail when someone here wants what it says."""
        self._unread = True
        if self._subscriptions or self._order.waiting:
            self._wake_tail()
        elif notice != "" and self.queued_waiters.count():  # a run was queued, or unknown (None)
            self._wake_tail()

    def read_unread(self) -> None:
        """Wake the tail if the listener heard of rows it has not read: a wake-up poll that just began
        to listen may have missed, by a moment, the NOTIFY of its run (nobody listened then)."""
        if self._unread:
            self._wake_tail()

    def _quiet(self) -> bool:
        """The listener hears every commit and heard of none since the last read, no gap waits to be
        settled, and the last read is less than `QUIET_POLL_INTERVAL_S` old: a read would find nothing."""
        listener = self._listener
        return (
            listener is not None
            and listener.listening
            and not self._unread
            and not self._order.waiting
            and time.monotonic() - self._drained_at < QUIET_POLL_INTERVAL_S
        )

    def _only_waiters(self) -> bool:
        """No subscriber here and no gap to settle: only wake-up polls (if any) want rows."""
        return not self._subscriptions and not self._order.waiting

    def _wake_tail(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is listening
            loop.call_soon_threadsafe(wake.set)

    async def subscribe(self, account_id: str) -> Subscription:
        """A new subscription; the tail starts with the first one."""
        await self._ensure_running()
        # Rows the tail left unread while nobody here listened are gone past first: a new subscriber
        # gets what commits from now on, as always.
        await self.catch_up()
        subscription = Subscription(account_id)
        self._subscriptions.setdefault(account_id, set()).add(subscription)
        SSE_SUBSCRIBERS.inc()
        if self.stopping:
            subscription.close()
        return subscription

    def stop_streams(self) -> None:
        """The server stops: end every stream (its client resumes elsewhere with Last-Event-ID) and
        answer every wake-up poll (no run: the bridge polls again), rather than hold the stop."""
        self.stopping = True
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                subscription.close()
        self.queued_waiters.wake_all()

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.account_id)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            SSE_SUBSCRIBERS.dec()
            if not subscribers:
                del self._subscriptions[subscription.account_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    async def close(self) -> None:
        """Stop the tail (at shutdown)."""
        if self._listener is not None:
            await run_in_threadpool(self._listener.stop)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._close_tail_connection()
        if self._engine is not self._app_engine:
            self._engine.dispose()

    @property
    def last_event_id(self) -> int:
        """The id of the last `run_events` row the tail handed out (or went past)."""
        return self._order.position

    async def ensure_running(self) -> None:
        """Start the tail (and, on PostgreSQL, its listener) in this loop if it is not running."""
        await self._ensure_running()

    async def catch_up(self) -> None:
        """Read what the tail has not read yet (it leaves rows unread while nobody here listens)."""
        assert self._draining is not None
        async with self._draining:
            await self._drain()

    def _nobody_listens(self) -> bool:
        """No subscriber and no wake-up poll in this process: nobody to hand rows to."""
        return not self._subscriptions and self.queued_waiters.count() == 0

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        starting = self._starting
        if starting is None or starting.get_loop() is not loop:
            starting = self._starting = loop.create_task(self._start_tail(loop), name="run-event-tail-start")
        # Shielded: a subscriber that goes away meanwhile does not cancel the start the others wait for.
        await asyncio.shield(starting)

    async def _start_tail(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._loop = loop
            self._wake = asyncio.Event()
            self._draining = asyncio.Lock()
            self._order = await run_in_threadpool(self._start)
            self._task = loop.create_task(self._tail(), name="run-event-tail")
            if self._listener is None and self._app_engine.dialect.name == "postgresql":
                self._listener = Listener(self._app_engine, self._heard)
                self._listener.start()
        finally:
            self._starting = None  # done, or failed: the next subscriber starts it again

    def _start(self) -> EventOrder[_TailRow]:
        """The tail's starting point: the newest visible id, once no transaction that may hold an id
        below it is still running (waited for at most `START_WAIT_S`)."""
        with self._engine.connect() as conn:
            newest = int(conn.execute(select(func.coalesce(func.max(RunEvent.id), 0))).scalar_one())
            if conn.dialect.name != "postgresql":
                return EventOrder(newest)
            first = Snapshot.parse(str(conn.execute(_SNAPSHOT).scalar_one()))
            deadline = time.monotonic() + START_WAIT_S
            while time.monotonic() < deadline:
                if not Snapshot.parse(str(conn.execute(_SNAPSHOT).scalar_one())).still_running(first.running):
                    break
                time.sleep(GAP_POLL_INTERVAL_S)
        return EventOrder(newest)

    def _fetch_after(self, last_id: int, everything: bool = True) -> tuple[list[_TailRow], Snapshot | None]:
        """Rows after `last_id` in id order and, on PostgreSQL, the snapshot they were read in. Not
        `everything`: on PostgreSQL only queued rows carry their payload (the others' is None)."""
        if self._tail_connection is None:
            self._tail_connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if self._tail_connection.dialect.name == "postgresql":
                result = self._tail_connection.execute(
                    _PG_TAIL, {"after": last_id, "limit": FETCH_BATCH, "everything": everything}
                )
                fetched = result.all()
                snapshot = Snapshot.parse(fetched[0].snapshot)
                rows = [
                    _TailRow(row.id, row.account_id, row.payload, row.event)
                    for row in fetched
                    if row.id is not None
                ]
                return rows, snapshot
            plain = self._tail_connection.execute(
                select(RunEvent.id, RunEvent.account_id, RunEvent.payload, RunEvent.event)
                .where(RunEvent.id > last_id)
                .order_by(RunEvent.id)
                .limit(FETCH_BATCH)
            )
            return [_TailRow(row.id, row.account_id, row.payload, row.event) for row in plain], None
        except DBAPIError:
            self._close_tail_connection()  # the next read connects afresh
            raise

    def _close_tail_connection(self) -> None:
        connection, self._tail_connection = self._tail_connection, None
        if connection is not None:
            with contextlib.suppress(DBAPIError):
                connection.close()

    async def _tail(self) -> None:
        assert self._wake is not None
        failed = False
        while True:
            # After a failed read the next round comes soon: what was committed meanwhile may have
            # been announced already (its NOTIFY woke the read that failed).
            wait_s = POLL_INTERVAL_S if failed else self._poll_interval_s()
            if self._order.waiting:
                wait_s = GAP_POLL_INTERVAL_S  # a rolled-back transaction sends no NOTIFY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
            woken = self._wake.is_set()
            self._wake.clear()
            if not woken and not failed and self._quiet():
                continue  # nothing committed since the last read: the listener would have heard of it
            if (
                not failed
                and not self._order.waiting
                and self._nobody_listens()
                and time.monotonic() - self._drained_at < self._poll_interval_s()
            ):
                # Nobody here to hand rows to (every step of every run wakes every process): they
                # are read at the next wake-up with someone listening, a catch-up, or the next poll.
                continue
            try:
                await self.catch_up()
                failed = False
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; the next round retries
                failed = True
                _log.exception("reading run events failed; retrying")

    def _poll_interval_s(self) -> float:
        return POLL_INTERVAL_S if self._listener is None else LISTENING_POLL_INTERVAL_S

    async def _drain(self) -> None:
        self._drained_at = time.monotonic()
        self._unread = False
        while True:
            # Subscribers are added after a drain (subscribe catches up first): none joins meanwhile.
            everything = bool(self._subscriptions)
            fetched, snapshot = await run_in_threadpool(self._fetch_after, self._order.position, everything)
            for event_id, account_id, payload, event in self._order.advance(fetched, snapshot):
                if event is None and isinstance(payload, dict) and payload.get("status") == "queued":
                    self.queued_waiters.wake(account_id, payload)
                subscribers = self._subscriptions.get(account_id)
                if not subscribers:
                    continue
                delivery = _delivery(event_id, account_id, payload, event)
                slow = [subscription for subscription in subscribers if not subscription.push(delivery)]
                for subscription in slow:
                    # Too slow to keep up: end its stream; the client resumes with Last-Event-ID.
                    self.unsubscribe(subscription)
                    subscription.close()
            if len(fetched) < FETCH_BATCH or self._order.waiting:
                return

    def replay(self, account_id: str, after_id: int) -> list[Delivery]:
        """The account's events after `after_id`, oldest first (for `Last-Event-ID`), up to where the
        running tail has got: what lies beyond may still have a gap below it, and comes live."""
        query = select(RunEvent.id, RunEvent.payload, RunEvent.event).where(
            RunEvent.account_id == account_id, RunEvent.id > after_id
        )
        if self._task is not None:
            query = query.where(RunEvent.id <= self._order.position)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(RunEvent.id).limit(REPLAY_LIMIT))
            return [_delivery(row.id, account_id, row.payload, row.event) for row in rows]


_Item = TypeVar("_Item")


class RunEventsResponse(EventSourceResponse):
    """sse-starlette's response for an `event_stream`: its headers go out once the stream has subscribed,
    and no cancel scope goes around each send when there is no send timeout.

    The subscription is made when the response is sent, not in the endpoint: the endpoint's database
    session (its authentication) is closed by then. Subscribing in the endpoint held it while the
    subscription (the first of a process also starts the tail, which needs a connection of its own)
    waited, and many streams opened at once used up the pool (503s). The headers still wait for it,
    so a client that acts when they arrive (reads the run, then listens) cannot miss what commits in
    between. A HEAD opens no stream and subscribes to nothing.

    The scope (`anyio.move_on_after(None)`) does nothing, but entering and leaving it is most of what
    one send costs; at 1,000 subscribers every event is 1,000 sends, so it was most of the time from a
    commit to the last subscriber's receipt.

    The stream is always ended properly (its last chunk sent). When the server stops, sse-starlette
    cancels a stream still open without ending it (the client saw a cut connection, the server logged
    "ASGI callable returned without completing response"). The hub ends the streams when the server
    stops (`RunEventHub.stop_streams`); should sse-starlette's cancel come first, the end is sent here.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streams = scope["type"] == "http" and scope["method"].upper() != "HEAD"
        if streams:
            self.body_iterator = await subscribed_stream(self.body_iterator)
        await super().__call__(scope, receive, send)
        # `active` is cleared when the stream ended (its end sent) or its client went away; still set,
        # the stream was cancelled (sse-starlette's reaction to the server stopping).
        if streams and self.active:
            self.active = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is None:
            await send(message)
            return
        await super()._send_with_timeout(send, message)


def get_hub(app: FastAPI) -> RunEventHub:
    """The app's hub, made on first use."""
    hub: RunEventHub | None = getattr(app.state, "run_event_hub", None)
    if hub is None:
        hub = RunEventHub(app.state.engine)
        app.state.run_event_hub = hub
    return hub


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub = get_hub(app)
    try:
        yield
    finally:
        await hub.close()


router = APIRouter(tags=["events"], lifespan=_lifespan)


# Event ids are 64-bit; a larger number cannot be one (and would overflow the query's parameter).
MAX_EVENT_ID = 2**63 - 1


def parse_last_event_id(value: str | None) -> int | None:
    """The event id a reconnecting client sends (`Last-Event-ID`); None for none, 422 when not an id."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    parsed = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else -1
    if not 0 <= parsed <= MAX_EVENT_ID:
        raise ValidationFailed(
            [
                FieldProblem(
                    "header:Last-Event-ID",
                    f"'{value}' is not an event id of this stream",
                    "send the id: of the last run.updated event you received, or no header to start now",
                )
            ]
        )
    return parsed


async def event_stream(
    hub: RunEventHub,
    account_id: str,
    after_id: int | None,
    still_allowed: Callable[[], bool] | None = None,
    recheck_s: float = PING_INTERVAL_S,
) -> AsyncIterator[ServerSentEvent | bytes]:
    """The SSE body for one subscriber: a `subscribed` comment, the replay after `after_id`, then live
    events. Give it to `EventSourceResponse` (the dashboard does too).

    `still_allowed` (run in a worker thread) is asked every `recheck_s` and before events go out
    after a quiet spell: once the token or session that opened the stream is revoked, it ends."""
    subscription = await hub.subscribe(account_id)
    try:
        # Tells the client the subscription is live: whatever commits from now on reaches it.
        yield ServerSentEvent(comment="subscribed")
        last = -1
        if after_id is not None:
            # Subscribed first, replayed second: anything committed in between is in both,
            # and the id check below drops the second copy.
            replayed = await run_in_threadpool(hub.replay, subscription.account_id, after_id)
            if replayed:
                last = replayed[-1].id
                yield b"".join(delivery.frame for delivery in replayed)
        checked_at = time.monotonic()
        while True:
            taken = await subscription.take(recheck_s if still_allowed is not None else None)
            if still_allowed is not None and time.monotonic() - checked_at >= recheck_s:
                if not await run_in_threadpool(still_allowed):
                    return
                checked_at = time.monotonic()
            # Send what has piled up in one write: under bursts that is most of the cost.
            frames: list[bytes] = []
            for delivery in taken:
                if delivery is _CLOSE:
                    if frames:
                        yield b"".join(frames)
                    return
                if delivery.id > last:
                    last = delivery.id
                    frames.append(delivery.frame)
            if frames:
                yield b"".join(frames)
    finally:
        hub.unsubscribe(subscription)


_stream = event_stream  # the name the dashboard imported first


async def subscribed_stream(stream: AsyncIterable[_Item]) -> AsyncIterator[_Item]:
    """`stream` (an `event_stream`) once it has subscribed (`RunEventsResponse` awaits it before its
    headers go out)."""
    items = aiter(stream)
    first = await anext(items)  # the subscription, and its `subscribed` comment

    async def chained() -> AsyncIterator[_Item]:
        yield first
        async for item in items:
            yield item

    return chained()


@router.get(
    "/events",
    summary="run.updated over server-sent events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless event stream"}},
)
async def events(
    request: Request,
    account: CurrentAccount,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Each committed change to one of the account's runs as `event: run.updated`, `id:` a sequence,
    `data:` the run without its trace. Send `Last-Event-ID` to get what you missed."""
    after_id = parse_last_event_id(last_event_id)
    hub = get_hub(request.app)
    ping = float(getattr(request.app.state, "sse_ping_s", PING_INTERVAL_S))
    stream = event_stream(hub, account.id, after_id, lambda: _token_still_valid(request), ping)
    return RunEventsResponse(stream, ping=ping, headers={"Cache-Control": "no-store"})


def _token_still_valid(request: Request) -> bool:
    """Whether the credentials that opened this stream still authorise it (not revoked, not expired)."""
    credentials = None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
    with request.app.state.session_factory() as session:
        try:
            current_account(request, session, credentials)
        except AppError:
            return False
        finally:
            session.rollback()
    return True
