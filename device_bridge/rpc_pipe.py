"""HTTP/1.1 POSTs to a port on the phone over one kept adb stream, sent ahead of their answers.

The uiautomator2 server on a phone (NanoHTTPD) and the virtual phone's server read one connection's
requests in order and answer each before they read the next, so a request written behind another is
done after it. `RpcPipe.send` writes a request and returns at once; `answer` reads the answers in
the order their requests went (whichever thread reads first hands the earlier ones to theirs). A
step's frame uses this: its screenshot is asked for on the connection the steps use, and the next
call that changes the screen goes right behind it instead of waiting for the picture's round trip.

The answers are read as `rpc_stream` reads them, from one buffer kept per connection (bytes of the
next answer may come with the end of one). A connection that broke fails every request still
waiting on it; the next `send` opens a new one.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Callable

from device_bridge.rpc_stream import read_answer

__all__ = ["RpcPipe", "Ticket"]


class Ticket:
    """A request sent on a pipe; `RpcPipe.answer(ticket)` gives its answer."""

    __slots__ = ("_stream", "answer", "error")

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self.answer: tuple[int, bytes] | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.answer is not None or self.error is not None


class _Stream:
    """One connection: its socket, its read buffer, and the requests sent on it not answered yet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()  # what was read past the last answer (the next one's start)
        self.waiting: deque[Ticket] = deque()
        self.read_lock = threading.Lock()
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        """The connection broke: every request waiting on it fails with `error`; it closes."""
        if self.error is None:
            self.error = error
        while self.waiting:
            ticket = self.waiting.popleft()
            if not ticket.done:
                ticket.error = self.error
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # a thread reading it gets the end at once
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class RpcPipe:
    """POSTs to `path` on connections `connect()` opens (thread-safe: any thread may send or read)."""

    def __init__(
        self, connect: Callable[[], socket.socket], host: str, path: str, headers: dict[str, str]
    ) -> None:
        self._connect = connect
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._stream: _Stream | None = None
        self._lock = threading.Lock()  # sending, and opening or closing the connection

    @property
    def waiting(self) -> bool:
        """Whether a request sent on the pipe has no answer read yet."""
        stream = self._stream
        return stream is not None and bool(stream.waiting)

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one request and wait for its answer (after those of the requests sent before it)."""
        return self.answer(self.send(body))

    def send(self, body: bytes) -> Ticket:
        """Write a request behind those sent before it; OSError when the connection cannot take it."""
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        with self._lock:
            stream = self._stream
            if stream is None or stream.error is not None:
                stream = self._stream = _Stream(self._connect())
            ticket = Ticket(stream)
            stream.waiting.append(ticket)
            try:
                stream.sock.sendall(request)
            except OSError as exc:
                stream.fail(exc)
                raise
        return ticket

    def answer(self, ticket: Ticket) -> tuple[int, bytes]:
        """The answer to `ticket`'s request: (HTTP status, body). Raises OSError (ConnectionError when
        the answer could not be read, the connection broke, or the phone closed it first)."""
        stream = ticket._stream
        while not ticket.done:
            with stream.read_lock:
                if ticket.done:
                    break
                if stream.error is not None:
                    ticket.error = stream.error
                    break
                first = stream.waiting[0]  # requests are answered in the order they were sent
                try:
                    status, data, close = read_answer(stream.sock, stream.buf)
                except (OSError, ValueError) as exc:
                    stream.fail(exc if isinstance(exc, OSError) else ConnectionError(str(exc)))
                    continue
                stream.waiting.popleft()
                first.answer = (status, data)
                if close:
                    stream.fail(ConnectionError("the phone closed the connection after an answer"))
        if ticket.error is not None:
            raise ticket.error
        assert ticket.answer is not None
        return ticket.answer

    def close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.fail(ConnectionError("the connection to the phone was closed"))
