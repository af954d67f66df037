"""`action.http` against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interpreter.appmodel import sample_apps
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.simulator import SimulatedDevice
from interpreter.trace import RunStatus


class Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/bad-json":
            self._send(200, "application/json", b"{not json")
        elif self.path == "/teapot":
            self._send(418, "text/plain", b"short and stout")
        else:
            self._send(201, "application/json", json.dumps({"got": body.decode() or None}).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_http(params: dict[str, Any], **kwargs: Any):
    definition = {
        "schemaVersion": 1,
        "name": "http",
        "start": "call",
        "nodes": [{"id": "call", "kind": "action.http", "params": params}],
    }
    clock = VirtualClock()
    return run_workflow(definition, SimulatedDevice(sample_apps(), clock), clock=clock, **kwargs)


def test_post_sends_rendered_json_and_headers(base: str) -> None:
    Handler.seen.clear()
    result = run_http(
        {
            "method": "POST",
            "url": "{{inputs.base}}/hook",
            "headers": {"X-Run": "{{run.id}}"},
            "body": {"n": "{{inputs.n}}", "text": "n={{inputs.n}}"},
        },
        inputs={"base": base, "n": 4},
        run_id="r-9",
    )
    assert result.status is RunStatus.SUCCESS
    assert result.trace[0].output == {"status": 201, "body": {"got": '{"n":4,"text":"n=4"}'}}
    request = Handler.seen[-1]
    assert request["headers"]["X-Run"] == "r-9"
    assert json.loads(request["body"]) == {"n": 4, "text": "n=4"}


def test_a_string_body_is_sent_as_is(base: str) -> None:
    result = run_http({"method": "POST", "url": f"{base}/raw", "body": "plain words"})
    assert result.trace[0].output["body"] == {"got": "plain words"}


def test_non_2xx_fails_naming_the_host(base: str) -> None:
    result = run_http({"method": "GET", "url": f"{base}/teapot"})
    assert result.status is RunStatus.FAILED
    assert result.trace[-1].message == "HTTP 418 from 127.0.0.1"


def test_a_header_value_http_cannot_carry_says_which_header_and_character(base: str) -> None:
    """A templated header value with an accent (or a line break) fails before sending, naming the
    header and the character, instead of the client's "'ascii' codec can't encode" words."""
    result = run_http({"method": "GET", "url": f"{base}/ok", "headers": {"X-Name": "Zoë", "Accept": "*/*"}})
    assert result.status is RunStatus.FAILED
    assert result.trace[0].attempts == 1
    assert result.trace[0].message == (
        "header 'X-Name' holds 'ë' (U+00EB), which an HTTP header value cannot carry: header values are "
        "printable ASCII; percent-encode the value or send it in params.body instead"
    )
    broken = run_http({"method": "GET", "url": f"{base}/ok", "headers": {"X-Note": "a\nInjected: 1"}})
    assert (broken.trace[0].message or "").startswith("header 'X-Note' holds '\\n' (U+000A)")


def test_a_body_that_says_json_but_is_not_stays_text(base: str) -> None:
    result = run_http({"method": "GET", "url": f"{base}/bad-json"})
    assert result.trace[0].output == {"status": 200, "body": "{not json"}


def test_a_request_timeout_says_so(base: str) -> None:
    result = run_http({"method": "GET", "url": f"{base}/slow", "timeoutMs": 200})
    assert result.status is RunStatus.FAILED
    assert result.trace[-1].message == "HTTP request to 127.0.0.1 timed out after 200 ms"


def test_a_refused_connection_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_http({"method": "GET", "url": f"http://127.0.0.1:{port}/x"})
    assert result.status is RunStatus.FAILED
    assert (result.trace[-1].message or "").startswith("HTTP request to 127.0.0.1 failed: cannot connect (")


def test_a_url_that_is_not_http_fails_clearly() -> None:
    result = run_http({"method": "GET", "url": "{{inputs.u}}"}, inputs={"u": "ftp://files.example/x"})
    assert (
        result.trace[-1].message
        == "'ftp://files.example/x' is not an http(s) URL: write it as https://host/path"
    )
