"""One function per node kind: what an attempt of that step does on the device.

Each function gets the run's `StepContext`, the node as written and its params with
templates already rendered for this attempt, and returns a `StepResult` or raises
`StepFailure` with the trace's words. Retries, `optional`, edges, the denylist check
of the foreground app and the trace event are the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from interpreter.approvals import ApprovalDecision, ApprovalResponse, NoAnswerComing
from interpreter.condition_scope import scope_for
from interpreter.denylist import denied_message
from interpreter.elements import (
    compile_selector,
    describe,
    element_timeout_ms,
    find_now,
    text_selector,
    wait_for,
    what_was_there,
)
from interpreter.errors import AppNotInstalledError, AppNotLaunchableError
from interpreter.expressions import ExpressionError, evaluate
from interpreter.http_step import run_http
from interpreter.matcher import is_editable
from interpreter.step_context import POLL_INTERVAL_S, StepContext, StepFailure, StepResult
from interpreter.trace import RunStatus

StepFunction = Callable[[StepContext, Mapping[str, Any], Mapping[str, Any]], StepResult]

# After a swipe the screen scrolls on; on a phone the next look at it waits for that.
SWIPE_SETTLE_S = 0.2
SWIPE_DURATION_MS = 250
# How long a launched app has to come to the front before `launchApp` fails.
LAUNCH_WAIT_S = 5.0


def launch_app(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Refuse a denied package, launch it, and make sure it is the app in front.

    Fails saying which: not installed, installed without a launcher activity (the home screen,
    a system package), or launched but another package still (or again) in front after
    `LAUNCH_WAIT_S` of the run's clock.
    """
    package = str(params["package"])
    entry = ctx.denylist.match(package)
    if entry is not None:
        raise StepFailure(denied_message(package, entry), retryable=False)
    try:
        ctx.device.launch_app(package, stop_first=bool(params.get("stopFirst", False)))
    except AppNotInstalledError as exc:
        raise StepFailure(f"app not installed: {exc.package}") from exc
    except AppNotLaunchableError as exc:
        raise StepFailure(
            f"{exc.package} is installed but has no launcher activity, so it cannot be launched (the home "
            "screen and system packages have none): launch an app, or press the home key "
            "(action.pressKey home) to show the home screen",
            retryable=False,
        ) from exc
    _wait_in_front(ctx, package)
    return StepResult()


def _wait_in_front(ctx: StepContext, package: str) -> None:
    """Poll the foreground app until it is `package` (a phone draws a launched app a moment later)."""
    ends_at = ctx.clock.monotonic() + LAUNCH_WAIT_S
    while True:
        in_front = ctx.device.foreground_package()
        if in_front is None or in_front == package:
            return
        now = ctx.clock.monotonic()
        ctx.log.poll(
            "wait-poll",
            "foreground",
            f"{package} was launched; {in_front} is still in front",
            {"package": package, "inFront": in_front},
        )
        if now >= ends_at:
            raise StepFailure(
                f"{package} was launched, but {in_front} is in front after {LAUNCH_WAIT_S:g} s: the app "
                "may have closed at once (crashed) or opened another app"
            )
        ctx.sleep(min(POLL_INTERVAL_S, ends_at - now))


def stop_app(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Force-stop the app; not a UI action, so it runs even while a denied app is in front."""
    ctx.device.stop_app(str(params["package"]))
    return StepResult()


def tap_by_text(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Wait for the element showing `text` (exact, contains or regex) and tap its centre."""
    selector = text_selector(str(params["text"]), str(params.get("match", "exact")), params.get("index"))
    element = wait_for(ctx, selector, element_timeout_ms(node, params))
    ctx.device.tap(*element.bounds.center)
    return StepResult()


def tap(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Wait for the element the selector finds and tap its centre."""
    element = wait_for(ctx, params["selector"], element_timeout_ms(node, params))
    ctx.device.tap(*element.bounds.center)
    return StepResult()


def type_text(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Tap the selector's field to focus it (when given), then type, clearing it first on `clear`."""
    text = _as_text(params.get("text", ""))
    broken = next((i for i, char in enumerate(text) if "\ud800" <= char <= "\udfff"), None)
    if broken is not None:
        # Half a surrogate pair cannot be encoded for any phone: say so before touching one.
        raise StepFailure(
            f"the text to type has half a character at position {broken} ({text[broken]!r}, a lone "
            "surrogate, from text cut in the middle of an emoji or similar): fix the text or the template "
            "that made it",
            retryable=False,
        )
    selector = params.get("selector")
    if selector is not None:
        # Tapping the field focuses it, as a person would before typing.
        element = wait_for(ctx, selector, element_timeout_ms(node, params))
        if not is_editable(element):
            # Typing now would go to whatever field had focus before: refuse instead.
            raise StepFailure(
                f"the element with {describe(selector)} is a {element.class_name.rsplit('.', 1)[-1]}, not an "
                "editable field, so nothing was typed: point the selector at the text field itself "
                "(an EditText; its resourceId is the surest)",
                retryable=False,
            )
        ctx.device.tap(*element.bounds.center)
        # The tap may have opened another app: never type into a denied one.
        ctx.check_foreground(own_tap=True)
    ctx.device.input_text(text, clear=bool(params.get("clear", False)))
    return StepResult()


def press_key(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Press a device key (`back`, `home`, ...)."""
    ctx.device.press_key(str(params["key"]))
    return StepResult()


def swipe(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Swipe a finger through the middle of the screen in `direction`."""
    _swipe(ctx, str(params["direction"]))
    return StepResult()


def scroll_until_visible(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Look for `text`; swipe and look again, up to `maxSwipes` times."""
    text = str(params["text"])
    selector = compile_selector({"text": text})
    # `direction` is where the content moves into view from: scrolling down means the
    # finger swipes up, as on a phone.
    direction = str(params.get("direction", "down"))
    finger = {"down": "up", "up": "down", "left": "right", "right": "left"}.get(direction)
    if finger is None:
        raise StepFailure(f"direction '{direction}' is not one of up, down, left, right", retryable=False)
    max_swipes = int(params.get("maxSwipes", 10))
    swipes = 0
    while find_now(ctx, selector) is None:
        if swipes >= max_swipes:
            plural = "swipe" if max_swipes == 1 else "swipes"
            there = what_was_there(ctx, ctx.device.hierarchy(), selector)
            raise StepFailure(
                f"no element with text '{text}' after {max_swipes} {plural}; {there}", not_found=True
            )
        ctx.log.poll(
            "wait-poll",
            "scroll",
            f"text '{text}' is not visible: swiping {finger} (up to {max_swipes} swipes)",
            {"text": text, "swipe": finger, "maxSwipes": max_swipes},
        )
        _swipe(ctx, finger)
        swipes += 1
        ctx.sleep(SWIPE_SETTLE_S)
    return StepResult()


def wait_for_text(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Wait until `text` is on screen, up to `timeoutMs` (default 5 s)."""
    text = str(params["text"])
    timeout_ms = element_timeout_ms(node, params)
    shown_ms = int(timeout_ms) if timeout_ms is not None else 5000
    message = f"no element with text '{text}' on screen after waiting {shown_ms} ms"
    wait_for(ctx, {"text": text}, timeout_ms, message)
    return StepResult()


def read_text(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Wait for the element and output its `text`; `saveAs` also stores it in `vars`."""
    element = wait_for(ctx, params["selector"], element_timeout_ms(node, params))
    save_as = params.get("saveAs")
    if save_as:
        ctx.set_var(str(save_as), element.text)
    return StepResult({"text": element.text})


def screenshot(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Keep a screenshot as an artifact of the run; the trace output stays `{}`."""
    ctx.artifacts.append(ctx.device.screenshot())
    return StepResult()


def wait(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Sleep `ms` on the run's clock (never past the run's time cap)."""
    ctx.sleep(float(params.get("ms", 0)) / 1000.0)
    return StepResult()


def branch(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """`control.if`: the edge `true` or `false` from a CEL `expr` or a `textVisible` look (no wait)."""
    if "expr" in params:
        expr = str(params["expr"])
        try:
            result = evaluate(expr, scope_for(expr, ctx.scope))
        except ExpressionError as exc:
            raise StepFailure(str(exc)) from exc
        if not isinstance(result, bool):
            raise StepFailure(
                f"the condition '{expr}' gave {result!r} ({type(result).__name__}), not true or false: "
                "write a comparison such as vars.n < 3"
            )
        ctx.log.add(
            "condition", f"{expr} was {'true' if result else 'false'}", {"expr": expr, "value": result}
        )
    elif "textVisible" in params:
        text = str(params["textVisible"])
        result = find_now(ctx, compile_selector({"text": text})) is not None
        shown = "on screen" if result else "not on screen"
        ctx.log.add("condition", f"text '{text}' was {shown}", {"textVisible": text, "value": result})
    else:
        raise StepFailure("control.if needs params.expr or params.textVisible", retryable=False)
    return StepResult({"result": result}, edge="true" if result else "false")


def approval(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Ask the approval gate and wait; approved → `ok`, rejected or timed out → `failed`, edge `rejected`.

    `timeoutS` 0 waits without a time limit. Waiting is not running time: the run's time cap moves
    on by as long as the wait took.
    """
    timeout_s = float(params.get("timeoutS", 60))
    message = _as_text(params.get("message", ""))
    approvers = [str(a) for a in params.get("approvers") or []]
    limit = f"waits up to {timeout_s:g} s" if timeout_s else "waits without a time limit"
    who = f" of {', '.join(approvers)}" if approvers else ""
    ctx.log.add(
        "approval-asked",
        f"approval asked{who}: {message!r}; {limit}",
        {"message": message, "approvers": approvers, "timeoutS": timeout_s},
    )
    ctx.set_status(RunStatus.WAITING_FOR_APPROVAL)
    waited_from = ctx.clock.monotonic()
    try:
        response = ctx.approvals.request(
            run_id=ctx.run_id,
            node_id=str(node["id"]),
            message=message,
            approvers=approvers,
            timeout_s=timeout_s,
            clock=ctx.clock,
        )
    except NoAnswerComing as exc:
        raise StepFailure(str(exc), retryable=False) from None
    finally:
        waited_s = ctx.clock.monotonic() - waited_from
        ctx.deadline += waited_s
        ctx.set_status(RunStatus.RUNNING)
    _log_answer(ctx, response, waited_s)
    output = {
        "respondedBy": response.responded_by,
        "responseNote": response.note,
        "respondedVia": response.via,
    }
    if response.decision is ApprovalDecision.TIMED_OUT:
        # The outputs are there (null) so that templates on the rejected path resolve.
        raise StepFailure(
            f"no answer to the approval within {timeout_s:g} s",
            retryable=False,
            edge="rejected",
            output=dict.fromkeys(output),
        )
    if response.decision is ApprovalDecision.APPROVED:
        return StepResult(output, edge="approved")
    who = f" by {response.responded_by}" if response.responded_by else ""
    note = f": {response.note}" if response.note else ""
    raise StepFailure(f"rejected{who}{note}", retryable=False, edge="rejected", output=output)


def _log_answer(ctx: StepContext, response: ApprovalResponse, waited_s: float) -> None:
    timed_out = response.decision is ApprovalDecision.TIMED_OUT
    decision = "not answered in time" if timed_out else response.decision.value
    by = f" by {response.responded_by}" if response.responded_by else ""
    via = f" via {response.via}" if response.via else ""
    note = f": {response.note}" if response.note else ""
    ctx.log.add(
        "approval-answered",
        f"{decision}{by}{via}{note} after {waited_s:.1f} s",
        {
            "decision": response.decision.value,
            "by": response.responded_by,
            "note": response.note,
            "via": response.via,
            "waitedMs": int(round(waited_s * 1000)),
        },
    )


def set_var(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Set `vars.<name>` to the rendered `value`."""
    ctx.set_var(str(params["name"]), params.get("value"))
    return StepResult()


def fail(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """End this node `failed` with the rendered `message`."""
    message = _as_text(params.get("message", "the workflow failed here (control.fail)"))
    raise StepFailure(message, retryable=False)


def _swipe(ctx: StepContext, direction: str) -> None:
    """A finger swipe through the middle of the screen, 40% of its size, in `direction`."""
    width, height = ctx.screen_size()
    cx, cy = width // 2, height // 2
    dx, dy = int(width * 0.3), int(height * 0.2)
    moves = {
        "up": (cx, cy + dy, cx, cy - dy),
        "down": (cx, cy - dy, cx, cy + dy),
        "left": (cx + dx, cy, cx - dx, cy),
        "right": (cx - dx, cy, cx + dx, cy),
    }
    if direction not in moves:
        raise StepFailure(f"direction '{direction}' is not one of up, down, left, right", retryable=False)
    ctx.device.swipe(*moves[direction], duration_ms=SWIPE_DURATION_MS)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


STEP_FUNCTIONS: dict[str, StepFunction] = {
    "action.launchApp": launch_app,
    "action.stopApp": stop_app,
    "action.tapByText": tap_by_text,
    "action.tap": tap,
    "action.typeText": type_text,
    "action.pressKey": press_key,
    "action.swipe": swipe,
    "action.scrollUntilVisible": scroll_until_visible,
    "action.waitForText": wait_for_text,
    "action.readText": read_text,
    "action.screenshot": screenshot,
    "action.http": run_http,
    "action.wait": wait,
    "control.if": branch,
    "control.approval": approval,
    "control.setVar": set_var,
    "control.fail": fail,
}

# Kinds that may bring another app to the front (a denylist refusal names the last one that ran).
MOVING_KINDS = frozenset(
    {
        "action.launchApp",
        "action.tapByText",
        "action.tap",
        "action.typeText",
        "action.pressKey",
        "action.swipe",
        "action.scrollUntilVisible",
    }
)

# Kinds that look at or touch the screen: before each attempt the engine checks the
# app in the foreground against the denylist, so a denied app is neither read nor touched.
UI_KINDS = frozenset(
    {
        "action.tapByText",
        "action.tap",
        "action.typeText",
        "action.pressKey",
        "action.swipe",
        "action.scrollUntilVisible",
        "action.waitForText",
        "action.readText",
        "action.screenshot",
    }
)
