"""The virtual phone's framebuffer: a screen painted ahead of its screenshot is the screenshot's picture."""

from __future__ import annotations

import asyncio
import io
import time

from emulator.framebuffer import Framebuffer
from interpreter.appmodel import PhoneState, sample_apps, screen

SCALE, QUALITY = 1 / 3, 60


def _shop_typing() -> PhoneState:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    user = next(n for n in phone.hierarchy().walk() if n.content_desc == "User")
    phone.tap(*user.bounds.center)
    return phone


def _drawn(phone: PhoneState) -> bytes:
    """The screen drawn and encoded from scratch, as `render_jpeg` does (no cache)."""
    picture = screen.draw_screen(phone.hierarchy(), phone.width, phone.height, time.strftime("%H:%M"), SCALE)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def test_a_screen_painted_ahead_is_the_picture_the_screenshot_would_draw() -> None:
    phone = _shop_typing()
    framebuffer = Framebuffer()
    framebuffer.looked(phone)  # no screenshot asked yet: nothing is painted
    assert framebuffer.painting is None
    asyncio.run(framebuffer.jpeg(phone, QUALITY, SCALE))
    phone.input_text("alice-1")
    framebuffer.looked(phone)  # a new screen, dumped after a screenshot was asked: painted ahead
    assert framebuffer.painting is not None
    assert asyncio.run(framebuffer.jpeg(phone, QUALITY, SCALE)) == _drawn(phone)
    assert framebuffer.painting is None


def test_a_screen_that_changed_after_it_was_painted_is_drawn_again() -> None:
    phone = _shop_typing()
    framebuffer = Framebuffer()
    asyncio.run(framebuffer.jpeg(phone, QUALITY, SCALE))
    phone.input_text("bob-1")
    framebuffer.looked(phone)
    painted = framebuffer.painting
    assert painted is not None
    phone.input_text("-and-more")  # typed after the dump: the painting is of the screen before
    shot = asyncio.run(framebuffer.jpeg(phone, QUALITY, SCALE))
    assert shot == _drawn(phone)
    assert shot != painted[1].result()
    # One painting per screenshot asked: the next dump paints once more, then not until asked again.
    phone.input_text("!")
    framebuffer.looked(phone)
    assert framebuffer.painting is not None
    asyncio.run(framebuffer.jpeg(phone, QUALITY, SCALE))
    phone.input_text("?")
    framebuffer.looked(phone)
    framebuffer.painting = None
    phone.input_text("#")
    framebuffer.looked(phone)
    assert framebuffer.painting is None


def test_a_full_size_screenshot_paints_nothing_ahead() -> None:
    phone = _shop_typing()
    framebuffer = Framebuffer()
    asyncio.run(framebuffer.jpeg(phone, 80, 1.0))
    phone.input_text("carol")
    framebuffer.looked(phone)
    assert framebuffer.painting is None
