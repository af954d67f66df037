"""Screens per step: after each step that touches the phone, a small JPEG of the screen goes to the outbox.

    recorder = FrameRecorder(device, outbox, run_id, device_id, FramePolicy.from_settings(settings))
    run_workflow(..., observer=recorder)

`PHONEFLOW_BRIDGE_FRAMES` says when: `every` (the default: after every step that touches the
phone, and after any failed step), `failures` (only after a failed step) or `off`. A frame is
scaled to `frame_width` pixels wide and kept under `frame_max_bytes` (60 KB by default); its
name is `frame-SEQ.jpg` (SEQ the step's trace seq; `00000` is the screen before the first step
when that is a UI step) and its `meta` says which step it follows and the bounds of the element
that step acted on (server/runs/frames.py). Frames go through the outbox like reports: durable once queued,
uploaded by the uploader thread, so a slow server never slows the steps. A frame that cannot
be taken is skipped with a warning: the screen never fails a run.

Off the step's path: a screenshot costs a phone tens to hundreds of milliseconds, so on a device
that can hold its screen-changing calls (`hold_changes_until`: `U2Device`, `AppiumDevice`) the frame
is taken by the recorder's own thread while the next step goes on, and only that step's first call
that changes the screen (a tap, typing, a key, a swipe, an app launch or stop) waits until the frame
is taken and queued. Reading the screen (the next step's hierarchy dump) does not wait: the phone's
uiautomator2 server answers calls side by side. So a frame still shows the screen after its step; it
is written to the outbox by that thread right after (durable as reports are), and `close()` (or
leaving the `with` block) waits for the last one. A device without that hold (the simulator) gets
its frames on the engine's thread, as before.

After the next look: on a device that says when the screen was looked at (`U2Device.after_next_look`
and `looks`), a step's picture is asked for once the next step's first look at the screen (its
hierarchy dump) has its answer, or before the next change, or 20 ms after the step at the latest.
And a step that only looked (read a text, waited for one) and whose last look came before that
picture was asked for, with no change since, gets that same picture as its frame, without a
screenshot of its own: it shows the screen after the step's last look and before anything changed it.

On the step connection: a device that can (`U2Device.ask_screen_jpeg`) sends the screenshot request
on the kept connection its steps use, from the step's thread, without waiting for its answer. The
phone answers one connection's requests in order, so a change sent on that connection after it is
done after the picture is taken: it does not wait for the picture's round trip at all. A change that
goes another way (a shell command, a swipe through the client) still waits for every picture not in
hand, as does any change after a picture the frame thread took itself (the 20 ms limit passed).
"""

from __future__ import annotations

import io
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from PIL import Image

from device_bridge.outbox import Outbox
from device_bridge.settings import BridgeSettings
from interpreter.device import Artifact, Device
from interpreter.observe import StepEnded, StepStarted
from interpreter.steps import UI_KINDS
from interpreter.trace import Outcome, iso_utc

log = logging.getLogger(__name__)

# The kinds whose screen is worth keeping: those that look at or touch the screen, and app starts/stops.
DEVICE_KINDS = UI_KINDS | {"action.launchApp", "action.stopApp"}
FRAME_CONTENT_TYPE = "image/jpeg"
# How long a step's picture waits for the next step's first look at the screen before it is taken anyway.
LOOK_WAIT_S = 0.02


class FrameMode(StrEnum):
    OFF = "off"
    FAILURES = "failures"
    EVERY = "every"


_MODE_RANK = {FrameMode.OFF: 0, FrameMode.FAILURES: 1, FrameMode.EVERY: 2}


@dataclass(frozen=True, slots=True)
class FramePolicy:
    mode: FrameMode = FrameMode.EVERY
    width: int = 360
    quality: int = 60
    max_bytes: int = 60_000

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> FramePolicy:
        return cls(
            FrameMode(settings.frames), settings.frame_width, settings.frame_quality, settings.frame_max_bytes
        )

    def for_run(self, requested: object) -> FramePolicy:
        """This policy for a run whose workflow (or the server, with the claim) asks for `requested`:
        the lesser of the two (`off` < `failures` < `every`). The bridge's own setting is the upper
        bound; an unknown or missing value leaves it as it is."""
        if not isinstance(requested, str) or requested not in {m.value for m in FrameMode}:
            return self
        mode = FrameMode(requested)
        return replace(self, mode=mode) if _MODE_RANK[mode] < _MODE_RANK[self.mode] else self


def frame_name(seq: int) -> str:
    return f"frame-{seq:05d}.jpg"


def grab(device: Device, screen: tuple[int, int], policy: FramePolicy) -> bytes:
    """The screen as a JPEG `policy.width` wide, under `policy.max_bytes` when the screen allows."""
    return fit(capture(device, screen, policy), policy)


def capture(device: Device, screen: tuple[int, int], policy: FramePolicy) -> bytes:
    """The screen as the phone sends it: a scaled JPEG when it can, else its full screenshot."""
    scale = min(1.0, policy.width / max(screen[0], 1))
    # A driver that can scale on the phone (`U2Device.screen_jpeg`) spares a PNG round trip.
    fast = getattr(device, "screen_jpeg", None)
    data = fast(scale, policy.quality) if fast is not None else None
    return data if data is not None else _shrink(device.screenshot().data, policy.width, policy.quality)


def fit(data: bytes, policy: FramePolicy) -> bytes:
    """`data` (what `capture` got) as a JPEG `policy.width` wide, under `policy.max_bytes` if it can."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError(f"the phone's screen is not a JPEG image (it starts {data[:8]!r})")
    quality = policy.quality
    while len(data) > policy.max_bytes and quality > 20:
        quality -= 15
        data = _shrink(data, policy.width, quality)
    return data


def _shrink(image_bytes: bytes, width: int, quality: int) -> bytes:
    image: Image.Image = Image.open(io.BytesIO(image_bytes))
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        # Whole factors first by averaging blocks (a full screen 1080 wide to 360: a quarter of the
        # CPU of a bilinear resize, and no aliasing), then what is left.
        factor = image.width // width
        if factor > 1:
            image = image.reduce(factor)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


class _Go:
    """The moment a step's picture may be asked for, with the device's looks() at that moment; on a
    device that can (`U2Device.ask_screen_jpeg`), the picture asked for then on the step connection."""

    def __init__(
        self, looks: Callable[[], tuple[int, int]] | None, ask: Callable[[], Any] | None = None
    ) -> None:
        self._read_looks = looks
        self._ask = ask
        self.looks: tuple[int, int] | None = None
        self.asked: Any = None  # what `ask` gave: a `ScreenAsk` (its `connection`, its `result()`)
        self._lock = threading.Lock()
        self._event = threading.Event()

    def start(self, ask: bool = True) -> None:
        """Ask now (on the step's thread: `ask`; the frame thread takes its picture itself)."""
        with self._lock:
            if self._event.is_set():
                return
            if self._read_looks is not None:
                self.looks = self._read_looks()
            if ask and self._ask is not None:
                try:
                    self.asked = self._ask()
                except Exception as exc:  # then the frame thread takes it, as on any device
                    log.debug("picture not asked for ahead: %s", exc)
            self._event.set()

    def wait(self, timeout_s: float) -> None:
        self._event.wait(timeout_s)


class FrameRecorder:
    """A step observer that keeps a frame of the screen after the steps its policy names."""

    def __init__(
        self,
        device: Device,
        outbox: Outbox,
        run_id: str,
        device_id: str,
        policy: FramePolicy,
        *,
        look_wait_s: float = LOOK_WAIT_S,
    ) -> None:
        self.device = device
        self.look_wait_s = look_wait_s
        self.outbox = outbox
        self.run_id = run_id
        self.device_id = device_id
        self.policy = policy
        self.kept: list[str] = []
        self._screen: tuple[int, int] | None = None
        self._first_taken = False
        hold = getattr(device, "hold_changes_until", None)
        self._hold: Callable[[Callable[[object | None], object] | None], None] | None = hold
        self._after_look: Callable[[Callable[[], object] | None], None] | None = getattr(
            device, "after_next_look", None
        )
        self._looks: Callable[[], tuple[int, int]] | None = getattr(device, "looks", None)
        self._ask_screen: Callable[[float, int], Any] | None = getattr(device, "ask_screen_jpeg", None)
        self._taker: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        # The job waiting for the next look (start() it to take its picture now).
        self._go = _Go(None)
        # The go of the last frame with a picture of its own (on the step's thread), and on the frame
        # thread that picture (None when it could not be taken).
        self._picture: _Go | None = None
        # The frames with a picture of their own not in hand yet, oldest first (on the step's thread).
        self._untaken: deque[tuple[_Go, threading.Event]] = deque()
        self._last: tuple[bytes, datetime] | None = None
        self.shared = 0  # frames that are the picture of the frame before (no screenshot of their own)

    def __enter__(self) -> FrameRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the frame being taken (if any) and end the recorder's thread."""
        self.wait()
        if self._taker is not None:
            self._taker.shutdown(wait=True)
            self._taker = None
        if self._hold is not None:
            self._hold(None)
        if self._after_look is not None:
            self._after_look(None)

    def wait(self) -> None:
        """Return once every frame asked for so far is taken and queued (or skipped)."""
        self._go.start()
        pending = self._pending
        if pending is not None:
            pending.result()

    def step_started(self, started: StepStarted) -> None:
        # The screen before the first step that touches the phone: the "before" of that step, where
        # its element is outlined. Not before an app launch or stop: what was on screen then does
        # not matter to the run, and the first frame is the slowest one to take.
        if self.policy.mode is not FrameMode.EVERY or self._first_taken or started.kind not in DEVICE_KINDS:
            return
        self._first_taken = True
        if started.kind in UI_KINDS:
            self._keep(0, {"seq": 0, "nodeId": None, "kind": None, "outcome": None, "bounds": None})

    def step_ended(self, ended: StepEnded) -> None:
        event = ended.event
        failed = event.outcome is Outcome.FAILED
        mode = self.policy.mode
        if mode is FrameMode.OFF or (mode is FrameMode.FAILURES and not failed):
            return
        if mode is FrameMode.EVERY and not failed and event.kind not in DEVICE_KINDS:
            return
        element = ended.acted_on
        bounds = None
        if element is not None:
            b = element.bounds
            bounds = [b.left, b.top, b.right, b.bottom]
        meta = {
            "seq": event.seq,
            "nodeId": event.node_id,
            "kind": event.kind,
            "outcome": event.outcome.value,
            "bounds": bounds,
        }
        self._keep(event.seq, meta)

    def _keep(self, seq: int, meta: dict[str, Any]) -> None:
        if self._hold is None:
            self._take_here(seq, meta)
            return
        if self._taker is None:
            self._taker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"frames-{self.run_id[:8]}")
        self._go.start()  # the frame before goes now, whatever it waited for
        seen = self._looks() if self._looks is not None else None
        picture = self._picture
        if seen is not None and picture is not None and picture.looks == seen:
            # Nothing changed the screen and nothing looked at it between the picture before being
            # asked for and this step's end: that picture is the screen after this step. The next
            # change's hold stays the one for that picture (no change has taken it since).
            self._pending = self._taker.submit(self._share, seq, meta)
            return
        go = self._go = self._picture = _Go(self._looks, self._ask if self._ask_screen is not None else None)
        # One thread, so frames are taken in step order: once the latest is taken, all are.
        taken = threading.Event()
        if self._after_look is not None:
            self._after_look(go.start)
        else:
            go.start()
        self._pending = self._taker.submit(self._take, seq, meta, taken, go)
        self._pending.add_done_callback(lambda _done: taken.set())  # whatever happened in there
        self._untaken.append((go, taken))
        self._hold(self._before_change)

    def _before_change(self, connection: object | None) -> None:
        """What the next change of the screen waits for: each picture asked for before it and not in
        hand yet, unless it was asked for on `connection`, the one the change goes on (the phone
        takes that picture first)."""
        untaken = self._untaken
        if untaken and untaken[-1][1].is_set():  # taken in order: once the latest is, all are
            untaken.clear()
        for go, taken in untaken:
            asked = go.asked
            if connection is None or asked is None or asked.connection is not connection:
                taken.wait()

    def _ask(self) -> Any:
        """The picture asked for on the step connection (a `ScreenAsk`), or None."""
        if self._ask_screen is None:
            return None
        if self._screen is None:  # the driver keeps it: a round trip once per phone, not per run
            self._screen = self.device.screen_size()
        return self._ask_screen(min(1.0, self.policy.width / max(self._screen[0], 1)), self.policy.quality)

    def _take_here(self, seq: int, meta: dict[str, Any]) -> None:
        """The frame after step `seq`, taken on this thread (a device that cannot hold its changes)."""
        try:
            if self._screen is None:
                self._screen = self.device.screen_size()
            data = fit(capture(self.device, self._screen, self.policy), self.policy)
        except Exception as exc:  # the screen never fails a run
            log.warning("run %s: no frame after step %s: %s", self.run_id, seq, exc)
            return
        self._queue(seq, meta, self._screen, data, datetime.now(UTC))

    def _take(self, seq: int, meta: dict[str, Any], taken: threading.Event, go: _Go) -> None:
        """On the frame thread: the picture after step `seq` (asked for by `go`), queued as its frame."""
        self._last = None
        go.wait(self.look_wait_s)
        go.start(ask=False)  # not asked for yet: taken here, the next change held until then
        try:
            if self._screen is None:
                self._screen = self.device.screen_size()
            screen = self._screen
            asked = go.asked
            if asked is not None:
                data = asked.result()
                if data is None:  # too late to take another one: the phone may have changed since
                    raise ValueError("the phone sent no picture for its screenshot")
            else:
                data = capture(self.device, screen, self.policy)
            taken_at = datetime.now(UTC)
        except Exception as exc:  # the screen never fails a run
            log.warning("run %s: no frame after step %s: %s", self.run_id, seq, exc)
            return
        finally:
            # The phone may change its screen now: the frame's picture is in hand.
            taken.set()
        try:
            data = fit(data, self.policy)
        except Exception as exc:
            log.warning("run %s: no frame after step %s: %s", self.run_id, seq, exc)
            return
        self._last = (data, taken_at)
        self._queue(seq, meta, screen, data, taken_at)

    def _share(self, seq: int, meta: dict[str, Any]) -> None:
        """On the frame thread: the picture of the frame before, as the frame after step `seq`."""
        if self._last is None or self._screen is None:
            log.warning(
                "run %s: no frame after step %s: the picture before it was not taken", self.run_id, seq
            )
            return
        self.shared += 1
        self._queue(seq, meta, self._screen, *self._last)

    def _queue(
        self, seq: int, meta: dict[str, Any], screen: tuple[int, int], data: bytes, taken_at: datetime
    ) -> None:
        meta = {**meta, "screen": list(screen), "takenAt": iso_utc(taken_at)}
        name = frame_name(seq)
        self.outbox.add_artifact(
            self.run_id, self.device_id, Artifact(name, FRAME_CONTENT_TYPE, data), meta, flush=False
        )
        self.kept.append(name)


class LiveStreamer:
    """Sends the phone's screen about `1 / interval_s` times a second while `is_live()` says someone
    watches the run live (the step gate's `live`), between the steps and during them; best effort:
    a frame that cannot be taken or sent is dropped (the next one replaces it anyway)."""

    def __init__(
        self,
        device: Device,
        send: Callable[[bytes], None],
        is_live: Callable[[], bool],
        policy: FramePolicy,
        interval_s: float = 0.4,
    ) -> None:
        self.device = device
        self.send = send
        self.is_live = is_live
        self.policy = policy
        self.interval_s = interval_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-frames", daemon=True)

    def __enter__(self) -> LiveStreamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        screen: tuple[int, int] | None = None
        while not self._stop.wait(self.interval_s):
            if not self.is_live():
                continue
            try:
                if screen is None:
                    screen = self.device.screen_size()
                self.send(grab(self.device, screen, self.policy))
                self.sent += 1
            except Exception as exc:  # best effort: the run goes on whatever happens here
                log.debug("live frame not sent: %s", exc)
