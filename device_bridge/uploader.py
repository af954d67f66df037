"""Sends the outbox to the server: reports in batches to `runs.report`, then artifacts.

Oldest first; at most 100 runs a batch; a failed send backs off exponentially with jitter
and tries again, forever (the outbox is durable, so waiting costs nothing but time).
A row leaves the outbox only after the server answered for it. One run the server cannot take
never holds up the others: a batch refused as a whole (400, 413, 422) is halved until the run
at fault is alone, and so is a batch the server keeps failing on (500 three times in a row);
that run is kept aside as rejected, with the server's words, and the rest goes up.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple

import httpx

from device_bridge.errors import BridgeConfigError, ServerError, ServerRefusedError, ServerUnreachableError
from device_bridge.kept_http import KeptConnection, kept_connection, multipart_form
from device_bridge.outbox import Outbox, QueuedReport, ReportResult, Settlement

log = logging.getLogger(__name__)

REPORT_PATH = "/api/v1/runs.report"
# Where a run's artifacts go (H6's server/runs/endpoints.py): multipart, one file a request.
ARTIFACT_PATH = "/api/v1/runs/{run_id}/artifacts"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where and as whom a device's reports are sent."""

    server_url: str
    token: str


CredentialsFor = Callable[[str], Credentials | None]
# Called with (run id, the server's answer for it) for every settled run: the agent reads
# `cancelRequested` there, the quickest way a device hears that a moving run was cancelled.
AnswerHook = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the step is fixed, half random.

    The fixed half makes the wait grow for sure; the random half spreads many bridges
    that lost the same server so they do not all come back in the same instant.
    """

    base_s: float = 0.5
    max_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        step = min(self.max_s, self.base_s * float(2 ** min(self.failures, 30)))
        self.failures += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.failures = 0


def is_server_fault(status_code: int) -> bool:
    """A 5xx that says the server broke on the request (500 and the like), not that it is away or busy
    (502, 503, 504: a proxy without a server, the database down or full; those pass with time)."""
    return status_code >= 500 and status_code not in (502, 503, 504)


class Answer(NamedTuple):
    """The server's answer to a runs.report request."""

    status_code: int
    content: bytes


def _reason(status_code: int) -> str:
    """The status's reason phrase (as httpx gives it), "" for a code without one."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


def problem_detail(response: httpx.Response) -> str:
    return problem_text(response.content, response.reason_phrase)


def problem_text(content: bytes, fallback: str) -> str:
    """What an error answer's body says (a problem document's title, detail and errors), briefly."""
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")[:300] or fallback
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
        errors = body.get("errors")
        if isinstance(errors, list):
            parts += [
                f"{e.get('pointer', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)
            ]
        if parts:
            return "; ".join(parts)
    return str(body)[:300]


class Uploader:
    """Moves queued reports and artifacts from an `Outbox` to the server."""

    def __init__(
        self,
        outbox: Outbox,
        credentials_for: CredentialsFor,
        *,
        client: httpx.Client | None = None,
        batch_size: int = 100,
        max_batch_bytes: int = 512 * 1024,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        on_answer: AnswerHook | None = None,
        poison_after: int = 3,
    ) -> None:
        if not 1 <= batch_size <= 100:
            raise BridgeConfigError(
                f"upload batch size {batch_size} is outside 1..100 (runs.report takes 1-100 runs)"
            )
        self.outbox = outbox
        self.credentials_for = credentials_for
        self.client = client or httpx.Client(timeout=timeout_s)
        self.timeout_s = timeout_s
        # Reports and artifacts (a frame a step) go over a kept connection per server (http.client:
        # httpx spent ~0.5 ms CPU a request), unless a client was given (then everything goes
        # through it) or a proxy is configured (then httpx, which honours it).
        self._kept: dict[str, KeptConnection | None] | None = None if client is not None else {}
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.backoff = backoff or Backoff()
        self.on_answer = on_answer
        self.poison_after = poison_after
        # How many times in a row the server failed (500-like) on exactly these outbox rows.
        self._server_faults: dict[tuple[int, ...], int] = {}

    # --- one step ----------------------------------------------------------------------

    def send_batch(self) -> int:
        """Send the oldest pending batch; returns how many rows the server settled (0: nothing to send).

        Raises `ServerUnreachableError` (try later) or `ServerRefusedError` (credentials).
        """
        batch = self.outbox.next_batch(self.batch_size, self.max_batch_bytes)
        if not batch:
            return 0
        return self._send(batch)

    def _post(self, batch: Sequence[QueuedReport]) -> Answer:
        creds = self._credentials(batch[0].device_id)
        # The rows' own JSON text (ASCII, escapes kept): a run holding text UTF-8 cannot carry
        # (a lone surrogate) still goes up, and the server refuses that run by its pointer.
        body = ('{"runs":[' + ",".join(row.body for row in batch) + "]}").encode("ascii", "backslashreplace")
        headers = {"Authorization": f"Bearer {creds.token}"}
        kept = self._kept_connection(creds.server_url)
        try:
            if kept is not None:
                return Answer(*kept.post(REPORT_PATH, body, headers, self.timeout_s))
            response = self.client.post(
                creds.server_url + REPORT_PATH,
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            return Answer(response.status_code, response.content)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            self.outbox.note_failure([row.seq for row in batch], f"{type(exc).__name__}: {exc}")
            raise ServerUnreachableError(f"runs.report at {creds.server_url} failed: {exc}") from exc

    def _send(self, batch: Sequence[QueuedReport], *, isolating: bool = False) -> int:
        return self._handle(batch, self._post(batch), isolating=isolating)

    def _handle(self, batch: Sequence[QueuedReport], response: Answer, *, isolating: bool) -> int:
        seqs = [row.seq for row in batch]
        if response.status_code == 200:
            self._server_faults.pop(tuple(seqs), None)
            return self._settle(batch, response)
        detail = problem_text(response.content, _reason(response.status_code))
        error = f"HTTP {response.status_code} from runs.report: {detail}"
        if response.status_code in (400, 413, 422):
            # The batch as a whole was refused (too big, or one run malformed): halve it until
            # the run at fault is alone, and only that one is marked rejected.
            if len(batch) > 1:
                half = len(batch) // 2
                return self._send(batch[:half], isolating=isolating) + self._send(
                    batch[half:], isolating=isolating
                )
            self.outbox.settle([Settlement(batch[0].seq, ReportResult.REJECTED, error)])
            return 1
        if is_server_fault(response.status_code):
            settled = self._after_server_fault(batch, error, isolating=isolating)
            if settled is not None:
                return settled
        self.outbox.note_failure(seqs, error)
        if response.status_code in (401, 403):
            raise ServerRefusedError(
                f"{error} (device {batch[0].device_id}): pair the device again if its token was revoked",
                response.status_code,
            )
        raise ServerUnreachableError(error)

    def _after_server_fault(
        self, batch: Sequence[QueuedReport], error: str, *, isolating: bool
    ) -> int | None:
        """A 500-like answer: None to retry later as usual, or the rows settled while isolating.

        One failure may pass (a bug hit by chance, a restart); the same batch failing
        `poison_after` times in a row is taken to hold a run the server cannot handle: the batch
        is halved until that run is alone, which is tried `poison_after` times more and then kept
        aside (rejected, with the server's words), so every other run still goes up.
        """
        key = tuple(row.seq for row in batch)
        if not isolating:
            self._server_faults[key] = self._server_faults.get(key, 0) + 1
            if self._server_faults[key] < self.poison_after:
                return None
            self._server_faults.pop(key, None)
            log.warning(
                "runs.report keeps failing (%s) for the same %d runs: looking for the cause",
                error,
                len(batch),
            )
        if len(batch) > 1:
            half = len(batch) // 2
            return self._send(batch[:half], isolating=True) + self._send(batch[half:], isolating=True)
        if isolating:
            for _ in range(self.poison_after - 1):
                retried = self._post_one_more(batch)
                if retried is not None:
                    return retried
        row = batch[0]
        reason = (
            f"the server failed {self.poison_after} times on this run alone ({error}); kept aside so "
            "the other runs could go up — report it with the server's log"
        )
        log.error("run %s kept aside: %s", row.run_id, reason)
        self.outbox.settle([Settlement(row.seq, ReportResult.REJECTED, reason)])
        return 1

    def _post_one_more(self, batch: Sequence[QueuedReport]) -> int | None:
        """Send a lone suspect run again: the rows settled, or None when the server failed again."""
        response = self._post(batch)
        if is_server_fault(response.status_code):
            return None
        return self._handle(batch, response, isolating=True)

    def _settle(self, batch: Sequence[QueuedReport], response: Answer) -> int:
        try:
            answers: list[dict[str, Any]] = json.loads(response.content)["runs"]
            by_id = {str(a["id"]): a for a in answers}
        except (ValueError, KeyError, TypeError) as exc:
            self.outbox.note_failure([r.seq for r in batch], f"unreadable runs.report answer: {exc}")
            raise ServerUnreachableError(f"runs.report answered 200 with an unreadable body: {exc}") from exc
        settlements: list[Settlement] = []
        missing: list[int] = []
        for row in batch:
            answer = by_id.get(row.run_id)
            try:
                result = ReportResult(str(answer["result"])) if answer else None
            except ValueError:
                result = None
            if answer is None or result is None:
                missing.append(row.seq)
                continue
            reason = answer.get("reason")
            settlements.append(Settlement(row.seq, result, str(reason) if reason else None))
            if self.on_answer is not None:
                self.on_answer(row.run_id, answer)
        self.outbox.settle(settlements)
        if missing:
            self.outbox.note_failure(missing, "the server's answer did not cover this run")
        return len(settlements)

    def send_artifact(self) -> bool:
        """Upload the oldest pending artifact whose run the server knows; False when there is none."""
        item = self.outbox.next_artifact()
        if item is None:
            return False
        creds = self._credentials(item.device_id)
        path = ARTIFACT_PATH.format(run_id=item.run_id)
        url = creds.server_url + path
        fields = {"name": item.name, "meta": item.meta} if item.meta else {"name": item.name}
        kept = self._kept_connection(creds.server_url)
        try:
            if kept is not None:
                body, content_type = multipart_form(fields, "file", (item.name, item.data, item.content_type))
                headers = {"Authorization": f"Bearer {creds.token}"}
                status, content = kept.post(path, body, headers, self.timeout_s, content_type)
                detail = problem_text(content, str(status))
            else:
                response = self.client.post(
                    url,
                    files={"file": (item.name, item.data, item.content_type)},
                    data=fields,
                    headers={"Authorization": f"Bearer {creds.token}"},
                )
                status, detail = response.status_code, problem_detail(response)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            self.outbox.artifact_failed(item.id, f"{type(exc).__name__}: {exc}")
            raise ServerUnreachableError(f"artifact upload to {url} failed: {exc}") from exc
        if status in (200, 201, 204):
            self.outbox.artifact_done(item.id)
            return True
        error = f"HTTP {status} from {url}: {detail}"
        if 400 <= status < 500 and status not in (401, 403, 408, 429):
            self.outbox.artifact_rejected(item.id, error)
            return True
        self.outbox.artifact_failed(item.id, error)
        raise ServerUnreachableError(error)

    def _kept_connection(self, server_url: str) -> KeptConnection | None:
        if self._kept is None:
            return None
        if server_url not in self._kept:
            self._kept[server_url] = kept_connection(server_url)
        return self._kept[server_url]

    def _credentials(self, device_id: str) -> Credentials:
        creds = self.credentials_for(device_id)
        if creds is None:
            raise BridgeConfigError(
                f"the outbox holds reports of device {device_id}, which is not paired here any more: "
                "pair it again (`phoneflow bridge pair`) so they can be sent"
            )
        return creds

    # --- loops -------------------------------------------------------------------------

    def upload_all(self) -> int:
        """Send everything pending, reports first: after each artifact the reports queued meanwhile
        go before the next one (a run's progress must not wait behind its frames). Returns rows
        settled; raises on failure."""
        total = 0
        while True:
            sent = self.send_batch()
            if sent:
                total += sent
                continue
            if not self.send_artifact():
                return total
            total += 1

    def run(self, stop: threading.Event, idle_wait_s: float = 1.0) -> None:
        """Upload until `stop` is set: wakes when the outbox changes, backs off while the server fails."""
        while not stop.is_set():
            try:
                sent = self.upload_all()
            except (ServerError, BridgeConfigError) as exc:
                delay = self.backoff.next_delay()
                log.warning("upload failed (%s); next try in %.1f s", exc, delay)
                stop.wait(delay)
                continue
            self.backoff.reset()
            if sent == 0:
                self.outbox.wait_for_change(idle_wait_s)

    def close(self) -> None:
        self.client.close()
        for kept in (self._kept or {}).values():
            if kept is not None:
                kept.close()
