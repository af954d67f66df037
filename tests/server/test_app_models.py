"""An account's app models on both databases: saved, listed, replaced, refused when not valid, and
recorded into from the screen inspector's commands (an inspect's screen, a click's transition)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from interpreter.appmodel import sample_apps
from interpreter.appmodel.phone import PhoneState
from interpreter.hierarchy import to_android_xml
from interpreter.matcher import Selector, find
from tests.server.factories import AccountFixture, Db, DeviceFixture, auth, create_account, create_device


def _answered(
    client: TestClient,
    account: AccountFixture,
    device: DeviceFixture,
    kind: str,
    params: dict[str, Any],
    result: dict[str, Any],
) -> str:
    """A command made, taken and answered as a bridge does; its id."""
    client.get("/api/v1/devices/me/commands", headers=auth(device.token))
    created = client.post(
        f"/api/v1/devices/{device.id}/commands",
        json={"kind": kind, "params": params},
        headers=auth(account.token),
    )
    assert created.status_code == 201, created.text
    command_id: str = created.json()["id"]
    assert [
        c["id"]
        for c in client.get("/api/v1/devices/me/commands", headers=auth(device.token)).json()["commands"]
    ] == [command_id]
    answer = client.post(
        f"/api/v1/devices/me/commands/{command_id}/result",
        json={"ok": True, "result": result},
        headers=auth(device.token),
    )
    assert answer.status_code == 200, answer.text
    return command_id


def _screen(phone: PhoneState) -> dict[str, Any]:
    package = phone.foreground_package()
    return {
        "hierarchy": to_android_xml(phone.hierarchy()),
        "foreground": {"package": package, "activity": phone.foreground_activity().removeprefix(package)},
    }


def test_an_app_model_is_saved_listed_replaced_and_refused_when_not_valid(client: TestClient, db: Db) -> None:
    account = create_account(db)
    headers = auth(account.token)
    created = client.post("/api/v1/app-models", json={"name": "My shop"}, headers=headers)
    assert created.status_code == 201, created.text
    model = created.json()
    assert model["model"] == {"schemaVersion": 1, "apps": []}
    again = client.post("/api/v1/app-models", json={"name": "My shop"}, headers=headers)
    assert again.status_code == 409
    assert "already has an app model named 'My shop'" in again.json()["detail"]

    broken = client.put(
        f"/api/v1/app-models/{model['id']}",
        json={"model": {"schemaVersion": 1, "apps": [{"package": "x"}]}},
        headers=headers,
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["pointer"] == "/model"
    document = {"schemaVersion": 1, "extends": "sample-apps", "apps": []}
    replaced = client.put(f"/api/v1/app-models/{model['id']}", json={"model": document}, headers=headers)
    assert replaced.status_code == 200, replaced.text
    listed = client.get("/api/v1/app-models", headers=headers).json()
    assert [(m["name"], m["packages"], m["screens"]) for m in listed] == [("My shop", [], 0)]
    assert (
        client.get(f"/api/v1/app-models/{model['id']}", headers=auth(create_account(db).token)).status_code
        == 404
    )
    assert client.delete(f"/api/v1/app-models/{model['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/app-models", headers=headers).json() == []


def test_recording_an_inspect_and_a_click_builds_the_screens_and_the_transition(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    headers = auth(account.token)
    model_id = client.post("/api/v1/app-models", json={"name": "Shop"}, headers=headers).json()["id"]

    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    inspect_id = _answered(client, account, device, "inspect", {}, _screen(phone))
    recorded = client.post(
        f"/api/v1/app-models/{model_id}/record",
        json={"deviceId": device.id, "commandId": inspect_id},
        headers=headers,
    )
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["recorded"] == {
        "package": "com.example.shop",
        "screen": "login",
        "before": None,
        "widget": None,
        "action": None,
    }

    before = _screen(phone)
    button = find(phone.hierarchy(), Selector(resource_id="com.example.shop:id/sign_in"))
    assert button is not None
    x, y = button.bounds.center
    phone.tap(x, y)
    click_id = _answered(
        client,
        account,
        device,
        "click",
        {"x": x, "y": y},
        {**_screen(phone), "clicked": {"x": x, "y": y}, "before": before},
    )
    recorded = client.post(
        f"/api/v1/app-models/{model_id}/record",
        json={"deviceId": device.id, "commandId": click_id},
        headers=headers,
    )
    assert recorded.status_code == 200, recorded.text
    body = recorded.json()
    assert body["recorded"] == {
        "package": "com.example.shop",
        "screen": "orders",
        "before": "login",
        "widget": "sign_in",
        "action": {"goTo": "orders"},
    }
    assert body["appModel"]["packages"] == ["com.example.shop"]
    assert body["appModel"]["screens"] == 2
    saved = client.get(f"/api/v1/app-models/{model_id}", headers=headers).json()["model"]
    login = saved["apps"][0]["screens"][0]
    assert next(w for w in login["widgets"] if w["id"] == "sign_in")["onClick"] == [{"goTo": "orders"}]


def test_a_command_that_is_not_done_is_not_recorded(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    headers = auth(account.token)
    model_id = client.post("/api/v1/app-models", json={"name": "Shop"}, headers=headers).json()["id"]
    client.get("/api/v1/devices/me/commands", headers=auth(device.token))
    pending = client.post(
        f"/api/v1/devices/{device.id}/commands", json={"kind": "inspect"}, headers=headers
    ).json()
    refused = client.post(
        f"/api/v1/app-models/{model_id}/record",
        json={"deviceId": device.id, "commandId": pending["id"]},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "is pending, not done" in refused.json()["detail"]
