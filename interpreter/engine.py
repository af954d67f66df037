"""The engine: walks a workflow's graph on a `Device` and writes the trace.

    result = run_workflow(definition, device, inputs={"order": "A-1"}, clock=VirtualClock())

Rules (docs/workflow-format.md): start at `start`; after a node, follow the edge of its outcome
(`next` as a string is the ok/true/approved path; as a map, `ok`/`failed`,
`true`/`false`, `approved`/`rejected`); no way onward ends the run `success`, unless
the node failed, which ends it `failed` with the node's message. Before the first step
the run's inputs are checked against the workflow's `inputs` schema. The run stops
after 10,000 node executions (`failed`) or at its time cap `timeoutS` (`timeout`,
checked between steps and inside every wait). Before every step the engine takes the
step's start time and then asks its `RunControl` (`interpreter.control`) whether the step
may start: CANCEL ends the run `cancelled` before that step, so no step starts after a
cancel was decided; PAUSE holds the run there (`paused`, not counted toward `timeoutS`) until
the control answers otherwise. Step functions live in `interpreter.steps`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from interpreter.approvals import ApprovalGate, NoApprovals
from interpreter.clock import Clock, RealClock
from interpreter.control import ALWAYS_GO, CancelWhen, RunControl, RunHalted, StepDecision
from interpreter.denylist import Denylist, PackageRules
from interpreter.device import Artifact, Device
from interpreter.errors import DeviceError
from interpreter.observe import StepEnded, StepObserver, StepStarted
from interpreter.run_inputs import check_inputs, with_defaults
from interpreter.run_log import RunLog, bound_text, short_json
from interpreter.step_context import RunDeadlineReached, StepContext, StepFailure
from interpreter.steps import MOVING_KINDS, STEP_FUNCTIONS, UI_KINDS, StepFunction
from interpreter.template_reasons import unresolved_reason
from interpreter.templates import MAX_VALUE_CHARS, TemplateError, check_path, json_size, references, render
from interpreter.trace import Outcome, RunStatus, TraceEvent, iso_utc

MAX_NODE_EXECUTIONS = 10_000
# A trace event's message and the run's errorMessage are cut here (with how many more characters
# there were): a failure's words can quote a long text (the screen's texts after typing a long input,
# a selector's 1,000,000-character template), and the server refuses a report whose message is over
# 10,000 characters, so a phone could not report such a run at all (the simulator answered it whole).
MAX_MESSAGE_CHARS = 4_000
HARD_CAP_S = 600
DEFAULT_TIMEOUT_S = 600
MAX_PAUSE_S = 24 * 3600  # a run held paused this long ends `cancelled`
PAUSE_POLL_S = 0.5  # how often a paused run asks its control again

# The edges a `next` written as a plain string stands for.
_STRING_NEXT_EDGES = frozenset({"ok", "true", "approved"})


@dataclass(slots=True)
class RunResult:
    run_id: str
    status: RunStatus
    trace: list[TraceEvent]
    error_message: str | None
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    n_steps: int
    n_failed: int
    n_retries: int
    inputs: dict[str, Any] | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    # The execution log (`interpreter.run_log`): the engine's decisions, bounded; not part of the trace.
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The run fields of docs/workflow-format.md (the engine knows no workflow, device or trigger ids)."""
        data: dict[str, Any] = {"id": self.run_id, "status": self.status.value}
        if self.inputs is not None:
            data["inputs"] = self.inputs
        data |= {
            "startedAt": iso_utc(self.started_at),
            "endedAt": iso_utc(self.ended_at),
            "durationMs": self.duration_ms,
            "trace": [event.to_json() for event in self.trace],
            "errorMessage": self.error_message,
            "nSteps": self.n_steps,
            "nFailed": self.n_failed,
            "nRetries": self.n_retries,
            "log": self.log,
        }
        return data


@dataclass(slots=True)
class _Node:
    """A node prepared once per run, so that a step costs no lookups or copies."""

    id: str
    kind: str
    raw: Mapping[str, Any]
    params: Mapping[str, Any]
    has_templates: bool
    function: StepFunction | None
    next_id: str | None
    next_map: Mapping[str, str] | None
    retry_max: int
    retry_delay_s: float
    optional: bool
    enabled: bool
    checks_foreground: bool

    def follow(self, edge: str) -> str | None:
        if self.next_map is not None:
            return self.next_map.get(edge)
        return self.next_id if edge in _STRING_NEXT_EDGES else None


@dataclass(slots=True)
class _StepOutcome:
    event: TraceEvent
    edge: str
    deadline_reached: bool = False


class _UnrunnableWorkflow(Exception):
    """The definition's shape is too broken to walk (validation would have said so)."""


def run_workflow(
    definition: Mapping[str, Any],
    device: Device,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    clock: Clock | None = None,
    denylist: PackageRules | None = None,
    approvals: ApprovalGate | None = None,
    http: httpx.Client | None = None,
    on_event: Callable[[TraceEvent], None] | None = None,
    on_status: Callable[[RunStatus], None] | None = None,
    control: RunControl | None = None,
    should_cancel: Callable[[], bool] | None = None,
    observer: StepObserver | None = None,
) -> RunResult:
    """Run `definition` on `device` to the end and return the run with its trace.

    Never raises for what a workflow or a device does: those end in the trace and the
    run's status. `on_event` sees each trace event as it is written, `on_status` each
    status change (running, waiting_for_approval, running, ..., the final status).
    `control.before_step` is asked before every step; `should_cancel` is a shorthand for a
    control that cancels once it returns true (both may be given: it is asked first).
    `observer` sees every step start and end (`interpreter.observe`).
    """
    run_control = control or ALWAYS_GO
    if should_cancel is not None:
        run_control = CancelWhen(should_cancel, run_control)
    run = _Run(
        definition,
        device,
        inputs=dict(inputs) if inputs is not None else None,
        run_id=run_id or str(uuid.uuid4()),
        clock=clock or RealClock(),
        denylist=denylist if denylist is not None else Denylist(),
        approvals=approvals or NoApprovals(),
        http=http,
        on_event=on_event,
        on_status=on_status,
        control=run_control,
        observer=observer,
    )
    return run.execute()


class _Run:
    """One run of the engine (the state `run_workflow` keeps while it walks)."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        device: Device,
        *,
        inputs: dict[str, Any] | None,
        run_id: str,
        clock: Clock,
        denylist: PackageRules,
        approvals: ApprovalGate,
        http: httpx.Client | None,
        on_event: Callable[[TraceEvent], None] | None,
        on_status: Callable[[RunStatus], None] | None,
        control: RunControl,
        observer: StepObserver | None = None,
    ) -> None:
        self.definition = definition
        self.device = device
        self.inputs = inputs
        self.run_id = run_id
        self.clock = clock
        self.denylist = denylist
        self.approvals = approvals
        self.http = http
        self.on_event = on_event
        self.on_status = on_status
        self.control = control
        self.observer = observer
        self.trace: list[TraceEvent] = []
        self.time_limit_s = _time_limit(definition.get("timeoutS"))
        self._kinds: dict[str, str] | None = None  # node id -> kind, for template messages
        self._rendered_chars = 0  # what the run's templates have made so far (MAX_RUN_RENDERED_CHARS)
        self.log = RunLog()

    def execute(self) -> RunResult:
        started_at = self.clock.now()
        started = self.clock.monotonic()
        self._status(RunStatus.RUNNING)
        log = self.log = RunLog(self.clock, started)
        ctx = StepContext(
            device=self.device,
            clock=self.clock,
            denylist=self.denylist,
            approvals=self.approvals,
            run_id=self.run_id,
            scope={
                "inputs": with_defaults(self.definition.get("inputs"), self.inputs or {}),
                "vars": {},
                "nodes": {},
                "run": {"id": self.run_id},
                "device": {"serial": self.device.serial},
            },
            deadline=started + self.time_limit_s,
            time_limit_s=self.time_limit_s,
            on_status=self.on_status,
            http_client=self.http,
            log=log,
        )
        try:
            status, error = self._walk(ctx)
        finally:
            ctx.close()
        error = None if error is None else bound_text(error, MAX_MESSAGE_CHARS)
        log.at_step(None, None)
        words = f"the run ended {status.value}" + (f": {error}" if error else "")
        log.add("end", words, {"status": status.value, "errorMessage": error, "steps": len(self.trace)})
        self._status(status)
        ended = self.clock.monotonic()
        return RunResult(
            run_id=self.run_id,
            status=status,
            trace=self.trace,
            error_message=error,
            started_at=started_at,
            ended_at=self.clock.now(),
            duration_ms=_ms(ended - started),
            n_steps=len(self.trace),
            n_failed=sum(1 for event in self.trace if event.outcome is Outcome.FAILED),
            n_retries=sum(max(event.attempts - 1, 0) for event in self.trace),
            inputs=self.inputs,
            artifacts=ctx.artifacts,
            log=log.to_json(),
        )

    def _walk(self, ctx: StepContext) -> tuple[RunStatus, str | None]:
        problem = check_inputs(self.definition.get("inputs"), ctx.scope["inputs"])
        if problem is not None:
            return RunStatus.FAILED, problem
        try:
            nodes = _prepare(self.definition)
        except _UnrunnableWorkflow as exc:
            return RunStatus.FAILED, f"the workflow cannot run: {exc}"
        current: str | None = self.definition.get("start")
        came_from = "start"
        executions = 0
        log = self.log
        inputs = self.inputs or {}
        log.add("start", f"the run starts at node '{current}'", {"start": current, "inputs": inputs})
        while current is not None:
            log.at_step(len(self.trace) + 1, current)
            if self.clock.monotonic() >= ctx.deadline:
                log.add("timeout", self._time_limit_message() + " between steps")
                return RunStatus.TIMEOUT, self._time_limit_message()
            node = nodes.get(current)
            if node is None:
                missing = f"{came_from} leads to node '{current}', which is not in the workflow"
                return RunStatus.FAILED, missing
            if executions >= MAX_NODE_EXECUTIONS:
                return RunStatus.FAILED, (
                    f"the run stopped after {MAX_NODE_EXECUTIONS:,} node executions, the limit: "
                    "a loop probably never exits; check its condition"
                )
            executions += 1
            try:
                decision, started_at, started = self._ask(ctx, node.id)
            except RunHalted as halted:
                log.add("halted", f"the run control stopped the run before this step: {halted.message}")
                return RunStatus.FAILED, halted.message
            if decision is StepDecision.CANCEL:
                log.add(
                    "cancel-seen",
                    f"a cancel was seen before step {len(self.trace) + 1} ('{node.id}'): "
                    "no further step starts",
                )
                return RunStatus.CANCELLED, None
            if decision is StepDecision.PAUSE:
                message = (
                    f"the run was paused for {MAX_PAUSE_S / 3600:g} h without being resumed and was cancelled"
                )
                log.add("cancel-seen", message)
                return RunStatus.CANCELLED, message
            ctx.acted_on = None
            if self.observer is not None:
                seq, ui = len(self.trace) + 1, node.checks_foreground
                self.observer.step_started(StepStarted(seq, node.id, node.kind, started_at, ui))
            step = self._run_node(ctx, node, started_at, started)
            if node.kind in MOVING_KINDS and step.event.attempts:
                ctx.last_moving_step = (node.id, node.kind)
            self.trace.append(step.event)
            if self.on_event is not None:
                self.on_event(step.event)
            if self.observer is not None:
                self.observer.step_ended(StepEnded(step.event, ctx.acted_on, node.checks_foreground))
            self._log_step(node, step.event)
            if step.deadline_reached:
                log.add("timeout", self._time_limit_message() + " in this step")
                return RunStatus.TIMEOUT, _in_step(node, self._time_limit_message())
            following = node.follow(step.edge)
            self._log_edge(node, step, following)
            if following is None and step.event.outcome is Outcome.FAILED:
                return RunStatus.FAILED, _in_step(node, step.event.message or "failed")
            came_from = f"node '{node.id}' ({step.edge})"
            current = following
        return RunStatus.SUCCESS, None

    def _ask(self, ctx: StepContext, node_id: str) -> tuple[StepDecision, datetime, float]:
        """Ask the control whether the next step may start; hold while it answers PAUSE.

        The start is taken before each ask, so that no step that starts after a CANCEL was decided
        can exist (the bridge's control asks the server). Time held paused moves the run's
        deadline: it is not running time. PAUSE is answered only after `MAX_PAUSE_S` held."""
        seq = len(self.trace) + 1
        paused_since: float | None = None
        while True:
            started_at, started = self.clock.now(), self.clock.monotonic()
            decision = self.control.before_step(node_id, seq)
            if decision is not StepDecision.PAUSE:
                break
            self.log.poll(
                "pause-seen",
                "pause",
                f"a pause was seen before step {seq} ('{node_id}'): the run holds here until resumed",
            )
            if paused_since is None:
                paused_since = started
                self._status(RunStatus.PAUSED)
            elif started - paused_since >= MAX_PAUSE_S:
                return decision, started_at, started
            self.clock.sleep(PAUSE_POLL_S)
        if paused_since is not None:
            held = started - paused_since
            ctx.deadline += held
            if decision is StepDecision.GO:
                self.log.add(
                    "resumed",
                    f"resumed after {held:.1f} s held (not counted toward timeoutS)",
                    {"heldMs": _ms(held)},
                )
                self._status(RunStatus.RUNNING)
        return decision, started_at, started

    def _run_node(self, ctx: StepContext, node: _Node, started_at: datetime, started: float) -> _StepOutcome:
        clock = self.clock
        if not node.enabled:
            # Skipped as an optional step that found nothing is: later templates and conditions see it so.
            ctx.scope["nodes"][node.id] = {"output": {}, "outcome": Outcome.SKIPPED.value}
            event = self._event(node, Outcome.SKIPPED, "skipped: the node is disabled", started_at, 0, 0, {})
            return _StepOutcome(event, "ok")
        attempts = 0
        while True:
            attempts += 1
            try:
                failure = None
                params = render(node.params, ctx.scope) if node.has_templates else node.params
                if node.has_templates:
                    self._count_rendered(params)
                if node.checks_foreground or (node.kind == "control.if" and "textVisible" in params):
                    ctx.check_foreground()
                if node.function is None:
                    raise StepFailure(f"unknown node kind '{node.kind}'", retryable=False)
                result = node.function(ctx, node.raw, params)
            except TemplateError as exc:
                failure = StepFailure(self._template_reason(exc, ctx), retryable=False)
            except StepFailure as exc:
                failure = exc
            except DeviceError as exc:
                failure = StepFailure(f"device error: {exc}")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # Params that validation would have refused (a missing key, a word where a
                # number goes): the run reports them instead of crashing.
                failure = StepFailure(_unusable_params(node, exc), retryable=False)
            except RunDeadlineReached:
                return self._deadline_outcome(node, started_at, started, attempts)
            if failure is None:
                ctx.scope["nodes"][node.id] = {"output": result.output, "outcome": Outcome.OK.value}
                duration = _ms(clock.monotonic() - started)
                event = self._event(node, Outcome.OK, None, started_at, duration, attempts, result.output)
                return _StepOutcome(event, result.edge)
            if failure.retryable and attempts <= node.retry_max:
                self.log.add(
                    "retry",
                    f"attempt {attempts} of {node.retry_max + 1} failed: {failure.message}; "
                    f"attempt {attempts + 1} in {_ms(node.retry_delay_s)} ms",
                    {
                        "attempt": attempts,
                        "maxAttempts": node.retry_max + 1,
                        "delayMs": _ms(node.retry_delay_s),
                        "message": failure.message,
                    },
                )
                try:
                    ctx.sleep(node.retry_delay_s)
                except RunDeadlineReached:
                    return self._deadline_outcome(node, started_at, started, attempts)
                continue
            if attempts <= node.retry_max:
                self.log.add(
                    "retry",
                    f"attempt {attempts} failed and is not retried: this failure would not change on "
                    f"another attempt ({node.retry_max + 1 - attempts} left unused)",
                    {"attempt": attempts, "maxAttempts": node.retry_max + 1, "retried": False},
                )
            break
        if failure.edge == "failed" and clock.monotonic() >= ctx.deadline:
            # One rule where a step's own limit and the run's cap meet: a step that fails at or
            # after the cap was ended by the cap (whichever check happened to come first).
            return self._deadline_outcome(node, started_at, started, attempts)
        duration = _ms(clock.monotonic() - started)
        if failure.not_found and node.optional:
            ctx.scope["nodes"][node.id] = {"output": {}, "outcome": Outcome.SKIPPED.value}
            event = self._event(node, Outcome.SKIPPED, failure.message, started_at, duration, attempts, {})
            return _StepOutcome(event, "ok")
        ctx.scope["nodes"][node.id] = {"output": failure.output, "outcome": Outcome.FAILED.value}
        output = failure.output
        event = self._event(node, Outcome.FAILED, failure.message, started_at, duration, attempts, output)
        return _StepOutcome(event, failure.edge)

    def _log_step(self, node: _Node, event: TraceEvent) -> None:
        """The step's end in the log: the output it wrote, then its outcome."""
        log = self.log
        if event.output and node.kind != "control.if":  # a condition's value has its own entry
            log.add(
                "output-set",
                lambda: f"nodes.{node.id}.output = {short_json(event.output)}",
                {"output": event.output},
            )
        log.add(
            "step",
            lambda: _step_words(event),
            {"outcome": event.outcome.value, "attempts": event.attempts, "durationMs": event.duration_ms},
        )

    def _log_edge(self, node: _Node, step: _StepOutcome, following: str | None) -> None:
        """The way taken after a step, and why (or why the run ends there)."""
        edge, outcome = step.edge, step.event.outcome
        if following is not None:
            values = {"edge": edge, "to": following, "outcome": outcome.value}
            self.log.add("edge", lambda: f"{edge} → {following}{_edge_reason(node, edge, outcome)}", values)
        elif outcome is Outcome.FAILED:
            self.log.add(
                "edge",
                f"the step failed and node '{node.id}' has no '{edge}' edge: the run ends failed",
                {"edge": edge, "to": None, "outcome": outcome.value},
            )
        else:
            self.log.add(
                "edge",
                f"node '{node.id}' has no '{edge}' edge onward: the run ends here",
                {"edge": edge, "to": None, "outcome": outcome.value},
            )

    def _count_rendered(self, params: Any) -> None:
        """Add what a step's templates made to the run's total; past `MAX_RUN_RENDERED_CHARS` it fails."""
        self._rendered_chars += json_size(params, MAX_RUN_RENDERED_CHARS)
        if self._rendered_chars > MAX_RUN_RENDERED_CHARS:
            raise TemplateError(
                "",
                f"the run's templates have made more than {MAX_RUN_RENDERED_CHARS:,} characters in all (each "
                "step's values are kept in its trace and outputs): template smaller values, or fewer times",
            )

    def _template_reason(self, exc: TemplateError, ctx: StepContext) -> str:
        if check_path(exc.path) is not None:
            return exc.reason  # the path's form is wrong: its own words say how
        if self._kinds is None:
            nodes = self.definition.get("nodes")
            raw = nodes if isinstance(nodes, list) else []
            self._kinds = {
                str(n["id"]): str(n.get("kind", "")) for n in raw if isinstance(n, Mapping) and "id" in n
            }
        return unresolved_reason(exc.path, ctx.scope, self._kinds)

    def _deadline_outcome(
        self, node: _Node, started_at: datetime, started: float, attempts: int
    ) -> _StepOutcome:
        duration = _ms(self.clock.monotonic() - started)
        message = self._time_limit_message()
        event = self._event(node, Outcome.FAILED, message, started_at, duration, attempts, {})
        return _StepOutcome(event, "failed", deadline_reached=True)

    def _time_limit_message(self) -> str:
        return f"the run reached its time limit of {self.time_limit_s:g} s (timeoutS) and was stopped"

    def _event(
        self,
        node: _Node,
        outcome: Outcome,
        message: str | None,
        started_at: datetime,
        duration_ms: int,
        attempts: int,
        output: dict[str, Any],
    ) -> TraceEvent:
        return TraceEvent(
            seq=len(self.trace) + 1,
            node_id=node.id,
            kind=node.kind,
            outcome=outcome,
            message=None if message is None else bound_text(message, MAX_MESSAGE_CHARS),
            started_at=started_at,
            duration_ms=duration_ms,
            attempts=attempts,
            output=output,
        )

    def _status(self, status: RunStatus) -> None:
        if self.on_status is not None:
            self.on_status(status)


def _prepare(definition: Mapping[str, Any]) -> dict[str, _Node]:
    """Index the nodes by id and work out once what each step needs."""
    raw_nodes = definition.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise _UnrunnableWorkflow("it has no nodes")
    if not isinstance(definition.get("start"), str):
        raise _UnrunnableWorkflow("'start' must name the first node")
    nodes: dict[str, _Node] = {}
    for position, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            raise _UnrunnableWorkflow(f"nodes[{position}] has no id")
        node_id = raw["id"]
        kind = str(raw.get("kind", ""))
        params = raw.get("params") or {}
        if not isinstance(params, Mapping):
            raise _UnrunnableWorkflow(f"node '{node_id}': params must be an object")
        next_value = raw.get("next")
        retry_value = raw.get("retry")
        retry: Mapping[str, Any] = retry_value if isinstance(retry_value, Mapping) else {}
        nodes[node_id] = _Node(
            id=node_id,
            kind=kind,
            raw=raw,
            params=params,
            has_templates=next(references(params), None) is not None,
            function=STEP_FUNCTIONS.get(kind),
            next_id=next_value if isinstance(next_value, str) else None,
            next_map=_next_map(next_value),
            retry_max=max(int(retry.get("max", 0) or 0), 0),
            retry_delay_s=max(float(retry.get("delayMs", 0) or 0), 0.0) / 1000.0,
            optional=bool(raw.get("optional", False)),
            enabled=raw.get("enabled", True) is not False,
            checks_foreground=kind in UI_KINDS,
        )
    return nodes


def _step_words(event: TraceEvent) -> str:
    tries = f" after {event.attempts} attempts" if event.attempts > 1 else ""
    said = f": {event.message}" if event.message else ""
    return f"{event.kind} {event.outcome.value} in {event.duration_ms} ms{tries}{said}"


def _edge_reason(node: _Node, edge: str, outcome: Outcome) -> str:
    if outcome is Outcome.SKIPPED:
        return " (the step was skipped, which follows ok)"
    if outcome is Outcome.FAILED:
        return f" (the step failed: the workflow's '{edge}' edge)"
    if node.next_map is None and edge != "ok":
        return f" ('{edge}' follows the plain next)"
    return ""


def _in_step(node: _Node, message: str) -> str:
    """The run's `errorMessage`: the step that ended it, then its words."""
    return f"step '{node.id}' ({node.kind}): {message}"


def _unusable_params(node: _Node, exc: Exception) -> str:
    detail = f"'{exc.args[0]}' is missing" if isinstance(exc, KeyError) and exc.args else str(exc)
    return (
        f"node '{node.id}' ({node.kind}) cannot run with its params: {detail}; "
        "check them with phoneflow workflow validate"
    )


def _next_map(next_value: Any) -> dict[str, str] | None:
    if not isinstance(next_value, Mapping):
        return None
    return {str(edge): str(target) for edge, target in next_value.items()}


# What all of one run's templates may make together (a value's own bound is `MAX_VALUE_CHARS`): a
# definition of thousands of steps, each templating a large input into a new value, kept every one in
# its trace and outputs.
MAX_RUN_RENDERED_CHARS = 20 * MAX_VALUE_CHARS


def _time_limit(value: Any) -> float:
    """The run's time cap: `timeoutS` when it is a positive number, never above the 600 s hard cap."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return float(DEFAULT_TIMEOUT_S)
    return float(min(value, HARD_CAP_S))


def _ms(seconds: float) -> int:
    return max(int(round(seconds * 1000)), 0)
