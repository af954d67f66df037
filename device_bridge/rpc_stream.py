"""The JSON-RPC connection to the uiautomator2 server on a phone: HTTP/1.1 POSTs on one adb stream
kept open (the uiautomator2 client opens a new adb connection for every call).

Lean on purpose, because a step makes two or three of these calls and the bridge drives many
phones from one process: `http.client` spends ~0.15 ms of CPU on a call here (a file object made for
every answer, a `readline` per header line, the email package parsing the headers), this ~0.03 ms
(the request in one write; the answer's head and body usually in one `recv`). What it reads is what
the uiautomator2 server sends: an answer framed by Content-Length; chunks and an answer that ends
with the stream are read too, and interim 1xx answers skipped. Anything else is an `AnswerError`;
the driver then closes the stream and makes the call through the uiautomator2 client instead.
"""

from __future__ import annotations

import socket

import adbutils

_MAX_HEAD = 65536
_RECV_SIZE = 65536


class AnswerError(ConnectionError):
    """The phone's answer could not be read as HTTP/1.1."""


class RpcStream:
    """POSTs to `/jsonrpc/0` on `port` of the phone, over one adb stream opened at the first call.

    Not thread-safe: the driver keeps one per thread. `post` raises OSError (timeouts, a broken
    stream; `AnswerError` among them) when the exchange failed; the stream is then closed.
    """

    def __init__(self, device: adbutils.AdbDevice, port: int, timeout_s: float) -> None:
        self._device = device
        self._port = port
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        # What the uiautomator2 client sends (no gzip: NanoHTTPD's leaks).
        self._head = (
            f"POST /jsonrpc/0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: uiautomator2\r\n"
            "Accept-Encoding: \r\nContent-Type: application/json\r\nContent-Length: "
        ).encode("ascii")

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one request; (HTTP status, body) of its answer."""
        try:
            if self._sock is None:
                sock = self._device.create_connection(adbutils.Network.TCP, self._port)
                sock.settimeout(self._timeout_s)
                self._sock = sock
            self._sock.sendall(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
            status, data, close = read_answer(self._sock, self._buf)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf.clear()


def read_answer(sock: socket.socket, buf: bytearray) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 answer from `sock` (`buf` holds what was read past the last one): (status, body,
    whether the stream must be closed after it).

    ConnectionError when the stream ends before an answer begins, `AnswerError` when what came is
    not HTTP or ends early, OSError (a timeout) from the socket."""
    while True:
        lines = _head(sock, buf)
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise AnswerError(f"the phone's answer is not HTTP: {lines[0][:80]!r}")
        status = int(parts[1])
        if not 100 <= status < 200:
            break
    length: int | None = None
    close, chunked = parts[0] == b"HTTP/1.0", False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit():
                raise AnswerError(f"the phone's answer has a bad Content-Length: {value[:40]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = close or value == b"close"
    if chunked:
        return status, _chunks(sock, buf), close
    if length is not None:
        return status, _exactly(sock, buf, length), close
    if status in (204, 304):
        return status, b"", close
    while _fill(sock, buf):  # the answer ends with the stream
        pass
    body = bytes(buf)
    buf.clear()
    return status, body, True


def _fill(sock: socket.socket, buf: bytearray) -> bool:
    chunk = sock.recv(_RECV_SIZE)
    buf += chunk
    return bool(chunk)


def _head(sock: socket.socket, buf: bytearray) -> list[bytes]:
    """The status line and header lines of the next answer (consumed from `buf`)."""
    while True:
        end, size = buf.find(b"\r\n\r\n"), 4
        if end < 0 and (end := buf.find(b"\n\n")) >= 0:
            size = 2
        if end >= 0:
            break
        if b"\n" in buf and not buf.startswith(b"HTTP/"):
            first = bytes(buf[: buf.find(b"\n")])
            raise AnswerError(f"the phone's answer is not HTTP: {first[:80]!r}")
        if len(buf) > _MAX_HEAD:
            raise AnswerError("the phone's answer has a head over 64 KiB")
        if not _fill(sock, buf):
            if not buf:
                raise ConnectionError("the phone closed the stream before answering")
            raise AnswerError("the phone's answer ended in its headers")
    head = bytes(buf[:end])
    del buf[: end + size]
    return head.splitlines() or [b""]


def _exactly(sock: socket.socket, buf: bytearray, size: int) -> bytes:
    while len(buf) < size:
        if not _fill(sock, buf):
            raise AnswerError(f"the phone's answer ended after {len(buf)} of {size} bytes")
    data = bytes(buf[:size])
    del buf[:size]
    return data


def _line(sock: socket.socket, buf: bytearray) -> bytes:
    while (end := buf.find(b"\n")) < 0:
        if len(buf) > _MAX_HEAD or not _fill(sock, buf):
            raise AnswerError("the phone's chunked answer ended early")
    line = bytes(buf[: end + 1])
    del buf[: end + 1]
    return line


def _chunks(sock: socket.socket, buf: bytearray) -> bytes:
    data = bytearray()
    while True:
        size_field = _line(sock, buf).split(b";")[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise AnswerError(
                f"the phone's chunked answer has a bad chunk size: {size_field[:40]!r}"
            ) from None
        if size == 0:
            break
        data += _exactly(sock, buf, size)
        _line(sock, buf)
    while _line(sock, buf).strip():  # trailers
        pass
    return bytes(data)
