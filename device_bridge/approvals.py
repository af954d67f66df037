"""`ServerApprovals`: the engine's approval gate on a phone, answered by people through the server.

When a run reaches a `control.approval` node, the gate asks the server
(`POST /api/v1/devices/me/approvals`, idempotent by run, node and visit, so it is sent again
while the server cannot be reached) and then polls the approval
(`GET /api/v1/devices/me/approvals/{id}`) until someone answers, the node's timeout passes on
the engine's clock (`timeoutS` 0: never), or the run is cancelled (locally, or on the server: a
cancelled run's approval reads `cancelled`). One gate serves one run; it counts the visits of each node, so a
node in a loop asks again instead of reading its earlier answer. `on_asked` hears when the server
has the approval (the run's progress says `waiting_for_approval` from then on).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from device_bridge.errors import ServerRefusedError, ServerUnreachableError
from device_bridge.server_api import DeviceApi
from device_bridge.uploader import Backoff
from interpreter.approvals import ApprovalDecision, ApprovalResponse
from interpreter.clock import Clock
from interpreter.step_context import StepFailure

log = logging.getLogger(__name__)

CANCELLED_NOTE = "cancelled"
VIA = "server"


class ServerApprovals:
    """An `interpreter.approvals.ApprovalGate` for one run, over the device's server API."""

    def __init__(
        self,
        api: DeviceApi,
        *,
        should_cancel: Callable[[], bool] | None = None,
        poll_interval_s: float = 1.0,
        backoff: Backoff | None = None,
        on_asked: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.on_asked = on_asked
        self.should_cancel = should_cancel or (lambda: False)
        self.poll_interval_s = poll_interval_s
        self.backoff = backoff or Backoff(0.5, 5.0)
        self.visits: Counter[str] = Counter()

    def request(
        self,
        *,
        run_id: str,
        node_id: str,
        message: str,
        approvers: list[str],
        timeout_s: float,
        clock: Clock,
    ) -> ApprovalResponse:
        # timeoutS 0: no time limit (the server keeps the approval pending until someone answers).
        deadline = clock.monotonic() + timeout_s if timeout_s > 0 else math.inf
        self.visits[node_id] += 1
        visit = self.visits[node_id]
        approval = self._ask(run_id, node_id, visit, message, approvers, timeout_s, clock, deadline)
        if approval is None:  # cancelled, or the server stayed out of reach for the whole timeout
            return self._ended_locally(clock, deadline)
        if self.on_asked is not None:
            self.on_asked()
        approval_id = str(approval["id"])
        while True:
            answer = _answer(approval)
            if answer is not None:
                return answer
            if self.should_cancel():
                return ApprovalResponse(ApprovalDecision.REJECTED, note=CANCELLED_NOTE, via=VIA)
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                # One last look: an answer given in the last moment counts.
                last = self._poll(approval_id)
                final = _answer(last) if last is not None else None
                return final or ApprovalResponse(ApprovalDecision.TIMED_OUT)
            clock.sleep(min(self.poll_interval_s, remaining))
            polled = self._poll(approval_id)
            if polled is not None:
                approval = polled

    def _ask(
        self,
        run_id: str,
        node_id: str,
        visit: int,
        message: str,
        approvers: list[str],
        timeout_s: float,
        clock: Clock,
        deadline: float,
    ) -> dict[str, Any] | None:
        """The server's approval, sent again while the server cannot be reached; None when the run is
        cancelled or the timeout passes first."""
        self.backoff.reset()
        while not self.should_cancel():
            try:
                return self.api.request_approval(
                    run_id=run_id,
                    node_id=node_id,
                    visit=visit,
                    message=message,
                    approvers=approvers,
                    timeout_s=timeout_s,
                )
            except ServerUnreachableError as exc:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    return None
                delay = min(self.backoff.next_delay(), remaining)
                log.warning(
                    "run %s: approval %s not asked yet: %s; next try in %.1f s", run_id, node_id, exc, delay
                )
                clock.sleep(delay)
            except ServerRefusedError as exc:
                raise StepFailure(
                    f"the server refused the approval request: {exc}", retryable=False, edge="rejected"
                ) from exc
        return None

    def _poll(self, approval_id: str) -> dict[str, Any] | None:
        """The approval now, or None when the server cannot be reached (the caller polls again)."""
        try:
            return self.api.approval(approval_id)
        except ServerUnreachableError as exc:
            log.warning("approval %s: cannot poll the server: %s", approval_id, exc)
            return None
        except ServerRefusedError as exc:
            raise StepFailure(
                f"the server refused to say how approval {approval_id} was answered: {exc}",
                retryable=False,
                edge="rejected",
            ) from exc

    def _ended_locally(self, clock: Clock, deadline: float) -> ApprovalResponse:
        if self.should_cancel():
            return ApprovalResponse(ApprovalDecision.REJECTED, note=CANCELLED_NOTE, via=VIA)
        clock.sleep(deadline - clock.monotonic())
        return ApprovalResponse(ApprovalDecision.TIMED_OUT)


def _answer(approval: dict[str, Any]) -> ApprovalResponse | None:
    """The engine's answer for an approval the server has decided; None while it is pending."""
    status = approval.get("status")
    # Where the person answered (dashboard, api); a server that does not say: "server".
    via = approval.get("decidedVia") or VIA
    if status == "approved":
        return ApprovalResponse(
            ApprovalDecision.APPROVED, approval.get("decidedBy"), approval.get("note"), via
        )
    if status == "rejected":
        return ApprovalResponse(
            ApprovalDecision.REJECTED, approval.get("decidedBy"), approval.get("note"), via
        )
    if status == "cancelled":
        return ApprovalResponse(ApprovalDecision.REJECTED, note=CANCELLED_NOTE, via=VIA)
    if status == "timed_out":
        return ApprovalResponse(ApprovalDecision.TIMED_OUT)
    return None
