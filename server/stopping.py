"""The server stops: what a client waits on for long (event streams, long polls) answers now.

uvicorn stops accepting connections, then waits (`timeout_graceful_shutdown`) for the requests in
flight to be answered before the app's shutdown. An event stream never ends by itself and a long
poll lasts up to 30 s: both held the stop until that wait ran out, and were then cut (a stream
without its end, a poll answered 500). `stop_waiting` is called by `phoneflow serve`'s server
(server/serving.py) as soon as it is told to stop: each stream ends properly (its client resumes
with `Last-Event-ID`, on another process or once the server is back), each long poll answers as
at the end of its wait (nothing new), and ordinary requests finish as they would.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI


def server_stopping(app: FastAPI) -> bool:
    """Whether the server of `app` is stopping (long waits answer at once)."""
    return bool(getattr(app.state, "stopping", False))


def stop_waiting(app: FastAPI) -> None:
    """End `app`'s event streams and answer its long polls (in the server's event loop)."""
    from server.devices.commands import WAKEUPS
    from server.runs.events import RunEventHub

    app.state.stopping = True
    hub: RunEventHub | None = getattr(app.state, "run_event_hub", None)
    if hub is not None:
        hub.stop_streams()
    WAKEUPS.wake_all(asyncio.get_running_loop())
