"""The workflow page's schedules: list, add (with refusals shown on the page), enable, disable, delete."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import account_state, sign_in


def _schedule_ids(page: str) -> list[str]:
    return re.findall(r'data-schedule-id="([^"]+)"', page)


def test_add_disable_enable_and_delete_a_schedule_from_the_workflow_page(client: TestClient, db: Db) -> None:
    account = create_account(db)
    workflow = create_workflow(db, account.id)
    device = create_device(db, account.id, name="Front desk")
    csrf = sign_in(client, account.token)
    url = f"/workflows/{workflow.id}"

    page = client.get(url).text
    assert "No schedule yet" in page
    assert f'action="{url}/schedules"' in page

    wrong = client.post(
        f"{url}/schedules",
        data={"csrf_token": csrf, "device_id": device.id, "cron": "0 9 * *", "timezone": "UTC"},
    )
    assert wrong.status_code == 422
    assert "5 fields, this one has 4" in wrong.text
    assert "*/15 * * * *" in wrong.text  # the hint's example
    assert 'value="0 9 * *"' in wrong.text  # the form keeps what was typed
    zone = client.post(
        f"{url}/schedules",
        data={"csrf_token": csrf, "device_id": device.id, "cron": "0 9 * * *", "timezone": "Mars/Base"},
    )
    assert zone.status_code == 422
    assert "unknown time zone &#39;Mars/Base&#39;" in zone.text
    assert _schedule_ids(zone.text) == []

    added = client.post(
        f"{url}/schedules",
        data={
            "csrf_token": csrf,
            "device_id": device.id,
            "cron": "30 9 * * 1-5",
            "timezone": "Europe/Paris",
            "inputs": '{"order": "A-1"}',
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    page = client.get(url).text
    [schedule_id] = _schedule_ids(page)
    row = page.split(f'data-schedule-id="{schedule_id}"', 1)[1].split("</tr>", 1)[0]
    assert "<code>30 9 * * 1-5</code>" in row
    assert "Europe/Paris" in row
    assert "Front desk" in row
    assert "enabled" in row
    api = client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).json()
    assert api["inputs"] == {"order": "A-1"}
    assert api["nextFireAt"][:19].replace("T", " ") in row  # the next fire, shown in UTC

    off = client.post(f"{url}/schedules/{schedule_id}/disable", data={"csrf_token": csrf})
    assert off.status_code == 200  # redirected back to the page
    row = off.text.split(f'data-schedule-id="{schedule_id}"', 1)[1].split("</tr>", 1)[0]
    assert "disabled" in row
    assert f"{schedule_id}/enable" in row
    assert (
        client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).json()["enabled"] is False
    )

    # Enabling is refused, with the reason, while the phone is revoked.
    client.post(f"/devices/{device.id}/revoke", data={"csrf_token": csrf})
    refused = client.post(f"{url}/schedules/{schedule_id}/enable", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "revoked" in refused.text
    assert (
        client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).json()["enabled"] is False
    )

    gone = client.post(f"{url}/schedules/{schedule_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 200
    assert _schedule_ids(gone.text) == []
    assert client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).status_code == 404


def test_another_accounts_schedule_cannot_be_changed_from_the_dashboard(client: TestClient, db: Db) -> None:
    owner = create_account(db)
    workflow = create_workflow(db, owner.id)
    device = create_device(db, owner.id)
    created = client.post(
        f"/api/v1/workflows/{workflow.id}/schedules",
        json={"deviceId": device.id, "cron": "0 9 * * *"},
        headers=auth(owner.token),
    ).json()
    before = account_state(db, owner.id)

    intruder = create_account(db)
    own_workflow = create_workflow(db, intruder.id)
    csrf = sign_in(client, intruder.token)
    for workflow_id in (workflow.id, own_workflow.id):
        for action in ("disable", "enable", "delete"):
            answer = client.post(
                f"/workflows/{workflow_id}/schedules/{created['id']}/{action}", data={"csrf_token": csrf}
            )
            assert answer.status_code == 404, (workflow_id, action)
            assert answer.headers["content-type"].startswith("text/html")
    added = client.post(
        f"/workflows/{workflow.id}/schedules",
        data={"csrf_token": csrf, "device_id": device.id, "cron": "0 9 * * *"},
    )
    assert added.status_code == 404
    assert account_state(db, owner.id) == before
