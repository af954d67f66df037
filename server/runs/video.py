"""A run's video: its frames assembled into one H.264 MP4 (PyAV) once the run has ended.

The frames (`frame-SEQ.jpg`, server/runs/frames.py) are what every driver sends, the
uiautomator2 bridge, the Appium one and the simulator alike, so the video is made here, from
what is already stored, rather than on the phone. Each frame is held for the time until the next
one was taken (at least `MIN_FRAME_S`, at most `MAX_FRAME_S`, so a long wait does not make a
long still), the last for `LAST_FRAME_S`. The result is the artifact `video.mp4` (H.264 in MP4,
`faststart`, the size of the first frame) with `meta` `{"frames": N, "lastFrame": NAME,
"durationMs": D}`; a run without frames has none.

When: the end of a run that has frames, and a frame stored for a run that has already ended (the
bridge's outbox sends frames after the reports, so most of them come late), ask for it through
`assemble_later` (and a run page shown for an ended run with frames but no video, as after a
server restart, through `assemble_soon`). Most runs have no frames: the run's row says whether it
has (`runs.has_frames`), so their end asks for nothing and costs no query. The flag and the run's
end cannot miss each other: a frame's upload sets it with `UPDATE ... RETURNING status`
(`frame_stored`), which waits for a concurrent end's UPDATE of the row and then sees the run
ended (it asks for the video itself), or goes first, and then the end's UPDATE returns the row
with the flag (the end asks). A worker thread per server process does the work after
`DEBOUNCE_S` of quiet for that run, so neither the request nor its transaction waits for the
encoder, and a burst of late frames makes one video. A video that already holds the run's newest
frame is not made again. `PHONEFLOW_RUN_VIDEO=false` turns it off. When it is done the run's watchers get a
`run.updated`, and the run page shows the player.

A phone's own recording wins: a bridge whose phone has `screenrecord` uploads the run's
`video.mp4` itself (device_bridge/screen_recording.py). `store_phone_video` keeps it in place of
an assembled one, with `meta` `{"source": "phone"}`, and `assemble` never replaces it, so a run
has one video either way.
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from PIL import Image
from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from interpreter.trace import RunStatus
from server.artifact_store.service import read_artifact, replace_artifact
from server.db import after_commit
from server.runs.frames import FRAME_NAME
from server.runs.lifecycle import on_runs_ended
from server.runs.models import Artifact, Run
from server.settings import Settings

log = logging.getLogger("phoneflow.runs.video")

VIDEO_NAME = "video.mp4"
VIDEO_TYPE = "video/mp4"
MIN_FRAME_S = 0.5
MAX_FRAME_S = 2.0
LAST_FRAME_S = 1.5
DEBOUNCE_S = 1.0
# The worker looks for due runs at most this often: under a stream of runs ending, one wake-up
# serves many.
LOOK_INTERVAL_S = 0.25
PHONE_SOURCE = "phone"  # meta["source"] of a video the phone recorded itself


def _taken_at(meta: dict[str, Any]) -> float | None:
    text = meta.get("takenAt")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def hold_times(metas: Sequence[dict[str, Any]]) -> list[float]:
    """How long each frame is shown, in seconds (see the module docstring)."""
    times = [_taken_at(meta) for meta in metas]
    holds = []
    for index, taken in enumerate(times):
        if index == len(times) - 1:
            holds.append(LAST_FRAME_S)
            continue
        following = times[index + 1]
        if taken is None or following is None:
            holds.append(MIN_FRAME_S)
        else:
            holds.append(min(MAX_FRAME_S, max(MIN_FRAME_S, following - taken)))
    return holds


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` in a black frame of `size`, as large as fits with its aspect kept (a turned screen)."""
    image = image.convert("RGB")
    if image.size == size:
        return image
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    frame = Image.new("RGB", size)
    offset = ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2)
    frame.paste(image.resize(inner, Image.Resampling.BILINEAR), offset)
    return frame


def encode_video(images: Sequence[bytes], holds: Sequence[float]) -> bytes:
    """An H.264 MP4 showing each image (JPEG/PNG/WebP bytes) for its hold time, in seconds."""

    first = Image.open(io.BytesIO(images[0]))
    size = (first.width - first.width % 2, first.height - first.height % 2)
    time_base = Fraction(1, 1000)
    # A file, not memory: `faststart` (the index first, so a player starts before the whole file
    # arrived) rewrites the file in a second pass, which FFmpeg does by opening it again by name.
    with tempfile.TemporaryDirectory(prefix="phoneflow-video-") as folder:
        path = Path(folder) / "video.mp4"
        _encode_to(path, images, holds, size, time_base)
        return path.read_bytes()


def _encode_to(
    path: Path, images: Sequence[bytes], holds: Sequence[float], size: tuple[int, int], time_base: Fraction
) -> None:
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        context = stream.codec_context
        context.width, context.height = size
        context.pix_fmt = "yuv420p"
        context.time_base = time_base
        # No B-frames: each frame is decoded when shown, and the timestamps stay as given.
        context.options = {"preset": "veryfast", "crf": "28", "tune": "stillimage", "bf": "0"}
        stream.time_base = time_base
        at_ms = 0
        picture: Image.Image | None = None
        for data, hold in zip(images, holds, strict=True):
            picture = _fit(Image.open(io.BytesIO(data)), size)
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            frame.pts, frame.time_base = at_ms, time_base
            container.mux(stream.encode(frame))
            at_ms += max(1, round(hold * 1000))
        # The last picture again at the end, so the video lasts as long as the last hold.
        assert picture is not None
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        frame.pts, frame.time_base = at_ms, time_base
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def assemble(session: Session, settings: Settings, run_id: str) -> bool:
    """Make (or make again) the video of an ended run from its frames; True when one was stored."""
    run = session.get(Run, run_id)
    if run is None or not RunStatus(run.status).terminal:
        return False
    rows = session.execute(
        select(Artifact.name, Artifact.meta).where(Artifact.run_id == run_id, Artifact.meta.is_not(None))
    ).all()
    frames = sorted(
        ((int(row.meta.get("seq", 0)), row.name, row.meta) for row in rows if FRAME_NAME.match(row.name)),
        key=lambda item: (item[0], item[1]),
    )
    if not frames:
        return False
    names = [name for _, name, _ in frames]
    current = _video_meta(session, run_id)
    if is_phone_video(current):
        return False
    if current is not None and current.get("frames") == len(names) and current.get("lastFrame") == names[-1]:
        return False
    stored = session.scalars(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.name.in_(names))
    ).all()
    data_by_name = {row.name: b"".join(read_artifact(session, row)) for row in stored}
    images = [data_by_name[name] for name in names]
    holds = hold_times([meta for _, _, meta in frames])
    video = encode_video(images, holds)
    meta = {"frames": len(names), "lastFrame": names[-1], "durationMs": round(sum(holds) * 1000)}
    if is_phone_video(_video_meta(session, run_id)):
        return False  # the phone's recording came while this one was made
    replace_artifact(
        session,
        settings,
        account_id=run.account_id,
        run_id=run_id,
        name=VIDEO_NAME,
        content_type=VIDEO_TYPE,
        data=video,
        meta=meta,
    )
    return True


def _video_meta(session: Session, run_id: str) -> dict[str, Any] | None:
    meta: dict[str, Any] | None = session.execute(
        select(Artifact.meta).where(Artifact.run_id == run_id, Artifact.name == VIDEO_NAME)
    ).scalar_one_or_none()
    return meta


def is_phone_video(meta: dict[str, Any] | None) -> bool:
    return meta is not None and meta.get("source") == PHONE_SOURCE


def store_phone_video(session: Session, settings: Settings, run: Run, data: bytes) -> bool:
    """Keep the phone's own recording as the run's video, in place of one made from the frames.
    False (nothing stored) when the run already holds the phone's recording (a retried upload)."""
    if is_phone_video(_video_meta(session, run.id)):
        return False
    replace_artifact(
        session,
        settings,
        account_id=run.account_id,
        run_id=run.id,
        name=VIDEO_NAME,
        content_type=VIDEO_TYPE,
        data=data,
        meta={"source": PHONE_SOURCE},
    )
    return True


class VideoAssembler:
    """One worker thread that assembles the videos runs ask for, each after `delay_s` of quiet."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        on_done: Callable[[Session, str], None],
        delay_s: float = DEBOUNCE_S,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.on_done = on_done
        self.delay_s = delay_s
        self._due: dict[str, float] = {}
        self._wake = threading.Condition()
        self._closed = False
        self._next_look = 0.0
        self._thread: threading.Thread | None = None

    def request(self, run_ids: Sequence[str]) -> None:
        with self._wake:
            if self._closed:
                return
            # Dues only grow (now + the same delay), so a thread waiting for an earlier due or for its
            # next look wakes in time by itself: only one waiting for nothing needs waking. A phone's
            # every final report lands here; waking the thread each time cost more than its look.
            idle = not self._due
            due = time.monotonic() + self.delay_s
            for run_id in run_ids:
                self._due[run_id] = due
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="run-videos", daemon=True)
                self._thread.start()
            elif idle:
                self._wake.notify()

    def close(self, timeout_s: float = 10) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _next(self) -> list[str] | None:
        """The runs whose quiet time is over (all of them: one look serves many); None once closed."""
        with self._wake:
            while not self._closed:
                now = time.monotonic()
                if now < self._next_look:  # under a stream of ended runs, one look serves many
                    self._wake.wait(self._next_look - now)
                    continue
                ready = [run_id for run_id, due in self._due.items() if due <= now]
                if ready:
                    for run_id in ready:
                        del self._due[run_id]
                    self._next_look = now + LOOK_INTERVAL_S
                    return ready
                wait = min(self._due.values()) - now if self._due else None
                self._wake.wait(wait)
            return None

    def _loop(self) -> None:
        while (run_ids := self._next()) is not None:
            for run_id in run_ids:
                try:
                    with self.session_factory.begin() as session:
                        if assemble(session, self.settings, run_id):
                            self.on_done(session, run_id)
                except Exception:  # one run's video must not stop the others'
                    log.exception("the video of run %s could not be made", run_id)


ASSEMBLER_INFO_KEY = "phoneflow_video_assembler"  # in Session.info: the app's assembler


def install_assembler(app: FastAPI, session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Give the app a video assembler that every session of `session_factory` can ask (nothing when
    videos are turned off): `assemble_later(session, ...)` finds it in the session's `info`."""
    if not settings.run_video:
        app.state.video_assembler = None
        return

    def done(session: Session, run_id: str) -> None:
        from server.runs.events import get_hub
        from server.runs.service import record_changes

        run = session.get(Run, run_id)
        if run is not None:
            record_changes(session, run.account_id, [run_id], get_hub(app).notify)

    assembler = VideoAssembler(session_factory, settings, done)
    app.state.video_assembler = assembler
    info = dict(session_factory.kw.get("info") or {})
    info[ASSEMBLER_INFO_KEY] = assembler
    session_factory.configure(info=info)


def assemble_later(session: Session, run_ids: Sequence[str]) -> None:
    """Ask for these runs' videos once `session` commits (nothing when it has no assembler)."""
    assembler: VideoAssembler | None = session.info.get(ASSEMBLER_INFO_KEY)
    if assembler is None or not run_ids:
        return
    ids = list(run_ids)
    after_commit(session, lambda: assembler.request(ids))


@on_runs_ended
def _runs_ended(session: Session, account_id: str, runs: Sequence[Row[Any]]) -> None:
    """However a run with frames ends (a runs.report, the step gate's report, a cancel), its video is
    asked for. The rows are the runs as the ending transaction wrote them (the flag included)."""
    assemble_later(session, [run.id for run in runs if run.has_frames])


# A frame's upload flags its run and reads the run's status in one statement (see the docstring).
_runs = cast(Table, Run.__table__)
_FLAG_FRAMES = (
    update(_runs).where(_runs.c.id == bindparam("run_id")).values(has_frames=True).returning(_runs.c.status)
)


def frame_stored(session: Session, run_id: str) -> None:
    """A frame of the run was stored in this transaction: flag the run (`has_frames`) and, when it has
    ended already, ask for its video again once the transaction commits.

    The flag and the status come from one UPDATE: under a concurrent end of the run it waits for the
    end's row lock and sees the run ended, or the end waits for it and returns the flag."""
    status = session.execute(_FLAG_FRAMES, {"run_id": run_id}).scalar_one_or_none()
    if status is not None and RunStatus(status).terminal:
        assemble_later(session, [run_id])


def assemble_soon(app: FastAPI, run_ids: Sequence[str]) -> None:
    """Ask for these runs' videos now, outside a transaction (nothing when videos are turned off)."""
    assembler: VideoAssembler | None = getattr(app.state, "video_assembler", None)
    if assembler is not None and run_ids:
        assembler.request(list(run_ids))


def close_assembler(app: FastAPI) -> None:
    """Stop the app's worker (the server shuts down); a video in the making is finished first."""
    assembler: VideoAssembler | None = getattr(app.state, "video_assembler", None)
    if assembler is not None:
        assembler.close()
