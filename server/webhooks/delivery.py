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

import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow
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


# Never a webhook's target, whatever the settings: link-local addresses are where cloud metadata
# services answer (169.254.169.254, fd00:ec2::254 aside) and no webhook receiver lives; the
# unspecified address and multicast are no one host.
_NEVER_TARGETS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
    ipaddress.ip_network("224.0.0.0/4"),
    ipaddress.ip_network("ff00::/8"),
    ipaddress.ip_network("255.255.255.255/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
ALLOW_PRIVATE_HINT = "PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS=true lets webhooks reach such addresses"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def reached_addresses(address: IPAddress) -> list[IPAddress]:
    """`address` and the IPv4 address an IPv6 one carries on to (IPv4-mapped or -compatible, 6to4,
    Teredo, NAT64): `::ffff:127.0.0.1` reaches 127.0.0.1, whatever `is_global` says of the IPv6 form."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    embedded: IPAddress | None = address.ipv4_mapped or address.sixtofour
    if embedded is None and address.teredo is not None:
        embedded = address.teredo[1]
    if embedded is None and (address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1)):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return [address] if embedded is None else [address, embedded]


def address_refusal(host: str, address: IPAddress, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to `address` (what `host` resolved to), or None when it may."""
    for reached in reached_addresses(address):
        if any(reached in network for network in _NEVER_TARGETS):
            return (
                f"{host} resolves to {address}, a link-local, unspecified or multicast address "
                "(where cloud metadata services answer): webhooks never go there; "
                "give the receiver's public or private address instead"
            )
        if not allow_private and not reached.is_global:
            what = "a private, loopback or reserved address"
            return f"{host} resolves to {address}, {what}; {ALLOW_PRIVATE_HINT}"
    return None


def resolve_target(url: httpx.URL, allow_private: bool) -> tuple[list[IPAddress], str | None]:
    """The addresses to connect to for `url`, checked, or why there are none: (addresses, None) or
    ([], why).

    Every address the name resolves to is checked (one bad address refuses the URL), and the request
    then goes to those very addresses (the first that takes the connection): a name that resolves to
    a public address when checked and to a private one when connecting (DNS rebinding) cannot slip
    past the check."""
    host = url.host
    try:
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), url.port or 0, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return [], f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}"
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        refusal = address_refusal(host, address, allow_private)
        if refusal is not None:
            return [], refusal
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return [], f"cannot resolve {host}: no address"
    return addresses, None


def refused_address(url: str, allow_private: bool = False) -> str | None:
    """Why `url` may not be called (None when it may): private targets refused unless `allow_private`."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"{url!r} is not a URL: {exc}"
    return resolve_target(target, allow_private)[1]


def send(url: str, secret: str, message_id: str, body: str, settings: Settings) -> AttemptResult:
    """One signed POST of a delivery's `body` to `url`; never raises for the endpoint's sake.

    The request goes to the addresses that were checked (`resolve_target`; the next one when one
    refuses the connection, as a client connecting by name does), with the URL's own host in `Host`
    and, over https, in the TLS server name (the certificate is checked against it)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        why = f"not sent: {url!r} is not a URL ({exc}); give an http(s) URL"
        return AttemptResult(None, None, why, elapsed())
    addresses, refusal = resolve_target(target, settings.webhook_allow_private_targets)
    if not addresses:
        return AttemptResult(None, None, f"not sent: {refusal}", elapsed())
    headers = {
        "host": target.netloc.decode("ascii"),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(secret, message_id, body, utcnow()),
    }
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    try:
        with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
            for address in addresses:
                pinned = target.copy_with(host=str(address))
                try:
                    with client.stream(
                        "POST", pinned, content=body.encode(), headers=headers, extensions=extensions
                    ) as response:
                        data = b""
                        for chunk in response.iter_bytes():
                            data += chunk
                            if len(data) >= MAX_READ_BYTES:
                                break
                        excerpt = data.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
                        return AttemptResult(response.status_code, excerpt, None, elapsed())
                except httpx.ConnectError:
                    if address == addresses[-1]:
                        raise  # the name's last address refused too: that is the attempt's error
            raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
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
