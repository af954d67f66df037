"""One HTTP/1.1 connection to the server kept open, for the request a served run makes before every
step (the step gate, `DeviceApi.gate`) and the uploads (`Uploader`: reports and each step's frame).

httpx spends about half a millisecond of CPU on each request (URL and header models, the
connection pool, h11's state machine, cookies); at a step gate per step that was most of what the
bridge spent per step. The standard library's `http.client` does a kept-alive POST for a tenth of
that: this module holds one such connection per server (TLS when the URL is https, verified as
httpx verifies: `SSL_CERT_FILE`, `SSL_CERT_DIR`, else certifi's bundle). A connection the server
closed while it was idle (uvicorn drops one after 5 s) is seen before it is used again, and a
request that met a connection closed under it before any answer came is sent once more on a new one.
`multipart_form` writes a form with one file (urllib3's encoder, as requests sends it).

`kept_connection(url)` gives None when the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`,
`ALL_PROXY`): the caller then goes through httpx, which honours it.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from urllib3 import encode_multipart_formdata

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


def exchange(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, bytes, bool]:
    """POST `body` on `conn`; (status, body, whether the server closes the connection after it).

    ConnectionError when the connection closed before an answer began; `AnswerError` when what came
    is not HTTP or ends early; OSError (a timeout among them) otherwise."""
    try:
        conn.request("POST", path, body, dict(headers))
        answer = conn.getresponse()
        data = answer.read()
    except http.client.RemoteDisconnected as exc:
        raise ConnectionError("the server closed the connection before answering") from exc
    except http.client.IncompleteRead as exc:
        got = len(exc.partial)
        raise AnswerError(
            f"the server's answer ended after {got} of {got + (exc.expected or 0)} bytes"
        ) from exc
    except http.client.BadStatusLine as exc:
        raise AnswerError(f"the server's answer is not HTTP: {str(exc)[:80]!r}") from exc
    except http.client.HTTPException as exc:
        raise AnswerError(f"the server's answer could not be read: {type(exc).__name__}: {exc}") from exc
    return answer.status, data, answer.will_close


class KeptConnection:
    """POSTs to one server over a connection kept open between requests (thread-safe: one at a time)."""

    def __init__(self, scheme: str, host: str, port: int | None, prefix: str = "") -> None:
        self.tls = scheme == "https"
        self.host = host
        self.port = port or (443 if self.tls else 80)
        self.prefix = prefix
        self._conn: http.client.HTTPConnection | None = None
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self.connects = 0  # connections opened (for tests and diagnostics)

    def post(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """POST `body` to `path` under the URL's prefix, with `headers`; (HTTP status, body) of the
        answer. Raises OSError (timeouts, refused or broken connections) or `AnswerError` when the
        answer is not HTTP."""
        sent = {"User-Agent": _USER_AGENT, "Content-Type": content_type, **headers}
        with self._lock:
            reused = self._usable()
            try:
                return self._exchange(self.prefix + path, body, sent, timeout_s)
            except ConnectionError as exc:
                self._close()
                # Closed by the server between our look and our request: nothing was answered, so
                # nothing was done; once more on a new connection.
                if not reused or isinstance(exc, AnswerError):
                    raise
                return self._exchange(self.prefix + path, body, sent, timeout_s)
            except BaseException:
                self._close()
                raise

    def _usable(self) -> bool:
        """Whether a connection is open and still usable (an idle one the server closed reads as EOF)."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is None:
            self._close()
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable:  # an idle connection has nothing to read unless the server closed it
            self._close()
            return False
        return True

    def _connect(self, timeout_s: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.tls:
            if self._context is None:
                self._context = _tls_context()
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout_s, context=self._context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        conn.connect()  # here, so that a refused connection is an OSError of this call
        self.connects += 1
        self._conn = conn
        return conn

    def _exchange(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> tuple[int, bytes]:
        conn = self._conn
        if conn is None or conn.sock is None:
            conn = self._connect(timeout_s)
        else:
            conn.sock.settimeout(timeout_s)
        status, data, close = exchange(conn, path, body, headers)
        if close:
            self._close()
        return status, data

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def multipart_form(
    fields: dict[str, str], file_field: str, file: tuple[str, bytes, str]
) -> tuple[bytes, str]:
    """A `multipart/form-data` body of `fields` and one file (`(name, data, content type)`), and its
    Content-Type (with the boundary)."""
    parts: dict[str, str | tuple[str, bytes, str]] = {**fields, file_field: file}
    return encode_multipart_formdata(parts)
