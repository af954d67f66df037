"""`QuietServer` (server/serving.py): an idle server process sleeps (uvicorn's loop wakes ten times a
second, ours once a second before) and its answers still carry the Date of the second they are sent."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import httpx
from uvicorn import Config

from server.serving import DatedHeaders, QuietServer


async def _hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"hi"})  # type: ignore[operator]


class CountingServer(QuietServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


def test_an_idle_server_sleeps_and_still_dates_each_answer() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config(_hello, lifespan="off", log_level="warning", headers=[("x-served-by", "test")])
    server = CountingServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        first = httpx.get(f"http://127.0.0.1:{port}/")
        time.sleep(2.5)  # idle
        second = httpx.get(f"http://127.0.0.1:{port}/")
        answered = time.time()
        assert server.ticks <= 2  # the first look, and none while idle (the old loop: one a second)
        dates = [parsedate_to_datetime(r.headers["date"]).timestamp() for r in (first, second)]
        assert dates[1] - dates[0] >= 2  # each answer has the date it was sent at ...
        assert answered - 1.5 <= dates[1] <= answered  # ... not the one the loop last woke at
        assert second.headers["x-served-by"] == "test"  # the configured headers stay
        assert [name for name, _ in second.headers.raw].count(b"date") == 1
    finally:
        server.should_exit = True
        server._stop_soon()
        thread.join(timeout=10)
    assert not thread.is_alive()  # a stop wakes the sleeping loop at once


def test_dated_headers_without_a_date_are_the_configured_ones() -> None:
    headers = DatedHeaders(False, [(b"x-a", b"1")])
    assert headers + [(b"x-b", b"2")] == [(b"x-a", b"1"), (b"x-b", b"2")]
    assert list(iter(headers)) == [(b"x-a", b"1")]
    dated = DatedHeaders(True, [(b"x-a", b"1")])
    names = [name for name, _ in dated + []]
    assert names == [b"date", b"x-a"]
