"""One HTTP/1.1 connection to the server kept open, for the request a served run makes before every
step (the step gate, `DeviceApi.gate`) and the upload of each step's frame (`Uploader`).

httpx spends about half a millisecond of CPU on each request (URL and header models, the
connection pool, h11's state machine, cookies); at a step gate per step that was most of what the
bridge spent per step. This client does only what the gate needs: a POST of a JSON body over one
socket (TLS when the URL is https, verified as httpx verifies: `SSL_CERT_FILE`, `SSL_CERT_DIR`, else
certifi's bundle), an answer framed by Content-Length, chunks or the end of the stream;
`multipart_form` writes a form with one file as httpx would. A
connection the server closed while it was idle (uvicorn drops one after 5 s) is seen before it is
used again, and a request that met a connection closed under it before any answer came is sent
once more on a new one.

`kept_connection(url)` gives None when the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`,
`ALL_PROXY`): the caller then goes through httpx, which honours it.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import ssl
import threading
import urllib.request
from urllib.parse import urlsplit

_MAX_LINE = 65536
_RECV_SIZE = 65536
_USER_AGENT = "phoneflow-bridge"


class AnswerError(ConnectionError):
    """The server's answer could not be read as HTTP/1.1."""


def kept_connection(url: str) -> KeptConnection | None:
    """A kept connection to the server at `url` (its scheme, host, port and path prefix), or None when
    it cannot be one (a proxy is configured, or the URL is not http(s))."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    proxies = urllib.request.getproxies_environment()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    return KeptConnection(parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))


def _tls_context() -> ssl.SSLContext:
    """The certificates httpx trusts (it reads the same variables)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class KeptConnection:
    """POSTs to one server over a connection kept open between requests (thread-safe: one at a time)."""

    def __init__(self, scheme: str, host: str, port: int | None, prefix: str = "") -> None:
        self.tls = scheme == "https"
        self.host = host
        self.port = port or (443 if self.tls else 80)
        self.prefix = prefix
        name = f"[{host}]" if ":" in host else host
        default_port = self.port == (443 if self.tls else 80)
        self._host_header = name if default_port else f"{name}:{self.port}"
        self._sock: socket.socket | None = None
        self._reader: AnswerReader | None = None
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self.connects = 0  # connections opened (for tests and diagnostics)

    def post(
        self,
        path: str,
        body: bytes,
        headers: bytes,
        timeout_s: float,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """POST `body` to `path` under the URL's prefix, with `headers` (`Name: value\\r\\n` each);
        (HTTP status, body) of the answer. Raises OSError (timeouts, refused or broken connections)
        or `AnswerError` when the answer is not HTTP."""
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"User-Agent: {_USER_AGENT}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode("ascii")
        request = head + headers + b"\r\n" + body
        with self._lock:
            reused = self._usable()
            try:
                return self._exchange(request, timeout_s)
            except (ConnectionError, ssl.SSLEOFError) as exc:
                self._close()
                # Closed by the server between our look and our request: nothing was answered, so
                # nothing was done; once more on a new connection.
                if not reused or isinstance(exc, AnswerError):
                    raise
                return self._exchange(request, timeout_s)
            except BaseException:
                self._close()
                raise

    def _usable(self) -> bool:
        """Whether a connection is open and still usable (an idle one the server closed reads as EOF)."""
        sock = self._sock
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable:  # an idle connection has nothing to read unless the server closed it
            self._close()
            return False
        return True

    def _connect(self, timeout_s: float) -> tuple[socket.socket, AnswerReader]:
        sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            if self._context is None:
                self._context = _tls_context()
            try:
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.connects += 1
        self._sock, self._reader = sock, AnswerReader(sock)
        return self._sock, self._reader

    def _exchange(self, request: bytes, timeout_s: float) -> tuple[int, bytes]:
        if self._sock is None or self._reader is None:
            sock, reader = self._connect(timeout_s)
        else:
            sock, reader = self._sock, self._reader
            sock.settimeout(timeout_s)
        sock.sendall(request)
        status, body, close = reader.read_answer()
        if close:
            self._close()
        return status, body

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None


class AnswerReader:
    """Reads HTTP/1.1 answers from a socket: one `recv` for a small answer, head and body together
    (a file object's `readline` per header line cost more CPU than the rest of a call). Interim 1xx
    answers are skipped, as clients must."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        chunk = self._sock.recv(_RECV_SIZE)
        self._buf += chunk
        return bool(chunk)

    def _exactly(self, size: int) -> bytes:
        while len(self._buf) < size:
            if not self._fill():
                raise AnswerError(f"the server's answer ended after {len(self._buf)} of {size} bytes")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > _MAX_LINE or not self._fill():
                raise AnswerError("the server's chunked answer ended early")
        line = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return line

    def _head(self) -> list[bytes]:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            size = 4
            if end < 0 and (end := buf.find(b"\n\n")) >= 0:
                size = 2
            if end >= 0:
                break
            if b"\n" in buf and not buf.startswith(b"HTTP/"):
                first = bytes(buf[: buf.find(b"\n") + 1])
                raise AnswerError(f"the server's answer is not HTTP: {first[:80]!r}")
            if len(buf) > _MAX_LINE:
                raise AnswerError("the server's answer has a head over 64 KiB")
            if not self._fill():
                if not buf:
                    raise ConnectionError("the server closed the connection before answering")
                raise AnswerError("the server's answer ended in its headers")
        head = bytes(buf[:end])
        del buf[: end + size]
        return head.splitlines()

    def read_answer(self) -> tuple[int, bytes, bool]:
        """One answer: (status, body, whether the connection must be closed).

        ConnectionError when the stream ends before an answer begins (the server closed it),
        `AnswerError` when what came is not HTTP or ends early."""
        while True:
            lines = self._head()
            parts = lines[0].split(None, 2) if lines else []
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise AnswerError(f"the server's answer is not HTTP: {(lines or [b''])[0][:80]!r}")
            status = int(parts[1])
            if not 100 <= status < 200:
                break
        length: int | None = None
        close, chunked = parts[0] == b"HTTP/1.0", False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = close or value == b"close"
        if chunked:
            body = self._chunks()
        elif length is not None:
            body = self._exactly(length)
        elif status in (204, 304):
            body = b""
        else:
            while self._fill():
                pass
            body, close = bytes(self._buf), True
            self._buf.clear()
        return status, body, close

    def _chunks(self) -> bytes:
        data = bytearray()
        while size := int(self._line().split(b";")[0], 16):
            data += self._exactly(size)
            self._line()
        while self._line().strip():  # trailers
            pass
        return bytes(data)


def multipart_form(
    fields: dict[str, str], file_field: str, file: tuple[str, bytes, str]
) -> tuple[bytes, str]:
    """A `multipart/form-data` body of `fields` and one file (`(name, data, content type)`), and its
    Content-Type (with the boundary)."""
    boundary = secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    filename, data, content_type = file
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(file_field)}"; '
            f'filename="{_quoted(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _quoted(value: str) -> str:
    """A form parameter inside double quotes, escaped as browsers and httpx do."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
