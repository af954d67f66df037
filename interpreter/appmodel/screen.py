"""Screens of the app model, drawn from the window hierarchy with Pillow.

One renderer for every picture of a modelled phone: the virtual device's screenshots
(`emulator/`: `screencap`, uiautomator2's and Appium's screenshot calls) and the simulator's
screens in the builder (`interpreter.screen_recorder`, the server's `POST /api/v1/simulate`).
Not pixels of a real app: a wireframe a person can read. Every visible widget is drawn at its
bounds with its text: buttons as filled boxes, editable fields with an underline (blue when
focused), check boxes as squares, scrollables and images as outlines; the status bar and the
navigation bar the layout reserves; a toast (a top-level `android:id/message` node of the
hierarchy) as a dark pill.

Drawing a 1080×2340 frame and encoding it costs tens of milliseconds, while clients take
screenshots of a screen that mostly did not change; so frames and encoded images are cached:
first by the identity of the hierarchy `PhoneState` returns (it keeps the same tree until the
state changes), then by a cheap fingerprint of the drawn attributes; the clock's minute is part
of both keys, as the status bar shows it. `draw_screen` draws at a `scale` directly (the same
shapes, sizes scaled), which costs a fraction of a full frame when only a small picture is wanted.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

from PIL import Image, ImageDraw, ImageFont

from interpreter.appmodel.layout import NAV_BAR_HEIGHT, STATUS_BAR_HEIGHT
from interpreter.hierarchy import Bounds, UiNode

__all__ = [
    "JpegJob",
    "ScreenSource",
    "draw_screen",
    "fingerprint",
    "jpeg_job",
    "keep_jpeg",
    "palette",
    "render_image",
    "render_jpeg",
    "render_png",
]

_BACKGROUND = (250, 250, 250)
_STATUS_BAR = (32, 33, 36)
_STATUS_TEXT = (255, 255, 255)
_TEXT = (32, 33, 36)
_MUTED = (95, 99, 104)
_BUTTON_FILL = (26, 115, 232)
_BUTTON_DISABLED = (189, 193, 198)
_BUTTON_TEXT = (255, 255, 255)
_OUTLINE = (218, 220, 224)
_ACCENT = (26, 115, 232)
_TOAST_FILL = (60, 64, 67)
_TOOLBAR_FILL = (232, 240, 254)

_TEXT_SIZE = 42  # 16 sp at 420 dpi
_MIN_TEXT_SIZE = 20  # smaller than this nobody reads it on a phone-sized picture
_TOAST_ID = "android:id/message"
_CACHE_SIZE = 8


class ScreenSource(Protocol):
    """What a frame is drawn from (PhoneState has these)."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def hierarchy(self) -> UiNode: ...


_V = TypeVar("_V")


class _Caches(threading.local):
    """Per thread: each emulator runs on its own loop thread, so its caches need no lock."""

    def __init__(self) -> None:
        self.frames: OrderedDict[Hashable, Image.Image] = OrderedDict()
        self.encoded: OrderedDict[Hashable, bytes] = OrderedDict()
        # the most recent (hierarchy object, size, minute) and the fingerprint key made for it
        self.last_root: UiNode | None = None
        self.last_extra: tuple[int, int, str] = (0, 0, "")
        self.last_key: Hashable = None
        self.fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
        # rendered labels: (text, size, anchor) -> (coverage mask, offset from the anchor point)
        self.labels: OrderedDict[tuple[str, int, str], tuple[Image.Image, int, int]] = OrderedDict()


_LABEL_CACHE_SIZE = 2048


_caches = _Caches()


def render_png(phone: ScreenSource) -> bytes:
    """The screen as PNG bytes (what `screencap -p` writes)."""
    return _encode(phone, "PNG", 0, 1.0)


def render_jpeg(phone: ScreenSource, quality: int = 80, scale: float = 1.0) -> bytes:
    """The screen as JPEG bytes at `quality` (0–100), optionally scaled down by `scale` (0–1]."""
    return _encode(phone, "JPEG", quality, scale)


@dataclass(frozen=True, slots=True)
class JpegJob:
    """What `render_jpeg` would draw for a screen, to be drawn on another thread (`draw`)."""

    key: Hashable
    root: UiNode
    width: int
    height: int
    clock: str
    quality: int
    scale: float

    def draw(self) -> bytes:
        """The JPEG bytes, exactly as `render_jpeg` makes them (any thread: it has its own fonts)."""
        image = _draw(self.root, self.width, self.height, self.clock, self.scale)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=self.quality)
        return out.getvalue()


def jpeg_job(phone: ScreenSource, quality: int, scale: float) -> JpegJob | None:
    """The JPEG of the screen to draw (on this thread's cache key), or None when it is in the cache."""
    frame_key = _frame_key(phone)
    key = (frame_key, "JPEG", quality, scale)
    if key in _caches.encoded:
        return None
    clock = _caches.last_extra[2]
    return JpegJob(key, phone.hierarchy(), phone.width, phone.height, clock, quality, scale)


def keep_jpeg(job_key: Hashable, data: bytes) -> None:
    """Put a `JpegJob`'s bytes in this thread's cache, as if `render_jpeg` had drawn them."""
    _remember(_caches.encoded, job_key, data)


def render_image(phone: ScreenSource) -> Image.Image:
    """The screen as a Pillow image (shared from the cache: copy it before drawing on it)."""
    key = _frame_key(phone)
    frames = _caches.frames
    frame = frames.get(key)
    if frame is None:
        frame = _draw(phone.hierarchy(), phone.width, phone.height, _clock())
        _remember(frames, key, frame)
    else:
        frames.move_to_end(key)
    return frame


def _encode(phone: ScreenSource, fmt: str, quality: int, scale: float) -> bytes:
    key = (_frame_key(phone), fmt, quality, scale)
    encoded = _caches.encoded
    data = encoded.get(key)
    if data is not None:
        encoded.move_to_end(key)
        return data
    if scale == 1.0:
        image = render_image(phone)
    else:
        # Drawn at the scale directly (a fraction of a full frame's cost): a step's frame is a
        # third of the screen wide, taken after every step.
        image = _draw(phone.hierarchy(), phone.width, phone.height, _clock(), scale)
    out = io.BytesIO()
    if fmt == "PNG":
        # Level 1: a wireframe compresses well anyway, and level 6 is several times slower.
        image.save(out, "PNG", compress_level=1)
    else:
        image.save(out, "JPEG", quality=quality)
    data = out.getvalue()
    _remember(encoded, key, data)
    return data


def _remember(cache_: OrderedDict[Hashable, _V], key: Hashable, value: _V) -> None:
    cache_[key] = value
    while len(cache_) > _CACHE_SIZE:
        cache_.popitem(last=False)


def _clock() -> str:
    return time.strftime("%H:%M")


def _frame_key(phone: ScreenSource) -> Hashable:
    root = phone.hierarchy()
    extra = (phone.width, phone.height, _clock())
    caches = _caches
    if root is caches.last_root and extra == caches.last_extra:
        return caches.last_key
    key = (extra, fingerprint(root))
    caches.last_root, caches.last_extra, caches.last_key = root, extra, key
    return key


def fingerprint(root: UiNode) -> tuple[tuple[object, ...], ...]:
    """What the drawing depends on, node by node: two hierarchies with equal fingerprints look alike."""
    return tuple(
        (n.class_name, n.bounds, n.text, n.content_desc, n.resource_id == _TOAST_ID, n.clickable, n.editable,
         n.enabled, n.focused, n.checkable, n.checked, n.password, n.scrollable, len(n.children))
        for n in root.walk()
    )  # fmt: skip


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled scalable font: no system font needed on a fresh machine. One per thread:
    # FreeType faces are not safe to use from two threads at once (two emulators in one process).
    fonts = _caches.fonts
    font = fonts.get(size)
    if font is None:
        font = fonts[size] = ImageFont.load_default(size=size)
    return font


def draw_screen(root: UiNode, width: int, height: int, clock: str, scale: float = 1.0) -> Image.Image:
    """A new picture of the screen `root` describes on a `width`×`height` phone, `clock` in its status bar.

    `scale` (0–1] draws the same picture smaller: every shape, line and letter scaled.
    """
    return _draw(root, width, height, clock, scale)


@lru_cache(maxsize=1)
def palette() -> Image.Image:
    """A palette image holding every colour a screen is drawn with and the blends its edges make.

    `picture.quantize(palette=palette(), dither=Image.Dither.NONE)` turns a drawn screen into a
    few-colour picture at a fraction of an adaptive quantizer's cost, text edges still smooth.
    """
    inks = (_TEXT, _MUTED, _BUTTON_TEXT, _ACCENT, _OUTLINE, _BUTTON_DISABLED)
    grounds = (_BACKGROUND, _BUTTON_FILL, _STATUS_BAR, _TOAST_FILL, _TOOLBAR_FILL, _BUTTON_DISABLED)
    colours: dict[tuple[int, ...], None] = dict.fromkeys(inks + grounds)
    for ink in inks:
        for ground in grounds:
            for a in (0.2, 0.4, 0.6, 0.8):
                colours[tuple(round(i * a + g * (1 - a)) for i, g in zip(ink, ground, strict=True))] = None
    flat = [channel for colour in list(colours)[:256] for channel in colour]
    image = Image.new("P", (1, 1))
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def _draw(root: UiNode, width: int, height: int, clock: str, scale: float = 1.0) -> Image.Image:
    size = (width, height) if scale == 1.0 else (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.new("RGB", size, _BACKGROUND)
    draw = _Pen(image, scale)
    screen = Bounds(0, 0, width, height)
    toasts: list[UiNode] = []
    for window in root.children:
        if window.resource_id == _TOAST_ID:
            toasts.append(window)
            continue
        for node in window.walk():
            if _overlaps(node.bounds, screen):
                _draw_node(draw, node)
    _draw_status_bar(draw, width, clock)
    _draw_nav_bar(draw, width, height)
    for toast in toasts:
        _draw_toast(draw, toast)
    return image


_Box = tuple[int, int, int, int]
_Colour = tuple[int, int, int] | str


class _Pen:
    """Pillow's drawing calls in the phone's pixels, drawn at `scale` (1: exactly the same calls)."""

    def __init__(self, image: Image.Image, scale: float) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.scale = scale

    def _at(self, values: Sequence[int]) -> tuple[int, ...]:
        s = self.scale
        return tuple(values) if s == 1.0 else tuple(round(v * s) for v in values)

    def _len(self, value: int) -> int:
        return value if self.scale == 1.0 else max(1, round(value * self.scale))

    def rectangle(
        self, box: _Box, fill: _Colour | None = None, outline: _Colour | None = None, width: int = 1
    ) -> None:
        self.draw.rectangle(self._at(box), fill=fill, outline=outline, width=self._len(width))

    def rounded_rectangle(
        self,
        box: _Box,
        radius: int,
        fill: _Colour | None = None,
        outline: _Colour | None = None,
        width: int = 1,
    ) -> None:
        scaled_radius = radius if self.scale == 1.0 else round(radius * self.scale)
        self.draw.rounded_rectangle(
            self._at(box), radius=scaled_radius, fill=fill, outline=outline, width=self._len(width)
        )

    def line(self, xy: _Box, fill: _Colour, width: int) -> None:
        self.draw.line(self._at(xy), fill=fill, width=self._len(width))

    def ellipse(self, box: _Box, outline: _Colour, width: int) -> None:
        self.draw.ellipse(self._at(box), outline=outline, width=self._len(width))

    def polygon(self, points: Sequence[tuple[int, int]], outline: _Colour, width: int) -> None:
        scaled = [(p[0], p[1]) for p in (self._at(point) for point in points)]
        self.draw.polygon(scaled, outline=outline, width=self._len(width))

    def text(self, xy: tuple[int, int], text: str, fill: _Colour, size: int, anchor: str) -> None:
        # The same labels come back on screen after screen: their letters are rendered once
        # (FreeType is most of a frame's cost) and painted through the kept mask.
        x, y = self._at(xy)
        mask, dx, dy = _label(text, self._len(size), anchor)
        self.image.paste(fill, (x + dx, y + dy), mask)


def _label(text: str, size: int, anchor: str) -> tuple[Image.Image, int, int]:
    labels = _caches.labels
    key = (text, size, anchor)
    found = labels.get(key)
    if found is None:
        font = _font(size)
        left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor=anchor))
        mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font, anchor=anchor)
        found = (mask, left, top)
        _remember_label(labels, key, found)
    return found


def _remember_label(
    labels: OrderedDict[tuple[str, int, str], tuple[Image.Image, int, int]],
    key: tuple[str, int, str],
    value: tuple[Image.Image, int, int],
) -> None:
    labels[key] = value
    if len(labels) > _LABEL_CACHE_SIZE:
        labels.popitem(last=False)


def _overlaps(bounds: Bounds, screen: Bounds) -> bool:
    return (
        bounds.right > screen.left
        and bounds.left < screen.right
        and bounds.bottom > screen.top
        and (bounds.top < screen.bottom)
    )


def _draw_node(draw: _Pen, node: UiNode) -> None:
    b = node.bounds
    box = (b.left, b.top, b.right - 1, b.bottom - 1)
    label = node.text or node.content_desc
    simple = node.class_name.rsplit(".", 1)[-1]
    if node.editable:
        _draw_editable(draw, node, box)
    elif node.checkable:
        _draw_checkable(draw, node, box, label)
    elif node.clickable and ("Button" in simple or (label and not node.children)):
        fill = _BUTTON_FILL if node.enabled else _BUTTON_DISABLED
        draw.rounded_rectangle(box, radius=min(24, b.height // 3), fill=fill)
        _text_in(draw, label, box, _BUTTON_TEXT, centered=True)
    elif simple in ("ImageView", "ImageButton"):
        draw.rectangle(box, outline=_OUTLINE, width=3)
        draw.line((box[0], box[1], box[2], box[3]), fill=_OUTLINE, width=2)
        _text_in(draw, label, box, _MUTED, centered=True)
    elif _is_toolbar(node):
        draw.rectangle(box, fill=_TOOLBAR_FILL)
    else:
        if node.scrollable:
            draw.rectangle(box, outline=_OUTLINE, width=2)
        elif node.clickable:
            draw.rounded_rectangle(box, radius=12, outline=_OUTLINE, width=2)
        if label:
            _text_in(draw, label, box, _TEXT, centered=False)


def _is_toolbar(node: UiNode) -> bool:
    # The layout puts a screen's title in a full-width ViewGroup right under the status bar.
    return (
        node.class_name == "android.view.ViewGroup"
        and node.bounds.top == STATUS_BAR_HEIGHT
        and bool(node.children)
    )


def _draw_editable(draw: _Pen, node: UiNode, box: tuple[int, int, int, int]) -> None:
    colour = _ACCENT if node.focused else _MUTED
    thickness = 5 if node.focused else 3
    draw.line((box[0], box[3] - thickness, box[2], box[3] - thickness), fill=colour, width=thickness)
    text = "•" * len(node.text) if node.password else node.text
    if text:
        _text_in(draw, text, box, _TEXT, centered=False)
    elif node.content_desc:
        _text_in(draw, node.content_desc, box, _MUTED, centered=False)


def _draw_checkable(draw: _Pen, node: UiNode, box: tuple[int, int, int, int], label: str) -> None:
    side = min(48, box[3] - box[1] - 8)
    top = (box[1] + box[3] - side) // 2
    square = (box[0] + 12, top, box[0] + 12 + side, top + side)
    draw.rectangle(square, outline=_ACCENT, width=4, fill=_ACCENT if node.checked else None)
    if node.checked:
        draw.line(
            (square[0] + 8, top + side // 2, square[0] + side // 2, top + side - 10), fill="white", width=5
        )
        draw.line((square[0] + side // 2, top + side - 10, square[2] - 8, top + 10), fill="white", width=5)
    _text_in(draw, label, (square[2] + 24, box[1], box[2], box[3]), _TEXT, centered=False)


def _text_in(
    draw: _Pen,
    text: str,
    box: tuple[int, int, int, int],
    fill: tuple[int, int, int],
    centered: bool,
) -> None:
    """Draw one line of `text` inside `box`, shrinking then cutting it with … when it does not fit."""
    if not text:
        return
    width, height = box[2] - box[0], box[3] - box[1]
    pad = min(16, width // 10)
    fitted = _fit(" ".join(text.split()), width - 2 * pad, height)
    if fitted is None:
        return
    line, size = fitted
    cy = (box[1] + box[3]) // 2
    if centered:
        draw.text(((box[0] + box[2]) // 2, cy), line, fill=fill, size=size, anchor="mm")
    else:
        draw.text((box[0] + pad, cy), line, fill=fill, size=size, anchor="lm")


@lru_cache(maxsize=4096)
def _fit(text: str, room_w: int, room_h: int) -> tuple[str, int] | None:
    """The line and font size that fit `room_w`×`room_h`: smaller type first, then a cut with ….

    Cached: the same labels are drawn again on every frame of the same screen.
    """
    if not text or room_w <= 4 or room_h <= 8:
        return None
    size = max(_MIN_TEXT_SIZE, min(_TEXT_SIZE, int(room_h * 0.6)))
    length = _font(size).getlength(text)
    if length > room_w and size > _MIN_TEXT_SIZE:
        size = max(_MIN_TEXT_SIZE, int(size * room_w / length))
        length = _font(size).getlength(text)
    if length <= room_w:
        return text, size
    font = _font(size)
    low, high = 0, len(text)  # the longest prefix that fits with the ellipsis
    while low < high:
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid] + "…") <= room_w:
            low = mid
        else:
            high = mid - 1
    return (text[: max(low, 1)] + "…"), size


def _draw_status_bar(draw: _Pen, width: int, clock: str) -> None:
    draw.rectangle((0, 0, width, STATUS_BAR_HEIGHT), fill=_STATUS_BAR)
    draw.text((48, STATUS_BAR_HEIGHT // 2), clock, fill=_STATUS_TEXT, size=38, anchor="lm")
    # A battery outline on the right, so the bar reads as a phone's at a glance.
    right, mid = width - 48, STATUS_BAR_HEIGHT // 2
    draw.rectangle((right - 56, mid - 14, right - 6, mid + 14), outline=_STATUS_TEXT, width=3)
    draw.rectangle((right - 6, mid - 6, right, mid + 6), fill=_STATUS_TEXT)
    draw.rectangle((right - 50, mid - 8, right - 20, mid + 8), fill=_STATUS_TEXT)


def _draw_nav_bar(draw: _Pen, width: int, height: int) -> None:
    top = height - NAV_BAR_HEIGHT
    draw.rectangle((0, top, width, height), fill=_STATUS_BAR)
    mid = top + NAV_BAR_HEIGHT // 2
    third = width // 3
    # back ◁, home ○, recents □ — where Android's three-button navigation puts them
    bx = third // 2
    draw.polygon(((bx + 18, mid - 22), (bx + 18, mid + 22), (bx - 20, mid)), outline=_STATUS_TEXT, width=4)
    draw.ellipse((width // 2 - 24, mid - 24, width // 2 + 24, mid + 24), outline=_STATUS_TEXT, width=4)
    rx = width - third // 2
    draw.rectangle((rx - 20, mid - 20, rx + 20, mid + 20), outline=_STATUS_TEXT, width=4)


def _draw_toast(draw: _Pen, toast: UiNode) -> None:
    b = toast.bounds
    draw.rounded_rectangle((b.left, b.top, b.right - 1, b.bottom - 1), radius=b.height // 2, fill=_TOAST_FILL)
    _text_in(draw, toast.text, (b.left, b.top, b.right - 1, b.bottom - 1), _STATUS_TEXT, centered=True)
