"""A real HTTP server on 127.0.0.1 that receives webhooks for the tests, and a signature check written
from the Standard Webhooks spec by hand (hmac + base64), independent of the server's library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers each with the next of `answers` (status, body), then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[tuple[int, str]] = []
        self._changed = threading.Condition()
        self.url = ""

    def answer_next(self, *answers: tuple[int, str]) -> None:
        with self._changed:
            self.answers.extend(answers)

    def record(self, item: Received) -> tuple[int, str]:
        with self._changed:
            self.received.append(item)
            self._changed.notify_all()
            return self.answers.pop(0) if self.answers else (200, "thanks")

    def wait_for(self, count: int, timeout_s: float = 15) -> list[Received]:
        """The first `count` requests, waiting for them to arrive."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} of {count} webhooks arrived within {timeout_s} s"
                self._changed.wait(left)
            return list(self.received[:count])


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A receiver listening on a free port of 127.0.0.1 until the block ends."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, text = receiver.record(Received(self.path, headers, body))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default log
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def signature_is_valid(secret: str, item: Received, tolerance_s: int = 300) -> bool:
    """The spec's check, by hand: HMAC-SHA256 over `id.timestamp.body` keyed with the base64-decoded
    secret (without `whsec_`), compared with each `v1,` signature; the timestamp must be recent."""
    message_id = item.headers["webhook-id"]
    timestamp = item.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + item.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in item.headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False
