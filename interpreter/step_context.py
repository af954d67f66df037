"""What a step function gets to work with, and how it reports a failure.

Step functions (in `interpreter.steps`) raise `StepFailure` with the words the trace
shows; the engine decides about retries, `optional` and the edge to follow. Every
sleep goes through `StepContext.sleep`, so that no wait runs past the run's time cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from interpreter.approvals import ApprovalGate
from interpreter.clock import Clock
from interpreter.denylist import PackageRules, denied_message
from interpreter.device import Artifact, Device
from interpreter.hierarchy import UiNode
from interpreter.run_log import RunLog, short_json
from interpreter.safe_regex import RegexBudget
from interpreter.trace import RunStatus

# How often an element wait looks at the screen again (clock seconds).
POLL_INTERVAL_S = 0.1
# The default element wait (docs/workflow-format.md) when neither the params nor the node set `timeoutMs`.
DEFAULT_ELEMENT_TIMEOUT_MS = 5000
DEFAULT_HTTP_TIMEOUT_MS = 10000


class StepFailure(Exception):
    """One attempt of a step failed; `message` goes into the trace as it is.

    `not_found` marks "the element is not there" (an `optional` node then ends
    `skipped`); `retryable=False` skips the remaining retries (a denylist refusal or a
    person's answer would not change); `edge` is the outcome key to follow.
    """

    def __init__(
        self,
        message: str,
        *,
        not_found: bool = False,
        retryable: bool = True,
        edge: str = "failed",
        output: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found
        self.retryable = retryable
        self.edge = edge
        self.output = output or {}


class RunDeadlineReached(Exception):
    """The run's time cap (`timeoutS`) was reached inside a step."""


@dataclass(slots=True)
class StepResult:
    """A step that worked: its output and, for branching kinds, the edge to follow."""

    output: dict[str, Any] = field(default_factory=dict)
    edge: str = "ok"


@dataclass(slots=True)
class StepContext:
    """The run's world as a step sees it (one per run, shared by every step)."""

    device: Device
    clock: Clock
    denylist: PackageRules
    approvals: ApprovalGate
    run_id: str
    scope: dict[str, Any]
    deadline: float
    time_limit_s: float
    on_status: Callable[[RunStatus], None] | None = None
    http_client: httpx.Client | None = None
    owns_http_client: bool = False
    artifacts: list[Artifact] = field(default_factory=list)
    # The run's execution log (`interpreter.run_log`): the decisions steps make (polls, conditions,
    # approvals, variables); the engine writes the rest.
    log: RunLog = field(default_factory=RunLog)
    # The element the step in progress last found on screen (what observers outline); the engine
    # clears it before each step.
    acted_on: UiNode | None = None
    # The CPU time the run's selector regexes may still take (`interpreter.safe_regex`).
    regex_budget: RegexBudget = field(default_factory=RegexBudget)
    # The last step that may have brought another app to the front: (node id, kind).
    last_moving_step: tuple[str, str] | None = None
    _screen_size: tuple[int, int] | None = None

    @property
    def vars(self) -> dict[str, Any]:
        variables: dict[str, Any] = self.scope["vars"]
        return variables

    def set_var(self, name: str, value: Any) -> None:
        """Set `vars.<name>` and write the change to the log."""
        self.vars[name] = value
        self.log.add("var-set", lambda: f"vars.{name} = {short_json(value)}", {"name": name, "value": value})

    def remaining_s(self) -> float:
        """Seconds left before the run's time cap."""
        return self.deadline - self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep on the run's clock, but never past the time cap (`RunDeadlineReached` there)."""
        remaining = self.deadline - self.clock.monotonic()
        if seconds >= remaining:
            self.clock.sleep(max(remaining, 0.0))
            raise RunDeadlineReached
        self.clock.sleep(seconds)

    def catch_up(self, real_s: float, since: float) -> None:
        """Let the run's clock count at least `real_s`, the real time a call took since clock time `since`.

        A `VirtualClock` does not move while an HTTP request really waits on the network; a real
        clock already has, and then this does nothing. Past the time cap: `RunDeadlineReached`.
        """
        behind = real_s - (self.clock.monotonic() - since)
        if behind > 0:
            self.sleep(behind)

    def check_deadline(self) -> None:
        if self.clock.monotonic() >= self.deadline:
            raise RunDeadlineReached

    def check_foreground(self, own_tap: bool = False) -> None:
        """Refuse (a `StepFailure` with the denylist words) when a denied app is on screen.

        The words name the matching entry and the step after which the app was found in front
        (`own_tap`: this step's own tap, as typeText's focusing tap).
        """
        if not self.denylist:
            return  # nothing to refuse: spare the phone a round trip
        package = self.device.foreground_package()
        entry = self.denylist.match(package) if package else None
        if package and entry is not None:
            if own_tap:
                came_by = "it came to the front when this step tapped its field"
            elif self.last_moving_step is not None:
                node_id, kind = self.last_moving_step
                came_by = f"it came to the front after step '{node_id}' ({kind})"
            else:
                came_by = "it was in front before any step of this run touched the phone"
            raise StepFailure(denied_message(package, entry, came_by), retryable=False)

    def screen_size(self) -> tuple[int, int]:
        # Asked once per run: on a phone it is a round trip, and it does not change mid-run.
        if self._screen_size is None:
            self._screen_size = self.device.screen_size()
        return self._screen_size

    def http(self) -> httpx.Client:
        if self.http_client is None:
            self.http_client = httpx.Client()
            self.owns_http_client = True
        return self.http_client

    def set_status(self, status: RunStatus) -> None:
        if self.on_status is not None:
            self.on_status(status)

    def close(self) -> None:
        if self.owns_http_client and self.http_client is not None:
            self.http_client.close()
            self.http_client = None
