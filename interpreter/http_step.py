"""`action.http`: one request with a real HTTP client; non-2xx fails the step.

Messages name the host only (never the port or the path), so that a golden trace
recorded against a local test server on a random port stays comparable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from interpreter.step_context import (
    DEFAULT_HTTP_TIMEOUT_MS,
    RunDeadlineReached,
    StepContext,
    StepFailure,
    StepResult,
)


def run_http(ctx: StepContext, node: Mapping[str, Any], params: Mapping[str, Any]) -> StepResult:
    """Send the request; output `{status, body}` (body parsed as JSON when the response says JSON)."""
    method = str(params.get("method", "GET")).upper()
    url_text = params.get("url")
    if not isinstance(url_text, str) or not url_text:
        raise StepFailure("the HTTP step has no url: set params.url to an http(s) address")
    try:
        url = httpx.URL(url_text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise StepFailure(f"'{url_text}' is not a valid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise StepFailure(f"'{url_text}' is not an http(s) URL: write it as https://host/path")
    host = url.host
    timeout_ms = params.get("timeoutMs") or node.get("timeoutMs") or DEFAULT_HTTP_TIMEOUT_MS
    # A request never outlives the run: its timeout is cut to the time the run has left.
    wanted_s = float(timeout_ms) / 1000.0
    timeout_s = max(min(wanted_s, ctx.remaining_s()), 0.001)
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    for name, value in headers.items():
        _check_header_value(name, value)
    request_kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout_s}
    if "body" in params and params["body"] is not None and method not in ("GET", "HEAD"):
        body = params["body"]
        if isinstance(body, str):
            request_kwargs["content"] = body.encode("utf-8")
        else:
            request_kwargs["json"] = body
    # The request takes real time on every clock: the run's clock counts it (a simulation too).
    real_start, clock_start = time.monotonic(), ctx.clock.monotonic()
    try:
        response = ctx.http().request(method, url, **request_kwargs)
    except httpx.TimeoutException as exc:
        ctx.catch_up(time.monotonic() - real_start, clock_start)
        if timeout_s < wanted_s:
            raise RunDeadlineReached from exc  # the run's cap, not the step's timeout, cut it short
        raise StepFailure(f"HTTP request to {host} timed out after {timeout_ms} ms") from exc
    except httpx.ConnectError as exc:
        raise StepFailure(f"HTTP request to {host} failed: cannot connect ({_reason(exc)})") from exc
    except httpx.HTTPError as exc:
        raise StepFailure(f"HTTP request to {host} failed: {_reason(exc)}") from exc
    ctx.catch_up(time.monotonic() - real_start, clock_start)
    if 300 <= response.status_code < 400 and "location" in response.headers:
        raise StepFailure(
            f"HTTP {response.status_code} from {host}: redirects are not followed, and this one points to "
            f"{_where(response.headers['location'])}: put the address it points to in params.url"
        )
    if not 200 <= response.status_code < 300:
        raise StepFailure(f"HTTP {response.status_code} from {host}")
    return StepResult({"status": response.status_code, "body": _body(response)})


def _where(location: str) -> str:
    """A redirect's target, with no port (as every message here: traces stay comparable)."""
    try:
        target = httpx.URL(location)
    except (httpx.InvalidURL, TypeError, ValueError):
        return repr(location)
    if not target.host:
        return target.raw_path.decode("ascii", "replace") or "/"
    return f"{target.scheme}://{target.host}{target.raw_path.decode('ascii', 'replace')}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _body(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").lower()
    if "json" in content_type and response.content:
        try:
            return json.loads(response.content)
        except ValueError:
            pass  # a server that says JSON and sends something else: keep its text
    return response.text


def header_value_problem(name: str, value: str) -> str | None:
    """Why `value` cannot be the value of header `name`, or None.

    Header values are ASCII on the wire (the client refuses anything else) and a line break or other
    control character would end the header: a value rendered from a template (a name with an accent,
    text read from the screen) is the usual way one gets there; validation checks literal values."""
    bad = next((char for char in value if not (" " <= char <= "~" or char == "\t")), None)
    if bad is None:
        return None
    return (
        f"header {name!r} holds {bad!r} (U+{ord(bad):04X}), which an HTTP header value cannot carry: header "
        "values are printable ASCII; percent-encode the value or send it in params.body instead"
    )


def _check_header_value(name: str, value: str) -> None:
    """A header value HTTP cannot carry fails the step saying which header and character, before sending."""
    problem = header_value_problem(name, value)
    if problem is not None:
        raise StepFailure(problem, retryable=False)
