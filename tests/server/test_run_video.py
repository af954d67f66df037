"""A run's video: when a run with frames ends, the server assembles them into an H.264 MP4 in the
background (again when a frame comes late), serves it with byte ranges, lists it among the run's
artifacts, and retention removes it with the run."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update

from server.app import create_app
from server.db import utcnow
from server.runs.models import Artifact, Run
from server.runs.retention import purge_expired_runs
from server.runs.video import encode_video, hold_times
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in

pytestmark = pytest.mark.timeout(60)

COLOURS = ["red", "green", "blue", "white"]


def jpeg(colour: str, size: tuple[int, int] = (360, 780)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=80)
    return out.getvalue()


def meta(seq: int, second: float) -> str:
    taken = f"2026-11-29T09:00:{second:06.3f}Z"
    return json.dumps({"seq": seq, "nodeId": f"n{seq}", "kind": "action.tapByText", "outcome": "ok",
                       "bounds": None, "screen": [1080, 2340], "takenAt": taken})  # fmt: skip


def upload_frame(client: TestClient, token: str, run_id: str, seq: int, second: float) -> None:
    name = f"frame-{seq:05d}.jpg"
    answer = client.post(
        f"/api/v1/runs/{run_id}/artifacts",
        files={"file": (name, jpeg(COLOURS[seq % len(COLOURS)]), "image/jpeg")},
        data={"name": name, "meta": meta(seq, second)},
        headers=auth(token),
    )
    assert answer.status_code == 201, answer.text


def wait_for_video(db: Db, run_id: str, frames: int, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session_factory() as session:
            found = session.execute(
                select(Artifact.meta).where(Artifact.run_id == run_id, Artifact.name == "video.mp4")
            ).scalar_one_or_none()
        if found is not None and found["frames"] == frames:
            return dict(found)
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} has no video of {frames} frames after {timeout_s} s")


def decode(data: bytes) -> tuple[int, tuple[int, int], float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        duration = float(container.duration or 0) / av.time_base
    return len(frames), (frames[0].width, frames[0].height), duration


def test_an_ended_runs_frames_become_a_video_served_with_ranges(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=3)]}, headers=auth(dev.token))
    for seq, second in ((1, 1.0), (2, 1.2), (3, 9.0)):
        upload_frame(client, dev.token, rid, seq, second)
    ended = run_report(rid, wf, status="success", steps=3)
    client.post("/api/v1/runs.report", json={"runs": [ended]}, headers=auth(dev.token))

    made = wait_for_video(db, rid, frames=3)
    # Held 0.5 s (the 0.2 s between the first two, raised), 2 s (7.8 s, capped), 1.5 s (the last).
    assert made == {"frames": 3, "lastFrame": "frame-00003.jpg", "durationMs": 4000}
    listed = client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(acc.token)).json()
    assert {"name": "video.mp4", "contentType": "video/mp4"}.items() <= listed[-1].items()

    whole = client.get(f"/api/v1/runs/{rid}/artifacts/video.mp4", headers=auth(acc.token))
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert whole.headers["content-disposition"].startswith("inline;")
    frames, size, duration = decode(whole.content)
    assert size == (360, 780)
    assert frames >= 3
    assert 3.5 <= duration <= 4.5

    size_bytes = len(whole.content)
    part = client.get(
        f"/api/v1/runs/{rid}/artifacts/video.mp4", headers={**auth(acc.token), "Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{size_bytes}"
    assert part.content == whole.content[100:200]
    tail = client.get(
        f"/api/v1/runs/{rid}/artifacts/video.mp4", headers={**auth(acc.token), "Range": "bytes=-10"}
    )
    assert tail.content == whole.content[-10:]
    past = client.get(
        f"/api/v1/runs/{rid}/artifacts/video.mp4",
        headers={**auth(acc.token), "Range": f"bytes={size_bytes}-"},
    )
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size_bytes}"

    # A frame that comes after the end: the video is made again with it.
    upload_frame(client, dev.token, rid, 4, 9.5)
    assert wait_for_video(db, rid, frames=4)["lastFrame"] == "frame-00004.jpg"


def test_a_device_may_upload_an_mp4_but_not_a_disguised_file(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token))
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)

    def upload(name: str, data: bytes, kind: str) -> Any:
        return client.post(
            f"/api/v1/runs/{rid}/artifacts",
            files={"file": (name, data, kind)},
            data={"name": name},
            headers=auth(dev.token),
        )

    assert upload("screen.mp4", mp4, "video/mp4").json()["contentType"] == "video/mp4"
    assert upload("guess.mp4", mp4, "application/octet-stream").json()["contentType"] == "video/mp4"
    refused = upload("fake.mp4", b"<html><script>alert(1)</script>", "video/mp4")
    assert refused.status_code == 422
    assert "not an MP4 video" in refused.json()["errors"][0]["message"]


def test_retention_removes_a_runs_video_with_the_run(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    now = utcnow()
    rid = new_run_id()
    body = run_report(rid, wf, status="success", steps=1, started_at=now - timedelta(days=40))
    client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
    upload_frame(client, dev.token, rid, 1, 1.0)
    wait_for_video(db, rid, frames=1)
    with db.session_factory.begin() as session:
        session.execute(update(Run).values(updated_at=Run.created_at))
    assert purge_expired_runs(db.session_factory, now=now).runs == 1
    with db.session_factory() as session:
        assert session.scalars(select(Artifact.name).where(Artifact.run_id == rid)).all() == []


def test_no_video_when_turned_off(settings: Settings, db: Db) -> None:
    off = create_app(settings.model_copy(update={"run_video": False}))
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with TestClient(off) as client:
        body = run_report(rid, wf, status="success", steps=1)
        client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        upload_frame(client, dev.token, rid, 1, 1.0)
        time.sleep(1.5)
    with db.session_factory() as session:
        names = session.scalars(select(Artifact.name).where(Artifact.run_id == rid)).all()
    assert names == ["frame-00001.jpg"]


def test_the_run_page_asks_for_a_video_that_was_never_made(settings: Settings, db: Db) -> None:
    """As when the server stopped between a run's end and its video: the page makes up for it."""
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    with TestClient(create_app(settings.model_copy(update={"run_video": False}))) as client:
        body = run_report(rid, wf, status="success", steps=1)
        client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        upload_frame(client, dev.token, rid, 1, 1.0)
    with TestClient(create_app(settings)) as client:
        sign_in(client, acc.token)
        first = client.get(f"/runs/{rid}")
        assert first.status_code == 200
        assert 'id="run-video"' not in first.text
        wait_for_video(db, rid, frames=1)
        assert 'id="run-video"' in client.get(f"/runs/{rid}").text


def test_the_phones_own_recording_wins_over_the_frames(client: TestClient, db: Db) -> None:
    """A bridge whose phone has screenrecord uploads the run's video.mp4 itself: it takes the place
    of the video made from the frames, the assembler leaves it alone, and a retried upload is a no-op."""
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=2)]}, headers=auth(dev.token))
    upload_frame(client, dev.token, rid, 1, 1.0)
    client.post(
        "/api/v1/runs.report",
        json={"runs": [run_report(rid, wf, status="success", steps=2)]},
        headers=auth(dev.token),
    )
    wait_for_video(db, rid, frames=1)  # made from the frames first

    recorded = encode_video([jpeg("red", (320, 640)), jpeg("blue", (320, 640))], [0.5, 0.5])

    def upload(data: bytes) -> Any:
        return client.post(
            f"/api/v1/runs/{rid}/artifacts",
            files={"file": ("video.mp4", data, "video/mp4")},
            data={"name": "video.mp4"},
            headers=auth(dev.token),
        )

    assert upload(recorded).status_code == 201
    served = client.get(f"/api/v1/runs/{rid}/artifacts/video.mp4", headers=auth(acc.token))
    assert served.content == recorded
    assert decode(served.content)[1] == (320, 640)
    listed = client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(acc.token)).json()
    assert [a["name"] for a in listed if a["contentType"] == "video/mp4"] == ["video.mp4"]

    upload_frame(client, dev.token, rid, 2, 2.0)  # a late frame: the assembler would make it again
    time.sleep(1.8)
    again = encode_video([jpeg("green", (200, 400))], [0.5])
    assert upload(again).status_code == 201  # a retried upload: the first one stays
    assert client.get(f"/api/v1/runs/{rid}/artifacts/video.mp4", headers=auth(acc.token)).content == recorded
    with db.session_factory() as session:
        kept = session.execute(
            select(Artifact.meta).where(Artifact.run_id == rid, Artifact.name == "video.mp4")
        ).scalar_one()
    assert kept == {"source": "phone"}

    sign_in(client, acc.token)
    page = client.get(f"/runs/{rid}").text
    assert 'id="run-video"' in page
    assert "recorded by the phone" in page


def test_hold_times_follow_the_frames_clock() -> None:
    metas = [json.loads(meta(1, 1.0)), {"seq": 2}, json.loads(meta(3, 3.0)), json.loads(meta(4, 3.1))]
    assert hold_times(metas) == [0.5, 0.5, 0.5, 1.5]
