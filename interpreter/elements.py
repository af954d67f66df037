"""Finding elements for steps: the matcher over the device's hierarchy, waits, and the words.

The matcher (`interpreter.matcher`) decides what a selector means; this module adds
time (poll the hierarchy until the element shows up or the wait ends) and writes the
"no element with ..." messages, so that both drivers say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from interpreter import matcher
from interpreter.hierarchy import UiNode
from interpreter.near_matches import on_screen_instead
from interpreter.safe_regex import RegexTooSlow
from interpreter.step_context import (
    DEFAULT_ELEMENT_TIMEOUT_MS,
    POLL_INTERVAL_S,
    StepContext,
    StepFailure,
)

# How a selector key reads in a message: "no element with <words> 'value' on screen".
_SELECTOR_WORDS = {
    "text": "text",
    "textContains": "text containing",
    "textMatches": "text matching",
    "resourceId": "resource id",
    "description": "description",
    "className": "class",
}

# tapByText's `match` as a selector key.
_MATCH_KEYS = {"exact": "text", "contains": "textContains", "regex": "textMatches"}


def text_selector(text: str, match: str = "exact", index: int | None = None) -> dict[str, Any]:
    """The selector dict that `tapByText`-style params (`text`, `match`, `index`) stand for."""
    key = _MATCH_KEYS.get(match)
    if key is None:
        raise StepFailure(f"match '{match}' is not one of exact, contains, regex", retryable=False)
    selector: dict[str, Any] = {key: text}
    if index:
        selector["index"] = index
    return selector


def describe(selector: Mapping[str, Any]) -> str:
    """`text 'New order'`, `resource id 'com.x:id/save' at index 1`, ... for messages."""
    parts = [f"{_SELECTOR_WORDS[key]} '{selector[key]}'" for key in _SELECTOR_WORDS if key in selector]
    words = " and ".join(parts) or "no criteria"
    index = selector.get("index")
    if index:
        words += f" at index {index}"
    return words


def not_found_message(selector: Mapping[str, Any]) -> str:
    return f"no element with {describe(selector)} on screen"


def compile_selector(selector: Any) -> matcher.Selector:
    """The matcher's selector, or a step failure saying what is wrong with the dict."""
    if not isinstance(selector, Mapping):
        raise StepFailure('the selector must be an object such as {"text": "Save"}', retryable=False)
    try:
        return matcher.Selector.from_dict(selector)
    except (ValueError, TypeError) as exc:
        raise StepFailure(f"the selector {dict(selector)} cannot be used: {exc}", retryable=False) from exc


@contextmanager
def _regex_bounded() -> Iterator[None]:
    """A selector's regex that used up its time fails the step, saying how to rewrite it."""
    try:
        yield
    except RegexTooSlow as exc:
        raise StepFailure(str(exc), retryable=False) from None


def _find(ctx: StepContext, root: UiNode, selector: matcher.Selector) -> UiNode | None:
    """One look at the screen (its regexes within the run's budget, `interpreter.safe_regex`)."""
    with _regex_bounded():
        return matcher.find(root, selector, ctx.regex_budget.look())


def find_now(ctx: StepContext, selector: matcher.Selector) -> UiNode | None:
    """The element on screen right now, or None (no waiting)."""
    found = _find(ctx, ctx.device.hierarchy(), selector)
    if found is not None:
        ctx.acted_on = found
    return found


def wait_for(
    ctx: StepContext,
    selector_dict: Mapping[str, Any],
    timeout_ms: float | None,
    message: str | None = None,
) -> UiNode:
    """Poll the hierarchy until the element is on screen; `StepFailure(not_found)` after the wait."""
    selector = compile_selector(selector_dict)
    timeout_s = float(timeout_ms if timeout_ms is not None else DEFAULT_ELEMENT_TIMEOUT_MS) / 1000.0
    clock = ctx.clock
    ends_at = clock.monotonic() + timeout_s
    while True:
        root = ctx.device.hierarchy()
        found = _find(ctx, root, selector)
        if found is not None:
            ctx.acted_on = found
            return found
        now = clock.monotonic()
        ctx.log.poll(
            "wait-poll",
            "element",
            lambda: f"looked for the element with {describe(selector_dict)}: not on screen yet",
            {"selector": dict(selector_dict), "timeoutMs": int(timeout_s * 1000)},
        )
        if now >= ends_at:
            words = message or not_found_message(selector_dict)
            raise StepFailure(f"{words}; {what_was_there(ctx, root, selector)}", not_found=True)
        ctx.sleep(min(POLL_INTERVAL_S, ends_at - now))


def what_was_there(ctx: StepContext, root: UiNode, selector: matcher.Selector) -> str:
    """What the screen showed instead of the element, and the app in front (for not-found messages)."""
    with _regex_bounded():
        parts = [on_screen_instead(root, selector, ctx.regex_budget.look())]
    in_front = ctx.device.foreground_package()
    if in_front:
        parts.append(f"in front: {_component(in_front, ctx.device.foreground_activity())}")
    return "; ".join(parts)


def _component(package: str, activity: str | None) -> str:
    """`com.x/.Main` as Android writes a component, whether the driver said `.Main` or `com.x.Main`."""
    if not activity:
        return package
    if activity.startswith(package + "."):
        activity = activity[len(package) :]
    return f"{package}/{activity}"


def element_timeout_ms(node: Mapping[str, Any], params: Mapping[str, Any]) -> float | None:
    """`params.timeoutMs`, else the node's `timeoutMs`, else None (the default wait)."""
    value = params.get("timeoutMs")
    if value is None:
        value = node.get("timeoutMs")
    return float(value) if value is not None else None
