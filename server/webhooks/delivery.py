"""Delivering webhooks: the background job that sends what is due, with retries and backoff.

Every server process runs `deliver_due` every `webhook_poll_s` seconds. A delivery is taken by
a conditional UPDATE that sets its lease (`lease_until`): of several processes looking at once,
one gets each delivery. The attempt then runs outside any transaction (an endpoint may take
seconds to answer), and its outcome is written in a second, short one:

* a 2xx answer → `succeeded`;
* anything else (another status, a timeout, a refused connection, a refused address) → the
  next attempt `webhook_retry_base_s * 2^(n-1)` seconds later (at most `webhook_retry_max_s`,
  with ±10 % jitter so that a fleet of failures does not come back at once), or `failed` after
  `webhook_max_attempts`.

All of it lives in the database, so a restart loses nothing: a delivery taken by a process that
died is taken again once its lease runs out. Delivery is therefore at least once (a process that
dies after the endpoint answered, before writing so, sends again); receivers deduplicate on
`webhook-id`, which every attempt of a delivery shares.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow
from server.outgoing import GuardedTransport, RefusedTarget
from server.settings import Settings
from server.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from server.webhooks.signing import signed_headers

BATCH_SIZE = 50
EXCERPT_CHARS = 1000
MAX_READ_BYTES = 64 * 1024
USER_AGENT = "phoneflow-webhooks/1"
_log = logging.getLogger("phoneflow.webhooks")


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt got: a status code and the start of the body, or an error in words."""

    status_code: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first)."""
    base = min(settings.webhook_retry_base_s * 2.0 ** (attempt - 1), settings.webhook_retry_max_s)
    jitter = (rng or random).uniform(-0.1, 0.1)
    return float(base * (1 + jitter))


def send(url: str, secret: str, message_id: str, body: str, settings: Settings) -> AttemptResult:
    """One signed POST of a delivery's `body` to `url`; never raises for the endpoint's sake.

    The request goes only to addresses that were checked (`server.outgoing.GuardedTransport`: the
    next one when one refuses the connection, as a client connecting by name does), with the URL's
    own host in `Host` and, over https, in the TLS server name (the certificate is checked against it)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        why = f"not sent: {url!r} is not a URL ({exc}); give an http(s) URL"
        return AttemptResult(None, None, why, elapsed())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(secret, message_id, body, utcnow()),
    }
    transport = GuardedTransport(settings.webhook_allow_private_targets)
    try:
        with httpx.Client(
            transport=transport, timeout=settings.webhook_timeout_s, follow_redirects=False
        ) as client:
            with client.stream("POST", target, content=body.encode(), headers=headers) as response:
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) >= MAX_READ_BYTES:
                        break
                excerpt = data.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
                return AttemptResult(response.status_code, excerpt, None, elapsed())
    except RefusedTarget as exc:
        return AttemptResult(None, None, str(exc), elapsed())
    except httpx.TimeoutException:
        return AttemptResult(None, None, f"no answer within {settings.webhook_timeout_s:g} s", elapsed())
    except httpx.HTTPError as exc:
        return AttemptResult(None, None, f"{type(exc).__name__}: {exc}", elapsed())


def _claim(session_factory: sessionmaker[Session], delivery_id: str, now: datetime, lease_s: float) -> bool:
    """Take a due delivery for this process (one process wins); True when it is ours."""
    with session_factory.begin() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            )
            .values(lease_until=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _record(
    session_factory: sessionmaker[Session],
    delivery_id: str,
    result: AttemptResult,
    attempted_at: datetime,
    settings: Settings,
) -> None:
    """Write an attempt and what it means for the delivery (done, or when to try again)."""
    with session_factory.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None:  # its endpoint was deleted meanwhile
            return
        delivery.attempts += 1
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                started_at=attempted_at,
                duration_ms=result.duration_ms,
                status_code=result.status_code,
                response_excerpt=result.excerpt,
                error=result.error,
            )
        )
        delivery.last_attempt_at = attempted_at
        delivery.last_status_code = result.status_code
        delivery.last_response = result.excerpt
        delivery.last_error = result.error
        delivery.lease_until = None
        now = utcnow()
        if result.ok:
            delivery.status = DeliveryStatus.SUCCEEDED.value
            delivery.next_attempt_at = None
            delivery.completed_at = now
            return
        delivery.round_failures += 1
        if delivery.round_failures >= settings.webhook_max_attempts:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.next_attempt_at = None
            delivery.completed_at = now
            _log.warning(
                "webhook delivery %s failed for good after %d attempts", delivery.id, delivery.attempts
            )
            return
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.round_failures, settings))


def _attempt(session_factory: sessionmaker[Session], delivery_id: str, settings: Settings) -> bool:
    """Send one delivery this process holds and record the outcome; True when it succeeded."""
    with session_factory() as session:
        row = session.execute(
            select(WebhookEndpoint.url, WebhookEndpoint.secret, WebhookDelivery.body)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        ).first()
        session.rollback()
    if row is None:
        return False
    attempted_at = utcnow()
    result = send(row.url, row.secret, delivery_id, row.body, settings)
    _record(session_factory, delivery_id, result, attempted_at, settings)
    return result.ok


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass of the job did."""

    succeeded: int = 0
    failed_attempts: int = 0


def deliver_due(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Send every delivery that is due (a batch at a time, a few at once), each by one process."""
    succeeded = failed = 0
    lease_s = settings.webhook_timeout_s * 2 + 30
    with ThreadPoolExecutor(max_workers=settings.webhook_concurrency, thread_name_prefix="webhook") as pool:
        while not should_stop():
            moment = now or utcnow()
            with session_factory() as session:
                due = list(
                    session.scalars(
                        select(WebhookDelivery.id)
                        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                        .where(
                            and_(
                                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                                WebhookDelivery.next_attempt_at <= moment,
                                or_(
                                    WebhookDelivery.lease_until.is_(None),
                                    WebhookDelivery.lease_until < moment,
                                ),
                                WebhookEndpoint.enabled.is_(True),
                            )
                        )
                        .order_by(WebhookDelivery.next_attempt_at)
                        .limit(BATCH_SIZE)
                    )
                )
                session.rollback()
            mine = [
                delivery_id for delivery_id in due if _claim(session_factory, delivery_id, moment, lease_s)
            ]
            outcomes = list(pool.map(lambda d: _attempt(session_factory, d, settings), mine))
            succeeded += sum(outcomes)
            failed += len(outcomes) - sum(outcomes)
            if len(due) < BATCH_SIZE:
                break
    return DeliveryReport(succeeded, failed)
