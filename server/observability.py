"""Structured JSON logs and the request id that ties a request's log lines together.

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
    """One JSON object a line: time, level, logger, message, request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
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


def _loggable(path: str) -> str:
    if not path.startswith(_HOOK_PREFIX):  # every other path, without a regular expression's cost
        return path
    return _HOOK_PATH.sub(r"\1…", path)


class RequestIdMiddleware:
    """Takes or makes the request id, echoes it, and writes one access log line a request."""

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
                message = {**message, "headers": headers}
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
