"""The JSON-RPC stream to the phone (device_bridge/rpc_stream.py) against a socket that answers as
told: requests on one stream, answers framed by length, chunks or the stream's end, interim answers,
and what is not HTTP or ends early."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from device_bridge.rpc_stream import AnswerError, RpcStream, read_answer

Reads = Callable[..., Callable[[], tuple[int, bytes, bool]]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@pytest.fixture
def answers() -> Iterator[Reads]:
    """`answers(*chunks)`: `read_answer` over a socket whose peer wrote `chunks` (each its own send)
    and then closed it."""
    opened: list[socket.socket] = []

    def make(*chunks: bytes) -> Callable[[], tuple[int, bytes, bool]]:
        ours, theirs = socket.socketpair()
        opened.append(ours)
        ours.settimeout(5)
        with theirs:
            for chunk in chunks:
                theirs.sendall(chunk)
        buf = bytearray()
        return lambda: read_answer(ours, buf)

    yield make
    for sock in opened:
        sock.close()


def test_answers_framed_by_length_back_to_back_and_split_anywhere(answers: Reads) -> None:
    read = answers(OK + OK[:30], OK[30:] + b"HTTP/1.1 204 No Content\r\n\r\n")
    assert read() == (200, b'{"ok":true}', False)
    assert read() == (200, b'{"ok":true}', False)
    assert read() == (204, b"", False)
    with pytest.raises(ConnectionError, match="closed the stream before answering"):
        read()


def test_chunks_interim_answers_close_and_an_answer_ending_with_the_stream(answers: Reads) -> None:
    read = answers(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b'4\r\n{"a"\r\n3;x=1\r\n:1}\r\n0\r\nT: 1\r\n\r\n',
        b"HTTP/1.1 500 Internal Error\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\n\r\nto the end",
    )
    assert read() == (200, b'{"a":1}', False)
    assert read() == (500, b"{}", True)
    assert read() == (200, b"to the end", True)


@pytest.mark.parametrize(
    ("sent", "words"),
    [
        (b"SSH-2.0-OpenSSH\r\n", "not HTTP"),
        (b"HTTP/1.1 OK\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", "after 2 of 50 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "ended in its headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}", "after 2 of 4 bytes"),
    ],
)
def test_what_is_not_http_or_ends_early_is_an_answer_error(answers: Reads, sent: bytes, words: str) -> None:
    with pytest.raises(AnswerError, match=words):
        answers(sent)()


class Phone:
    """Stands in for the adb device: each `create_connection` is a new stream to a thread that reads
    requests and answers each from `plan` (then `OK`); it keeps the requests it read."""

    def __init__(self) -> None:
        self.plan: list[bytes | None] = []
        self.requests: list[bytes] = []
        self.opened: list[socket.socket] = []

    def create_connection(self, _network: Any, port: int) -> socket.socket:
        assert port == 9008
        ours, theirs = socket.socketpair()
        self.opened.append(ours)
        threading.Thread(target=self._serve, args=(theirs,), daemon=True).start()
        return ours

    def _serve(self, sock: socket.socket) -> None:
        with sock, sock.makefile("rb") as reader:
            while line := reader.readline():
                length = 0
                while (header := reader.readline()).strip():
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                self.requests.append(line + reader.read(length))
                reply = self.plan.pop(0) if self.plan else OK
                if reply is None:
                    return  # the stream ends without an answer
                sock.sendall(reply)


@pytest.fixture
def phone() -> Iterator[Phone]:
    phone = Phone()
    yield phone
    for stream in phone.opened:
        stream.close()


def test_calls_share_one_stream_until_it_breaks(phone: Phone) -> None:
    stream = RpcStream(phone, 9008, 5)
    assert stream.post(b'{"method":"a"}') == (200, b'{"ok":true}')
    assert stream.post(b'{"method":"b"}') == (200, b'{"ok":true}')
    assert len(phone.opened) == 1
    assert phone.requests == [
        b'POST /jsonrpc/0 HTTP/1.1\r\n{"method":"a"}',
        b'POST /jsonrpc/0 HTTP/1.1\r\n{"method":"b"}',
    ]
    phone.plan.append(None)
    with pytest.raises(ConnectionError):
        stream.post(b"{}")
    assert stream.post(b"{}") == (200, b'{"ok":true}')  # a new stream
    assert len(phone.opened) == 2


def test_a_phone_that_does_not_answer_times_out(phone: Phone) -> None:
    stream = RpcStream(phone, 9008, 0.2)
    phone.plan.append(b"")  # answers nothing, keeps the stream open
    with pytest.raises(TimeoutError):
        stream.post(b"{}")
