"""An HTTP/1.1 server inside the virtual device, on 127.0.0.1, reached through adb's `tcp:PORT`.

On a phone, in-device servers (uiautomator2's NanoHTTPD, Appium's UiAutomator2 server) listen on
a device port that the host reaches through `adb forward`. Here such a server listens on an
ephemeral loopback port of the host, and the device maps its device port to it (the adb
`tcp:PORT` service pipes to it). `DeviceHttpServer` holds what they share: listening, keep-alive
connections, `h11` framing (a request may arrive split over many adb WRTE packets); a subclass
answers `route(method, target, body)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import h11

__all__ = ["DeviceHttpServer", "Reply"]

logger = logging.getLogger(__name__)

_MAX_BODY = 16 * 1024 * 1024
_READ_CHUNK = 65536
_BACKLOG = 100

Reply = tuple[int, bytes, bytes]
"""(HTTP status, content type, body)."""


class DeviceHttpServer:
    """Serves `route()` on the device's asyncio loop; `start()` returns the host port to map."""

    name = "in-device HTTP server"

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._starting: asyncio.Future[None] | None = None
        self.port: int | None = None

    async def route(self, method: bytes, target: bytes, body: bytes) -> Reply:
        raise NotImplementedError

    async def start(self) -> int:
        """Listen on 127.0.0.1 on an ephemeral port and return that port."""
        if self._server is not None and self.port is not None:
            return self.port
        # Returns without yielding to the loop, so that the caller maps the device port before
        # the loop handles anything else: clients poll right after the server's process starts,
        # and a refused first poll costs them a retry interval (0.5 s for uiautomator2). The socket
        # listens at once (connections wait in the kernel's backlog); asyncio starts accepting them
        # on the next loop iteration.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(_BACKLOG)
            sock.setblocking(False)
            self._server = await asyncio.start_server(self._serve, sock=sock, start_serving=False)
        except BaseException:
            sock.close()
            raise
        self._starting = asyncio.ensure_future(self._server.start_serving())
        self.port = int(sock.getsockname()[1])
        logger.info("%s listening on 127.0.0.1:%d", self.name, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every open connection (a later `/ping` then fails)."""
        server, self._server = self._server, None
        if server is None:
            return
        starting, self._starting = self._starting, None
        if starting is not None:
            with contextlib.suppress(Exception):
                await starting
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await server.wait_closed()
        self.port = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request; nothing to answer
        except asyncio.CancelledError:
            # `stop()` cancels open connections; a handler that ends cancelled is logged by
            # asyncio's stream server as an error, so end normally instead.
            pass
        except Exception:  # a bug here must not go unnoticed, nor take the server down
            logger.exception("%s: connection failed", self.name)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                request = await _read_request(conn, reader, writer)
            except (h11.RemoteProtocolError, _BodyTooLarge) as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, writer, 400, b"text/plain", f"bad HTTP request: {exc}\n".encode())
                return
            if request is None:
                return
            method, target, body = request
            status, content_type, payload = await self.route(method, target, body)
            await _send(conn, writer, status, content_type, payload)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()


class _BodyTooLarge(Exception):
    pass


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[bytes, bytes, bytes] | None:
    """The next complete request as (method, target, body), or None when the client closed."""
    method = target = b""
    body = bytearray()
    awaiting_body = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if awaiting_body:
                # The head came without the body: Python's http.client (the uiautomator2 client's)
                # writes them separately, and with Nagle on its socket and delayed ACKs at the
                # adb server the body then waits ~40 ms. Any bytes back carry the ACK at once;
                # an interim 100 Continue is the HTTP way to send some (clients must skip 1xx).
                writer.write(
                    conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
                    or b""
                )
                awaiting_body = False
            conn.receive_data(await reader.read(_READ_CHUNK))
        elif isinstance(event, h11.Request):
            method, target = bytes(event.method), bytes(event.target)
            awaiting_body = any(k == b"content-length" and v != b"0" for k, v in event.headers)
            awaiting_body = awaiting_body and conn.their_http_version == b"1.1"
        elif isinstance(event, h11.Data):
            awaiting_body = False
            body += event.data
            if len(body) > _MAX_BODY:
                raise _BodyTooLarge(f"request body over {_MAX_BODY} bytes")
        elif isinstance(event, h11.EndOfMessage):
            return method, target, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, ctype: bytes, body: bytes
) -> None:
    headers = [(b"Content-Type", ctype), (b"Content-Length", str(len(body)).encode())]
    chunks = (
        conn.send(h11.Response(status_code=status, headers=headers)),
        conn.send(h11.Data(data=body)),
        conn.send(h11.EndOfMessage()),
    )
    # One write per response: adb turns each write into a WRTE, fewer is faster.
    writer.write(b"".join(chunk for chunk in chunks if chunk))
    await writer.drain()
