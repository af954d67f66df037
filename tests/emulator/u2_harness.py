"""A uiautomator2 server on its own asyncio loop thread, for tests that talk HTTP to it directly.

The server and its `PhoneState` live on the loop thread (as inside the emulator); tests reach
the phone only through `on_loop`, and the server only over real sockets.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from emulator.device import VirtualDevice
from emulator.u2server import U2Server
from interpreter.appmodel import AppModel

T = TypeVar("T")


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error)
        self.code = error["code"]
        self.message = error["message"]
        self.data = error.get("data")


class ServerOnLoop:
    def __init__(self, model: AppModel) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="u2-loop", daemon=True)
        self._thread.start()
        self.device = self.on_loop(lambda: VirtualDevice(model))
        self.server = U2Server(self.device)
        self.port = self.run(self.server.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def rpc(self, method: str, *params: Any) -> Any:
        payload = {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params) if params else {}}
        status, body = self.http("POST", "/jsonrpc/0", json.dumps(payload).encode())
        assert status == 200, body
        answer = json.loads(body)
        assert answer["id"] == 7
        if "error" in answer:
            raise RpcFailure(answer["error"])
        assert "result" in answer, answer
        return answer["result"]

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


def selector(**fields: Any) -> dict[str, Any]:
    """A selector dict as uiautomator2's `Selector` builds it (the real client class, so masks are real)."""
    from uiautomator2._selector import Selector

    return dict(Selector(**fields))
