"""The server → bridge command channel on both databases: a bridge that does not run is told at
once, a command is taken once, answered, waited on by the browser, and expires when nobody answers."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from server.db import utcnow
from server.devices.models import DeviceCommand
from tests.server.factories import AccountFixture, Db, DeviceFixture, auth, create_account, create_device

# A login screen as uiautomator dumps it: two buttons with the same text, one unique id.
HIERARCHY = """<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<hierarchy rotation="0">
  <node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="com.example.shop"
        content-desc="" clickable="false" bounds="[0,0][1080,2340]">
    <node index="0" text="Sign in" resource-id="com.example.shop:id/sign_in" class="android.widget.Button"
          package="com.example.shop" content-desc="" clickable="true" bounds="[42,300][1038,420]" />
    <node index="1" text="Sign in" resource-id="com.example.shop:id/other" class="android.widget.Button"
          package="com.example.shop" content-desc="" clickable="true" bounds="[42,444][1038,564]" />
  </node>
</hierarchy>"""


def _poll(client: TestClient, device: DeviceFixture, wait: float = 0) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/devices/me/commands?wait={wait}", headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    commands: list[dict[str, Any]] = answer.json()["commands"]
    return commands


def _setup(db: Db) -> tuple[AccountFixture, DeviceFixture]:
    account = create_account(db)
    return account, create_device(db, account.id, serial="emulator-5554", name="Test phone")


def _ask(client: TestClient, account: AccountFixture, device: DeviceFixture, **body: Any) -> httpx.Response:
    return client.post(
        f"/api/v1/devices/{device.id}/commands", json=body or {"kind": "inspect"}, headers=auth(account.token)
    )


def test_a_device_whose_bridge_does_not_run_is_refused_at_once_saying_how_to_start_it(
    client: TestClient, db: Db
) -> None:
    account, device = _setup(db)
    answer = _ask(client, account, device)
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["title"] == "The device's bridge is not running"
    assert "'Test phone'" in problem["detail"]
    assert "has never asked for commands" in problem["detail"]
    assert "phoneflow bridge run --serial emulator-5554" in problem["detail"]

    # A bridge that asked long ago is not running either.
    _poll(client, device)
    with db.session_factory.begin() as session:
        from server.devices.models import Device

        session.execute(
            update(Device)
            .where(Device.id == device.id)
            .values(commands_polled_at=utcnow() - timedelta(hours=1))
        )
    answer = _ask(client, account, device)
    assert answer.status_code == 409
    assert "last asked for commands at" in answer.json()["detail"]


def test_a_command_is_taken_once_answered_and_read_with_the_selectors_of_each_element(
    client: TestClient, db: Db
) -> None:
    account, device = _setup(db)
    assert _poll(client, device) == []  # the bridge listens from now on
    created = _ask(client, account, device)
    assert created.status_code == 201, created.text
    command = created.json()
    assert command["status"] == "pending"
    assert command["kind"] == "inspect"

    taken = _poll(client, device)
    assert [c["id"] for c in taken] == [command["id"]]
    assert _poll(client, device) == []  # taken once

    result = {"hierarchy": HIERARCHY, "foreground": {"package": "com.example.shop", "activity": None}}
    answer = client.post(
        f"/api/v1/devices/me/commands/{command['id']}/result",
        json={"ok": True, "result": result},
        headers=auth(device.token),
    )
    assert answer.status_code == 200, answer.text
    again = client.post(
        f"/api/v1/devices/me/commands/{command['id']}/result",
        json={"ok": True, "result": result},
        headers=auth(device.token),
    )
    assert again.status_code == 200  # the bridge may retry its answer

    read = client.get(f"/api/v1/devices/{device.id}/commands/{command['id']}", headers=auth(account.token))
    body = read.json()
    assert body["status"] == "done"
    assert body["result"]["hierarchy"] == HIERARCHY
    elements = body["inspection"]["elements"]
    assert body["inspection"]["screen"] == {"width": 1080, "height": 2340}
    sign_in = next(e for e in elements if e["resourceId"] == "com.example.shop:id/sign_in")
    assert sign_in["bounds"] == [42, 300, 1038, 420]
    selectors = [(s["selector"], s["matches"]) for s in sign_in["selectors"]]
    # Unique ones first; the text matches both buttons, so it needs no index for the first.
    assert selectors[0] == ({"resourceId": "com.example.shop:id/sign_in"}, 1)
    assert ({"text": "Sign in"}, 2) in selectors
    other = next(e for e in elements if e["resourceId"] == "com.example.shop:id/other")
    assert ({"text": "Sign in", "index": 1}, 2) in [(s["selector"], s["matches"]) for s in other["selectors"]]
    assert all(s["unique"] == (s["matches"] == 1) for s in other["selectors"])


def test_the_long_polls_answer_as_soon_as_there_is_a_command_and_an_answer(
    client: TestClient, db: Db
) -> None:
    account, device = _setup(db)
    _poll(client, device)
    got: dict[str, Any] = {}

    def bridge() -> None:
        got["commands"] = _poll(client, device, wait=20)
        for command in got["commands"]:
            client.post(
                f"/api/v1/devices/me/commands/{command['id']}/result",
                json={"ok": False, "error": "the phone is locked: unlock it"},
                headers=auth(device.token),
            )

    thread = threading.Thread(target=bridge)
    thread.start()
    command = _ask(client, account, device).json()
    read = client.get(
        f"/api/v1/devices/{device.id}/commands/{command['id']}?wait=20", headers=auth(account.token)
    )
    thread.join(30)
    assert [c["id"] for c in got["commands"]] == [command["id"]]
    body = read.json()
    assert body["status"] == "failed"
    assert body["error"] == "the phone is locked: unlock it"
    assert body["inspection"] is None


def test_a_command_nobody_answers_expires_with_what_to_do_and_a_late_answer_is_refused(
    client: TestClient, db: Db
) -> None:
    account, device = _setup(db)
    _poll(client, device)
    waiting = _ask(client, account, device).json()
    with db.session_factory.begin() as session:
        session.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == waiting["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    read = client.get(f"/api/v1/devices/{device.id}/commands/{waiting['id']}", headers=auth(account.token))
    body = read.json()
    assert body["status"] == "expired"
    assert "did not take the command within" in body["error"]
    assert _poll(client, device) == []

    taken = _ask(client, account, device).json()
    assert [c["id"] for c in _poll(client, device)] == [taken["id"]]
    with db.session_factory.begin() as session:
        session.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == taken["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    late = client.post(
        f"/api/v1/devices/me/commands/{taken['id']}/result",
        json={"ok": True, "result": {"hierarchy": HIERARCHY}},
        headers=auth(device.token),
    )
    assert late.status_code == 409
    assert late.json()["title"] == "The command expired"
    read = client.get(f"/api/v1/devices/{device.id}/commands/{taken['id']}", headers=auth(account.token))
    assert read.json()["status"] == "expired"
    assert "took the command but did not answer" in read.json()["error"]


def test_commands_belong_to_their_device_and_account(client: TestClient, db: Db) -> None:
    account, device = _setup(db)
    other_account = create_account(db)
    other_device = create_device(db, account.id)
    _poll(client, device)
    _poll(client, other_device)
    command = _ask(client, account, device).json()
    assert _poll(client, other_device) == []
    refused = client.post(
        f"/api/v1/devices/me/commands/{command['id']}/result",
        json={"ok": True, "result": {}},
        headers=auth(other_device.token),
    )
    assert refused.status_code == 404
    hidden = client.get(
        f"/api/v1/devices/{device.id}/commands/{command['id']}", headers=auth(other_account.token)
    )
    assert hidden.status_code == 404
    assert _ask(client, other_account, device).status_code == 404


def test_a_click_needs_its_point(client: TestClient, db: Db) -> None:
    account, device = _setup(db)
    _poll(client, device)
    answer = _ask(client, account, device, kind="click", params={"x": 10})
    assert answer.status_code == 422
    assert "params.y" in answer.text
    assert _ask(client, account, device, kind="click", params={"x": 10, "y": 20}).status_code == 201


def test_a_hierarchy_is_read_with_its_selectors_and_a_broken_one_is_refused(
    client: TestClient, db: Db
) -> None:
    account, _device = _setup(db)
    answer = client.post(
        "/api/v1/inspect/hierarchy", json={"hierarchy": HIERARCHY}, headers=auth(account.token)
    )
    assert answer.status_code == 200
    assert len(answer.json()["elements"]) == 3
    broken = client.post(
        "/api/v1/inspect/hierarchy", json={"hierarchy": "<oops"}, headers=auth(account.token)
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["pointer"] == "/hierarchy"
