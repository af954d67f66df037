"""Structured JSON logs, the request id that ties a request's log lines together, and the
security headers every answer carries.

A client may send `X-Request-ID`; otherwise one is made. It is echoed on the response
and carried by every log line written while the request is handled.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import observe_request

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "phoneflow_request_id", default=None
)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_access_log = logging.getLogger("phoneflow.access")
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, process id (`serve --workers N` runs
    several processes writing to one stream), request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["requestId"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send phoneflow's logs to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("phoneflow")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_phoneflow", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        handler._phoneflow = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


# An incoming hook's URL is its only secret: the access log keeps its first characters only.
_HOOK_PREFIX = "/api/v1/hooks/pf_hook_"
_HOOK_PATH = re.compile(r"^(/api/v1/hooks/pf_hook_.{4}).*$")


# Every answer, whichever part of the server made it (the API, the docs pages, a redirect, an error):
# never sniffed as another type than it says, never framed by another site (clickjacking), and its
# address never sent to another site. A header the answer sets itself is kept.
_BASELINE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
# An HTML page without a policy of its own (/docs, /redoc: Swagger UI and ReDoc run inline scripts,
# so they keep those): no framing, no <base> or plugin injection, forms post only here.
_HTML_PAGE_POLICY = (
    b"content-security-policy",
    b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'",
)
# Anything else (JSON, problems, files, streams): nothing in it may load or run if a browser renders it.
_OTHER_POLICY = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with the baseline security headers added where the answer did not set them."""
    present = {k.lower() for k, _ in headers}
    added = [header for header in _BASELINE_HEADERS if header[0] not in present]
    if b"content-security-policy" not in present:
        html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
        added.append(_HTML_PAGE_POLICY if html else _OTHER_POLICY)
    return headers + added


def _loggable(path: str) -> str:
    if not path.startswith(_HOOK_PREFIX):  # every other path, without a regular expression's cost
        return path
    return _HOOK_PATH.sub(r"\1…", path)


class RequestIdMiddleware:
    """Takes or makes the request id, echoes it, adds the security headers, and writes one access log
    line a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        streaming = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message.get("headers", [])
                )
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": with_security_headers(headers)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            observe_request(scope["method"], getattr(route, "path", None), scope["path"], elapsed, streaming)
            if _access_log.isEnabledFor(logging.INFO):  # its fields are made only for a line written
                path = _loggable(scope["path"])
                _access_log.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "durationMs": round(elapsed * 1000, 1),
                    },
                )
            request_id_var.reset(token)
