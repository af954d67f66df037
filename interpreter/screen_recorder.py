"""The simulated phone's screen before and after every step, as small deduplicated pictures.

    recorder = ScreenRecorder(device.state, clock, width=360, image_format="png")
    run_workflow(definition, device, clock=clock, observer=recorder)
    recorder.steps    # per trace event: the screen ids before and after, the element acted on
    recorder.screens  # id -> picture, each distinct screen once

A step observer (`interpreter.observe`) for the simulator. It reads the modelled phone itself
(`SimulatedDevice.state`), not the `Device`: a device call costs the virtual clock what it costs
a phone (`interpreter.device_costs`), and looking must not move the run's time, or a run with
screens would differ from one without. Pictures come from the app model's
renderer (`interpreter.appmodel.screen`), the code that draws the virtual device's screenshots,
drawn at the wanted width directly. A screen's id is a hash of what the picture shows (the drawn
attributes of the hierarchy, the screen size and the status bar's clock), so a screen that
comes back later in the run is drawn and sent once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from interpreter.clock import Clock
from interpreter.hierarchy import Bounds, UiNode
from interpreter.observe import StepEnded, StepStarted

if TYPE_CHECKING:
    from PIL.Image import Image

ImageFormat = Literal["png", "webp"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "webp": "image/webp"}
DEFAULT_WIDTH = 360
_WEBP_QUALITY = 70
# A loop that changes the screen on every pass would draw thousands: past this many distinct
# screens, new ones are not drawn and their steps name no picture (None).
MAX_SCREENS = 300


class ModelledPhone(Protocol):
    """What the recorder looks at: the app model's running phone (`PhoneState` has these)."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def hierarchy(self) -> UiNode: ...


@dataclass(frozen=True, slots=True)
class ScreenImage:
    """One distinct screen: the encoded picture and its size in pixels."""

    id: str
    media_type: str
    data: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ActedOn:
    """The element a step acted on: its bounds in the phone's pixels, and the screen it was found on."""

    screen: str
    bounds: Bounds


@dataclass(frozen=True, slots=True)
class StepScreens:
    """The screens of one trace event: before the step started and after it ended."""

    seq: int
    before: str | None
    after: str | None
    acted_on: ActedOn | None


class ScreenRecorder:
    """Draws the device's screen before and after each step; implements `StepObserver`."""

    def __init__(
        self,
        phone: ModelledPhone,
        clock: Clock,
        *,
        width: int = DEFAULT_WIDTH,
        image_format: ImageFormat = "png",
    ) -> None:
        self.phone = phone
        self.clock = clock
        self.device_width, self.device_height = phone.width, phone.height
        self.scale = min(1.0, width / self.device_width)
        self.image_format = image_format
        self.screens: dict[str, ScreenImage] = {}
        self.steps: list[StepScreens] = []
        self.truncated = False  # more than MAX_SCREENS distinct screens: some were not drawn
        self._last: tuple[UiNode, str, str | None] | None = None  # (root, clock label, id)
        self._before: tuple[UiNode, str | None] | None = None

    def step_started(self, started: StepStarted) -> None:
        self._before = self._capture()

    def step_ended(self, ended: StepEnded) -> None:
        after_root, after = self._capture()
        before_root, before = self._before if self._before is not None else (after_root, after)
        self._before = None
        acted_on = None
        if ended.acted_on is not None:
            # Where the element was found: on the screen before the step, or (a wait that saw it
            # appear) on the screen after it; the outline goes on that picture.
            node = ended.acted_on
            found_on = after if not _holds(before_root, node) and _holds(after_root, node) else before
            if found_on is not None:
                acted_on = ActedOn(found_on, ended.acted_on.bounds)
        self.steps.append(StepScreens(ended.event.seq, before, after, acted_on))

    def _capture(self) -> tuple[UiNode, str | None]:
        """The current screen's root and id, drawing the picture when this screen is new."""
        root = self.phone.hierarchy()
        label = self.clock.now().strftime("%H:%M")
        last = self._last
        if last is not None and last[0] is root and last[1] == label:
            return root, last[2]
        from interpreter.appmodel import screen  # Pillow: imported only when pictures are wanted

        key = repr((self.device_width, self.device_height, label, screen.fingerprint(root)))
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
        screen_id: str | None = digest
        if digest not in self.screens and len(self.screens) >= MAX_SCREENS:
            self.truncated, screen_id = True, None
        elif digest not in self.screens:
            image = screen.draw_screen(root, self.device_width, self.device_height, label, self.scale)
            self.screens[digest] = ScreenImage(
                id=digest,
                media_type=MEDIA_TYPES[self.image_format],
                data=_encode(image, self.image_format),
                width=image.width,
                height=image.height,
            )
        self._last = (root, label, screen_id)
        return root, screen_id


def _holds(root: UiNode, node: UiNode) -> bool:
    return any(candidate is node or candidate == node for candidate in root.walk())


def _encode(image: Image, image_format: ImageFormat) -> bytes:
    from PIL.Image import Dither

    from interpreter.appmodel import screen

    out = io.BytesIO()
    if image_format == "webp":
        image.save(out, "WEBP", quality=_WEBP_QUALITY, method=0)
    else:
        # The renderer's own colours and their blends: a small palette PNG, far cheaper than an
        # adaptive quantizer, and level 1 compresses a wireframe nearly as well as level 6.
        image.quantize(palette=screen.palette(), dither=Dither.NONE).save(out, "PNG", compress_level=1)
    return out.getvalue()
