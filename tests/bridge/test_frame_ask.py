"""A step's picture asked for on the step connection: the next change goes right behind it, without
waiting for the picture's answer; any other change waits for the picture, as before."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from PIL import Image

from device_bridge.frames import FrameMode, FramePolicy, FrameRecorder
from device_bridge.outbox import Outbox
from device_bridge.screen_hooks import ScreenHooks
from interpreter.device import Device
from interpreter.observe import StepEnded
from interpreter.trace import Outcome, TraceEvent


def _jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (360, 780), (shade, shade, shade)).save(out, "JPEG")
    return out.getvalue()


class _Ask:
    """A picture asked for on `connection`: the screen as it was then, once the phone lets it go."""

    def __init__(self, connection: object, screen: int, answered: threading.Event) -> None:
        self.connection = connection
        self._screen = screen
        self._answered = answered

    def result(self) -> bytes:
        assert self._answered.wait(5)
        return _jpeg(self._screen * 40)


class Phone(ScreenHooks):
    """A phone whose screens are numbered; each change shows the next one."""

    def __init__(self) -> None:
        self.kept = object()  # its kept connection
        self.screen = 1
        self.answered = threading.Event()  # the pictures asked for are answered once it is set
        self.asked: list[int] = []
        self.can_ask = True

    def frames(self, outbox: Outbox, run_id: str) -> FrameRecorder:
        return FrameRecorder(cast(Device, self), outbox, run_id, "dev-1", FramePolicy(FrameMode.EVERY))

    def screen_size(self) -> tuple[int, int]:
        return 1080, 2340

    def ask_screen_jpeg(self, scale: float, quality: int) -> _Ask | None:
        if not self.can_ask:
            return None
        self.asked.append(self.screen)
        return _Ask(self.kept, self.screen, self.answered)

    def screen_jpeg(self, scale: float, quality: int) -> bytes:
        assert self.answered.wait(5)
        return _jpeg(self.screen * 40)

    def look(self) -> None:
        self._looked()

    def change(self, on_kept: bool) -> None:
        self._settle(self.kept if on_kept else None)
        self.screen += 1


def _ended(recorder: FrameRecorder, seq: int) -> None:
    event = TraceEvent(seq, f"n{seq}", "action.tap", Outcome.OK, None, datetime.now(UTC), 1, 1)
    recorder.step_ended(StepEnded(event, None, True))


def _shades(outbox: Outbox) -> dict[str, int]:
    return {a.name: Image.open(io.BytesIO(a.data)).getpixel((5, 5))[0] // 40 for a in outbox.artifacts()}  # type: ignore[index]


def test_a_change_on_the_kept_connection_goes_right_behind_the_picture(tmp_path: Path) -> None:
    phone, outbox = Phone(), Outbox(tmp_path / "outbox.db")
    with phone.frames(outbox, "run-1") as recorder:
        _ended(recorder, 1)
        phone.look()  # the next step looks: the picture of screen 1 is asked for now
        assert phone.asked == [1]
        changed = threading.Thread(target=phone.change, args=(True,))
        changed.start()
        changed.join(2)
        # The change went while the picture had no answer yet: the phone takes the picture first.
        assert not changed.is_alive()
        assert phone.screen == 2
        phone.answered.set()
    assert _shades(outbox) == {"frame-00001.jpg": 1}
    outbox.close()


def test_a_change_another_way_waits_for_the_picture(tmp_path: Path) -> None:
    phone, outbox = Phone(), Outbox(tmp_path / "outbox.db")
    with phone.frames(outbox, "run-2") as recorder:
        _ended(recorder, 1)
        phone.look()
        changed = threading.Thread(target=phone.change, args=(False,))  # a shell command, say
        changed.start()
        changed.join(0.3)
        assert changed.is_alive()  # held until the picture is in hand
        phone.answered.set()
        changed.join(2)
        assert phone.screen == 2
    assert _shades(outbox) == {"frame-00001.jpg": 1}
    outbox.close()


def test_a_change_waits_for_an_earlier_picture_taken_another_way(tmp_path: Path) -> None:
    phone, outbox = Phone(), Outbox(tmp_path / "outbox.db")
    with phone.frames(outbox, "run-4") as recorder:
        phone.can_ask = False  # the phone's connection is busy, say: taken on the frame thread
        _ended(recorder, 1)
        phone.look()
        phone.can_ask = True
        phone.look()
        _ended(recorder, 2)  # it looked after frame 1 was asked for: a picture of its own
        phone.look()
        assert phone.asked == [1]  # frame 2's, on the kept connection
        changed = threading.Thread(target=phone.change, args=(True,))
        changed.start()
        changed.join(0.3)
        assert changed.is_alive()  # frame 1 is not in hand, and not behind it on that connection
        phone.answered.set()
        changed.join(2)
    assert _shades(outbox) == {"frame-00001.jpg": 1, "frame-00002.jpg": 1}
    outbox.close()


def test_a_step_that_changed_the_screen_without_looking_gets_a_picture_of_its_own(tmp_path: Path) -> None:
    phone, outbox = Phone(), Outbox(tmp_path / "outbox.db")
    phone.answered.set()
    with phone.frames(outbox, "run-3") as recorder:
        _ended(recorder, 1)
        phone.look()  # the picture of screen 1 (the first: taken on the frame thread)
        _ended(recorder, 2)  # a step that only looked: it shares that picture
        phone.change(True)
        _ended(recorder, 3)
        # A key press with no look before it: the picture of step 3 is asked for before it, so it
        # is not the picture after it.
        phone.change(True)
        _ended(recorder, 4)
    assert _shades(outbox) == {
        "frame-00001.jpg": 1,
        "frame-00002.jpg": 1,
        "frame-00003.jpg": 2,
        "frame-00004.jpg": 3,
    }
    assert recorder.shared == 1
    outbox.close()
