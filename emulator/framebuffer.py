"""The virtual phone's framebuffer for step frames: the screen painted ahead of the screenshot asking for it.

A phone's display has its picture before anyone asks for a screenshot; the virtual phone draws
its screen only when asked, and drawing and compressing a new screen costs it about a
millisecond. A client that takes a frame after each step (the bridge) looks at the screen first
(a hierarchy dump) and asks for its screenshot right after; so once a scaled screenshot has been
asked for, the next dump of a screen whose JPEG is not in the renderer's cache starts painting
it, at that scale and quality, on a painter thread (Pillow lets go of the GIL while it encodes)
while the dump's answer goes out. `takeScreenshot` then takes the painted bytes (the same bytes
the renderer makes: same drawing, same clock) when they are for the screen it shows, and draws
as before when not. Only one painting per screenshot asked: a client that takes no screenshots
costs nothing, and one that stopped costs at most one picture.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor

from interpreter.appmodel import screen

_painter: ThreadPoolExecutor | None = None
_painter_lock = threading.Lock()


def _paint(job: screen.JpegJob) -> Future[bytes]:
    global _painter
    with _painter_lock:
        if _painter is None:
            _painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screen-painter")
    return _painter.submit(job.draw)


class Framebuffer:
    """Per phone (its u2 server): what screenshot size was asked for last, and the painting under way."""

    def __init__(self) -> None:
        self._asked: tuple[float, int] | None = None
        self.painting: tuple[Hashable, Future[bytes]] | None = None  # the screen being painted ahead

    def looked(self, phone: screen.ScreenSource) -> None:
        """The screen was dumped: paint it ahead if a screenshot was asked for since the last painting."""
        asked = self._asked
        if asked is None:
            return
        job = screen.jpeg_job(phone, quality=asked[1], scale=asked[0])
        if job is None:  # in the renderer's cache already
            return
        self._asked = None
        self.painting = (job.key, _paint(job))

    async def jpeg(self, phone: screen.ScreenSource, quality: int, scale: float) -> bytes:
        """The screen as `screen.render_jpeg` draws it, from the painting when it is of this screen."""
        # Scaled pictures only: a full-size screenshot (failure context, a person's look) is no step's frame.
        self._asked = (scale, quality) if scale < 1 else None
        job = screen.jpeg_job(phone, quality=quality, scale=scale)
        painting, self.painting = self.painting, None
        if job is not None and painting is not None and painting[0] == job.key:
            data = await asyncio.wrap_future(painting[1])
            screen.keep_jpeg(job.key, data)
            return data
        return screen.render_jpeg(phone, quality, scale)
