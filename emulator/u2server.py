"""The uiautomator2 server inside the virtual device: HTTP/1.1 on 127.0.0.1, JSON-RPC behind it.

On a phone, `app_process ... com.wetest.uia2.Main -p 9008` starts a NanoHTTPD server that the
client reaches through `adb forward`/`create_connection`. Here the virtual device's shell starts a
`U2Server` instead; the adb side pipes the device port 9008 to the host port `start()` returns.

HTTP framing is `emulator.http_server`'s. The only routes are `GET /ping` (`pong`) and
`POST /jsonrpc/0`; every JSON-RPC answer is HTTP 200, because the client treats any other status
as a transport failure instead of reading the error body.
"""

from __future__ import annotations

from emulator.http_server import DeviceHttpServer, Reply
from emulator.u2_rpc import U2Host, U2Rpc

__all__ = ["U2Server"]


class U2Server(DeviceHttpServer):
    """A uiautomator2 server for one virtual device, served on the device's asyncio loop."""

    name = "uiautomator2 server"

    def __init__(self, device: U2Host) -> None:
        super().__init__()
        self.rpc = U2Rpc(device)

    async def route(self, method: bytes, target: bytes, body: bytes) -> Reply:
        path = target.split(b"?", 1)[0]
        if path == b"/ping":
            return 200, b"text/plain", b"pong"
        if path == b"/jsonrpc/0":
            if method != b"POST":
                return 405, b"text/plain", b"use POST for /jsonrpc/0\n"
            return 200, b"application/json", await self.rpc.handle(body)
        text = f"no route {method.decode(errors='replace')} {path.decode(errors='replace')}; "
        text += "this server answers GET /ping and POST /jsonrpc/0\n"
        return 404, b"text/plain", text.encode()
