"""The step gate's kept connection (device_bridge/kept_http.py) against a real socket server that
answers as told: one connection for many requests, a connection the server dropped while idle, an
answer cut short, chunks, and no proxy bypassed."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pytest

from device_bridge.kept_http import AnswerError, KeptConnection, kept_connection, multipart_form

JSON_ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'

# What the server does with one request: gets the request line, headers and body, and the socket.
Behaviour = Callable[[bytes, dict[bytes, bytes], bytes, socket.socket], None]


def answer(data: bytes) -> Behaviour:
    def behave(_line: bytes, _headers: dict[bytes, bytes], _body: bytes, conn: socket.socket) -> None:
        conn.sendall(data)

    return behave


class Server:
    """A server on a free port; `plan` holds one behaviour per request to come (then plain 200s)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.plan: list[Behaviour] = []
        self.requests: list[tuple[bytes, dict[bytes, bytes], bytes]] = []
        self.accepted = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader: BinaryIO = conn.makefile("rb")
        try:
            while line := reader.readline():
                headers: dict[bytes, bytes] = {}
                while (header := reader.readline()).strip():
                    name, _, value = header.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get(b"content-length", b"0")))
                self.requests.append((line, headers, body))
                (self.plan.pop(0) if self.plan else answer(JSON_ANSWER))(line, headers, body, conn)
        except OSError:
            pass
        finally:
            reader.close()
            conn.close()

    def drop_connections(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):  # closed already
                conn.shutdown(socket.SHUT_RDWR)
        self.conns.clear()

    def close(self) -> None:
        self.sock.close()
        self.drop_connections()


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


@pytest.fixture
def kept(server: Server) -> Iterator[KeptConnection]:
    connection = KeptConnection("http", "127.0.0.1", server.port, "/prefix")
    yield connection
    connection.close()


def test_requests_go_over_one_connection_with_the_body_and_headers_given(
    server: Server, kept: KeptConnection
) -> None:
    for n in range(3):
        status, body = kept.post("/gate", b'{"seq":%d}' % n, {"Authorization": "Bearer t"}, 5)
        assert (status, body) == (200, b'{"ok":true}')
    assert kept.connects == 1
    assert server.accepted == 1
    line, headers, body = server.requests[2]
    assert line == b"POST /prefix/gate HTTP/1.1\r\n"
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"authorization"] == b"Bearer t"
    assert headers[b"content-type"] == b"application/json"
    assert body == b'{"seq":2}'


def test_a_connection_the_server_dropped_while_idle_is_replaced(server: Server, kept: KeptConnection) -> None:
    assert kept.post("/gate", b"{}", {}, 5)[0] == 200
    server.drop_connections()
    assert kept.post("/gate", b"{}", {}, 5) == (200, b'{"ok":true}')
    assert kept.connects == 2


def test_a_kept_connection_closed_under_a_request_sends_it_once_more(
    server: Server, kept: KeptConnection
) -> None:
    assert kept.post("/gate", b"{}", {}, 5)[0] == 200

    def close_unanswered(_line: bytes, _h: dict[bytes, bytes], _b: bytes, conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    server.plan.append(close_unanswered)
    assert kept.post("/gate", b'{"again":1}', {}, 5)[0] == 200
    assert [body for _, _, body in server.requests[-2:]] == [b'{"again":1}', b'{"again":1}']
    assert kept.connects == 2


def test_a_new_connection_closed_before_the_answer_is_an_error(server: Server, kept: KeptConnection) -> None:
    def close_unanswered(_line: bytes, _h: dict[bytes, bytes], _b: bytes, conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    server.plan.append(close_unanswered)
    with pytest.raises(ConnectionError, match="closed the connection before answering"):
        kept.post("/gate", b"{}", {}, 5)
    assert len(server.requests) == 1  # not sent twice: it may have been done


def test_chunked_answers_interim_answers_and_connection_close_are_read(
    server: Server, kept: KeptConnection
) -> None:
    server.plan += [
        answer(b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'),
        answer(b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"),
    ]
    assert kept.post("/gate", b"{}", {}, 5) == (200, b'{"a":1}')
    server.plan.insert(0, answer(b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_ANSWER))  # interim: skipped
    assert kept.post("/gate", b"{}", {}, 5) == (200, b'{"ok":true}')
    assert kept.post("/gate", b"{}", {}, 5) == (404, b"{}")
    assert kept.post("/gate", b"{}", {}, 5)[0] == 200
    assert kept.connects == 2  # the server said it closes: a new connection for the third


def test_what_is_not_http_or_ends_early_is_an_answer_error(server: Server, kept: KeptConnection) -> None:
    server.plan += [
        answer(b"SSH-2.0-OpenSSH\r\n"),
        answer(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{}"),
    ]
    with pytest.raises(AnswerError, match="not HTTP"):
        kept.post("/gate", b"{}", {}, 5)

    def cut(_line: bytes, _h: dict[bytes, bytes], _b: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{}")
        conn.shutdown(socket.SHUT_RDWR)

    server.plan[:] = [cut]
    with pytest.raises(AnswerError, match="after 2 of 50 bytes"):
        kept.post("/gate", b"{}", {}, 5)


def test_a_server_that_does_not_answer_times_out(server: Server, kept: KeptConnection) -> None:
    server.plan.append(lambda *_: None)
    with pytest.raises(TimeoutError):
        kept.post("/gate", b"{}", {}, 0.2)


def test_no_kept_connection_past_a_proxy_or_for_other_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    found = kept_connection("https://phoneflow.example:8443/base/")
    assert found is not None
    assert (found.tls, found.host, found.port, found.prefix) == (True, "phoneflow.example", 8443, "/base")
    assert kept_connection("ftp://phoneflow.example") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert kept_connection("https://phoneflow.example") is None  # httpx goes through the proxy


def test_a_multipart_form_reads_back_as_its_fields_and_file() -> None:
    body, content_type = multipart_form(
        {"name": "frame-00001.jpg", "meta": '{"seq": 1}'},
        "file",
        ('a "b".jpg', b"\xff\xd8\r\n--x", "image/jpeg"),
    )
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    parts = [
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]
    assert parts == [
        ("name", None, b"frame-00001.jpg"),
        ("meta", None, b'{"seq": 1}'),
        ("file", "a %22b%22.jpg", b"\xff\xd8\r\n--x"),
    ]
