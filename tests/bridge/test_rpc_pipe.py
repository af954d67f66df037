"""Requests sent ahead on one kept connection are answered in order, to whichever thread asks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from device_bridge.rpc_pipe import RpcPipe


class _Handler(BaseHTTPRequestHandler):
    """Answers each request on a connection in turn, as NanoHTTPD does: `slow` after 0.3 s,
    `close` by closing the connection without an answer, anything else with its own body."""

    protocol_version = "HTTP/1.1"
    done: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body == b"close":
            self.close_connection = True
            return
        if body == b"slow":
            time.sleep(0.3)
        self.done.append(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    done: list[bytes] = []
    handler = type("Handler", (_Handler,), {"done": done})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], done
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pipe(port: int, opened: list[int]) -> RpcPipe:
    def connect() -> socket.socket:
        opened.append(1)
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    return RpcPipe(connect, f"127.0.0.1:{port}", "/jsonrpc/0", {"Content-Type": "application/json"})


def test_a_request_sent_behind_a_slow_one_is_done_after_it(server: tuple[int, list[bytes]]) -> None:
    port, done = server
    opened: list[int] = []
    pipe = _pipe(port, opened)
    slow = pipe.send(b"slow")
    assert pipe.waiting
    started = time.monotonic()
    # Sent at once, answered after the slow one; its answer is read past the slow one's.
    assert pipe.post(b"tap") == (200, b"tap")
    assert time.monotonic() - started >= 0.25
    assert done == [b"slow", b"tap"]
    assert pipe.answer(slow) == (200, b"slow")
    assert not pipe.waiting
    assert pipe.post(b"again") == (200, b"again")
    assert len(opened) == 1
    pipe.close()


def test_each_thread_gets_its_own_answer(server: tuple[int, list[bytes]]) -> None:
    port, _done = server
    pipe = _pipe(port, [])
    answers: dict[int, bytes] = {}

    def ask(i: int) -> None:
        answers[i] = pipe.post(b"x" * (i * 5000))[1]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert answers == {i: b"x" * (i * 5000) for i in range(1, 9)}
    pipe.close()


def test_a_connection_that_closes_fails_the_requests_waiting_on_it(server: tuple[int, list[bytes]]) -> None:
    port, _done = server
    opened: list[int] = []
    pipe = _pipe(port, opened)
    closing = pipe.send(b"close")
    behind = pipe.send(b"never")
    with pytest.raises(ConnectionError):
        pipe.answer(behind)
    with pytest.raises(ConnectionError):
        pipe.answer(closing)
    assert pipe.post(b"next") == (200, b"next")  # on a new connection
    assert len(opened) == 2
    pipe.close()
