"""One gate for what no endpoint can store or read back: checked before any route sees the request.

* the path and the query: no NUL character, valid UTF-8 once percent-decoded;
* a JSON body (any body that is not a form): no NUL, no lone surrogate, no NaN/Infinity,
  nested at most `interpreter.safe_json.MAX_DEPTH` deep (interpreter/safe_json.py says why);
* a urlencoded form (the dashboard): no NUL, valid UTF-8.

Refusals are 422 problems with a pointer (`/inputs/a`, `query:name`, `path`). Most bodies pass
a quick scan done in C and are never parsed here; only a suspect one is parsed and walked.
Multipart and image bodies (artifacts, the live screen) are binary and left to their endpoint.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interpreter import safe_json
from server.errors import FieldProblem, ValidationFailed, problem_response

_URL_HINT = "remove the NUL (%00) and send the text as valid UTF-8"


def _url_text_problem(raw: bytes) -> str | None:
    if b"\x00" in raw:
        return "holds a NUL character (%00)"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8 once percent-decoded"
    return None


def url_problems(scope: Scope) -> list[FieldProblem]:
    """What is wrong with the request's path and query string."""
    problems: list[FieldProblem] = []
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    problem = _url_text_problem(unquote_to_bytes(raw_path))
    if problem is None and "\x00" in scope.get("path", ""):
        problem = "holds a NUL character (%00)"
    if problem is not None:
        problems.append(FieldProblem("path", f"the path {problem}", _URL_HINT))
    query: bytes = scope.get("query_string", b"")
    if query:
        problems.extend(_form_problems(query, "query:"))
    return problems


def _form_problems(raw: bytes, prefix: str) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for pair in raw.split(b"&"):
        name_raw, _, value_raw = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name_raw.replace(b"+", b" "))
        value_bytes = unquote_to_bytes(value_raw.replace(b"+", b" "))
        name = name_bytes.decode("utf-8", "replace")
        for what, part in (("name", name_bytes), ("value", value_bytes)):
            problem = _url_text_problem(part)
            if problem is not None:
                problems.append(FieldProblem(f"{prefix}{name}", f"the {what} {problem}", _URL_HINT))
    return problems


def body_problems(body: bytes, content_type: str) -> list[FieldProblem]:
    """What is wrong with a request body, by its content type (multipart is not looked at)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data" or kind.startswith("image/") or not body:
        return []
    if kind == "application/x-www-form-urlencoded":
        return _form_problems(body, "/")
    if not safe_json.needs_check(body):
        return []
    try:
        safe_json.loads(body)
    except safe_json.UnsafeJson as exc:
        return [FieldProblem(exc.pointer, exc.message, exc.hint)]
    except ValueError:
        return []  # not JSON: the endpoint's own parser answers, in its own words
    return []


class InputGuardMiddleware:
    """Refuses requests whose path, query or body no endpoint could store (see the module docstring).

    Must sit inside the body size limit: it reads the whole body before the route does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = url_problems(scope)
        if problems:
            await problem_response(ValidationFailed(problems))(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and not _declares_body(scope):
            await self.app(scope, receive, send)
            return
        content_type = ""
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value.decode("latin-1")
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind == "multipart/form-data" or kind.startswith("image/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the app see it as it would have.
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problems = body_problems(body, content_type)
        if problems:
            await problem_response(ValidationFailed(problems))(scope, receive, send)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _declares_body(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope.get("headers", []))


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then defers to the real one."""
    queue: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    if pending is not None:
        queue = [pending]

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
