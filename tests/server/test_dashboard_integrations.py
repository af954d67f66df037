"""The Integrations pages: add a webhook endpoint and see its secret, send a test event and read the
delivery log (status, the answer's start, every attempt), redeliver; make, use and revoke an
incoming hook."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.settings import Settings
from server.webhooks.delivery import deliver_due
from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import sign_in
from tests.server.webhook_receiver import signature_is_valid, webhook_receiver


@pytest.mark.private_targets
def test_a_webhook_endpoint_from_the_page_to_its_delivery_log(
    client: TestClient, app: FastAPI, settings: Settings, db: Db
) -> None:
    account = create_account(db)
    csrf = sign_in(client, account.token)
    refused = client.post(
        "/integrations/webhooks", data={"csrf_token": csrf, "url": "not a url", "events": ["run.failed"]}
    )
    assert refused.status_code == 422
    assert "is not an http(s) URL" in refused.text
    with webhook_receiver() as receiver:
        receiver.answer_next((500, "receiver is warming up"))
        added = client.post(
            "/integrations/webhooks",
            data={"csrf_token": csrf, "url": receiver.url, "events": ["run.failed", "device.offline"]},
            follow_redirects=False,
        )
        assert added.status_code == 303
        endpoint_page = client.get(added.headers["location"]).text
        secret = re.search(r'<code id="secret">(whsec_[^<]+)</code>', endpoint_page)
        assert secret is not None
        assert "Verify each request" in endpoint_page
        endpoint_path = added.headers["location"].split("?")[0]
        assert receiver.url in client.get("/integrations").text

        client.post(endpoint_path + "/test", data={"csrf_token": csrf})
        deliver_due(app.state.session_factory, settings)
        [first] = receiver.wait_for(1)
        assert signature_is_valid(secret.group(1), first)
        log = client.get(endpoint_path).text
        assert 'data-status="pending"' in log  # 500: to be tried again
        assert "HTTP 500" in log
        assert "receiver is warming up" in log  # the start of the answer's body
        delivery_id = re.search(r'data-delivery-id="([^"]+)"', log)
        assert delivery_id is not None

        client.post(f"{endpoint_path}/deliveries/{delivery_id.group(1)}/redeliver", data={"csrf_token": csrf})
        deliver_due(app.state.session_factory, settings)
        receiver.wait_for(2)
        log = client.get(endpoint_path).text
        assert 'data-status="succeeded"' in log
        assert log.count("<li>") >= 2  # both attempts listed
        overview = client.get("/integrations").text
        assert "succeeded" in overview
        assert "webhook.test" in overview

        client.post(endpoint_path + "/delete", data={"csrf_token": csrf})
        assert receiver.url not in client.get("/integrations").text


def test_an_incoming_hook_made_used_and_revoked_from_the_page(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id, name="Till 2")
    workflow = create_workflow(db, account.id, name="Capture order")
    csrf = sign_in(client, account.token)
    made = client.post(
        "/integrations/hooks",
        data={"csrf_token": csrf, "workflow_id": workflow.id, "device_id": device.id, "name": "crm"},
    )
    assert made.status_code == 200, made.text
    url = re.search(r'<code id="new-hook-url">([^<]+)</code>', made.text)
    assert url is not None
    path = url.group(1).split("://", 1)[1].split("/", 1)[1]
    fired = client.post("/" + path, json={"order": "A-5"})
    assert fired.status_code == 201, fired.text
    assert fired.json()["triggeredBy"] == "hook:crm"
    page = client.get("/integrations").text
    assert url.group(1) not in page  # shown once
    assert "Till 2" in page
    assert "Capture order" in page
    hook_id = re.search(r'data-hook-id="([^"]+)"', page)
    assert hook_id is not None

    twice = client.post(
        "/integrations/hooks",
        data={"csrf_token": csrf, "workflow_id": workflow.id, "device_id": device.id, "name": "crm"},
    )
    assert twice.status_code == 409
    assert "already has a hook named" in twice.text
    client.post(f"/integrations/hooks/{hook_id.group(1)}/revoke", data={"csrf_token": csrf})
    assert client.post("/" + path, json={}).status_code == 410
    assert f'data-hook-id="{hook_id.group(1)}" class="revoked"' in client.get("/integrations").text
