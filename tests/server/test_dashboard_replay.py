"""The run page's screen: frames in step order, the step in flight (from the step gate), the live toggle."""

from __future__ import annotations

import json
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.runs.models import RunEvent
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import report, sign_in

JPEG = b"\xff\xd8\xff\xe0fake"


def upload_frame(client: TestClient, token: str, run_id: str, seq: int, bounds: list[int] | None) -> None:
    name = f"frame-{seq:05d}.jpg"
    meta = {"seq": seq, "nodeId": f"n{seq}" if seq else None, "bounds": bounds, "screen": [1080, 2340]}
    answer = client.post(
        f"/api/v1/runs/{run_id}/artifacts",
        files={"file": (name, JPEG, "image/jpeg")},
        data={"name": name, "meta": json.dumps(meta)},
        headers=auth(token),
    )
    assert answer.status_code == 201, answer.text


def test_a_moving_run_shows_its_frames_the_step_in_flight_and_a_live_toggle(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = str(uuid.uuid4())
    report(client, device, workflow, run_id, status="running", steps=2)
    for seq in (2, 0, 1):  # in any order
        upload_frame(client, device.token, run_id, seq, [10, 20, 110, 220] if seq else None)
    gate = client.post(
        f"/api/v1/devices/me/runs/{run_id}/gate",
        json={"seq": 3, "nodeId": "save"},
        headers=auth(device.token),
    )
    assert gate.status_code == 200, gate.text
    assert gate.json()["live"] is False
    csrf = sign_in(client, account.token)

    page = client.get(f"/runs/{run_id}").text
    films = re.findall(r'class="film" data-seq="(\d+)" data-name="([^"]+)"', page)
    assert films == [("0", "frame-00000.jpg"), ("1", "frame-00001.jpg"), ("2", "frame-00002.jpg")]
    assert 'data-bounds="[10, 20, 110, 220]"' in page
    assert f'src="/runs/{run_id}/artifacts/frame-00001.jpg"' in page
    assert "frame-00001.jpg</a>" not in page  # frames are not listed again among the artifacts
    assert 'id="step-in-flight" hidden' not in page
    in_flight = page[page.index('id="step-in-flight"') :]
    assert '<code class="if-node">save</code>' in in_flight
    assert 'data-seq="3"' in in_flight.split(">", 1)[0]
    assert 'src="/static/replay.js"' in page
    assert client.get(f"/runs/{run_id}/artifacts/frame-00002.jpg").content == JPEG

    # Live: on → the gate tells the phone to stream; off again → it stops.
    turned = client.post(f"/runs/{run_id}/live", data={"on": "1", "csrf_token": csrf}, follow_redirects=False)
    assert turned.status_code == 303
    assert 'aria-pressed="true"' in client.get(f"/runs/{run_id}").text
    gate = client.post(f"/api/v1/devices/me/runs/{run_id}/gate", headers=auth(device.token))
    assert gate.json()["live"] is True
    client.post(f"/runs/{run_id}/live", data={"on": "0", "csrf_token": csrf})
    assert (
        client.post(f"/api/v1/devices/me/runs/{run_id}/gate", headers=auth(device.token)).json()["live"]
        is False
    )

    # Once the step ended (the trace has it), nothing is in flight any more.
    report(client, device, workflow, run_id, status="running", steps=3)
    page = client.get(f"/runs/{run_id}").text
    assert 'id="step-in-flight" hidden' in page


def test_an_ended_run_has_no_step_in_flight_nor_live_toggle(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = str(uuid.uuid4())
    report(client, device, workflow, run_id, status="success", steps=2)
    sign_in(client, account.token)
    page = client.get(f"/runs/{run_id}").text
    assert 'id="live-toggle"' not in page
    assert "No screens were kept for this run." in page
    assert "Execution log" in page
    assert "the run ended success" in page
    answer = client.get(f"/api/v1/runs/{run_id}/log", headers=auth(account.token)).json()
    assert answer["source"] == "trace"  # the report carried no engine log
    log = answer["entries"]
    assert [entry["kind"] for entry in log].count("step") == 2
    assert log[-1]["kind"] == "end"
    assert log[-1]["text"] == "the run ended success"


def test_a_live_frame_replaces_the_last_one_and_is_announced_but_not_kept_in_the_replay(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = str(uuid.uuid4())
    report(client, device, workflow, run_id, status="running", steps=1)
    url = f"/api/v1/runs/{run_id}/live-frame"
    headers = auth(device.token) | {"Content-Type": "image/jpeg"}
    assert client.put(url, content=JPEG + b"1", headers=headers).status_code == 204
    assert client.put(url, content=JPEG + b"2", headers=headers).status_code == 204
    refused = client.put(url, content=b"GIF89a", headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/body"
    other = create_device(db, account.id)
    assert (
        client.put(url, content=JPEG, headers=auth(other.token) | {"Content-Type": "image/jpeg"}).status_code
        == 404
    )

    live = client.get(f"/api/v1/runs/{run_id}/artifacts/live.jpg", headers=auth(account.token))
    assert live.content == JPEG + b"2"
    with db.session_factory() as session:
        payloads = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == run_id, RunEvent.event == "run.frame")
        ).all()
    assert [(p["name"], p["live"]) for p in payloads] == [("live.jpg", True), ("live.jpg", True)]
    sign_in(client, account.token)
    page = client.get(f"/runs/{run_id}").text
    assert 'data-name="live.jpg"' not in page
    assert "live.jpg</a>" not in page
