"""The server's own outgoing requests (webhooks, simulated action.http with live HTTP) do not reach
loopback or private addresses unless the operator sets PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS=true:
by default any account could make the server POST to services of its network and read the first
1,000 characters of their answers in the delivery log."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from interpreter.denylist import Denylist
from server.settings import Settings
from server.webhooks.delivery import deliver_due
from server.workflows.simulation import simulate
from tests.server.factories import Db, auth, create_account, sample_definition
from tests.server.test_dashboard_support import sign_in
from tests.server.webhook_receiver import webhook_receiver

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SETTING = "PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"


def test_private_targets_are_refused_by_default() -> None:
    assert Settings(database_url="sqlite://").webhook_allow_private_targets is False


def _make(client: TestClient, token: str, url: str) -> Any:
    return client.post("/api/v1/webhooks", json={"url": url, "events": ["run.finished"]}, headers=auth(token))


@SQLITE_ONLY
def test_a_private_address_written_in_the_url_is_422_naming_the_setting(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    for url in (
        "http://127.0.0.1:8080/hooks",
        "http://10.1.2.3/hooks",
        "https://192.168.1.5/x",
        "http://[::1]/",
        "http://localhost:8080/",
        "http://0x7f000001/",  # 127.0.0.1 as a resolver reads it, without asking DNS
    ):
        answer = _make(client, acc.token, url)
        assert answer.status_code == 422, (url, answer.text)
        [problem] = answer.json()["errors"]
        assert problem["pointer"] == "/url"
        assert SETTING in problem["hint"], problem
    public = _make(client, acc.token, "https://hooks.example.com/x")
    assert public.status_code == 201, public.text
    changed = client.patch(
        f"/api/v1/webhooks/{public.json()['id']}", json={"url": "http://10.0.0.7/"}, headers=auth(acc.token)
    )
    assert changed.status_code == 422, changed.text
    assert SETTING in changed.json()["errors"][0]["hint"]
    # The dashboard's form says so too.
    csrf = sign_in(client, acc.token)
    added = client.post(
        "/integrations/webhooks",
        data={"csrf_token": csrf, "url": "http://127.0.0.1:9/x", "events": ["run.failed"]},
    )
    assert added.status_code == 422, added.text
    assert "PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS" in added.text


@pytest.fixture
def loopback_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """A name (not `localhost`) that resolves to 127.0.0.1, as a DNS record of anyone's may."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        return real("127.0.0.1" if name == "inside.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return "inside.test"


@SQLITE_ONLY
def test_a_name_that_resolves_to_loopback_is_not_sent_to_by_default(
    app: FastAPI, client: TestClient, db: Db, settings: Settings, loopback_name: str
) -> None:
    acc = create_account(db)
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        made = _make(client, acc.token, f"http://{loopback_name}:{port}/hooks")
        assert made.status_code == 201, made.text  # a name: judged at each attempt
        endpoint = made.json()["id"]
        client.post(f"/api/v1/webhooks/{endpoint}/test", headers=auth(acc.token))
        deliver_due(app.state.session_factory, settings)
        [delivery] = client.get(f"/api/v1/webhooks/{endpoint}/deliveries", headers=auth(acc.token)).json()
        assert receiver.received == []
        assert delivery["lastStatusCode"] is None
        assert delivery["lastResponse"] is None
        assert f"{loopback_name} resolves to 127.0.0.1" in delivery["lastError"], delivery
        assert SETTING in delivery["lastError"], delivery


@SQLITE_ONLY
@pytest.mark.private_targets
def test_the_setting_lets_webhooks_reach_private_addresses(
    app: FastAPI, client: TestClient, db: Db, settings: Settings
) -> None:
    acc = create_account(db)
    assert _make(client, acc.token, "http://10.1.2.3/hooks").status_code == 201
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        for url in (receiver.url, f"http://localhost:{port}/hooks"):
            made = _make(client, acc.token, url)
            assert made.status_code == 201, made.text
            client.post(f"/api/v1/webhooks/{made.json()['id']}/test", headers=auth(acc.token))
        deliver_due(app.state.session_factory, settings)
        assert len(receiver.wait_for(2)) == 2


def _http_step(url: str) -> dict[str, Any]:
    node = {"id": "hook", "kind": "action.http", "params": {"method": "POST", "url": url, "body": {"a": 1}}}
    return sample_definition(targetPackages=[], nodes=[node], start="hook")


def test_simulated_live_http_does_not_reach_private_addresses_by_default() -> None:
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        for url in (receiver.url, f"http://localhost:{port}/hooks"):
            run = simulate(
                _http_step(url), inputs={}, apps=None, scenario=None, denylist=Denylist(), live_http=True
            )
            assert run["status"] == "failed", run
            assert SETTING in run["trace"][-1]["message"], run["trace"][-1]
        assert receiver.received == []
        # Allowed: the request arrives.
        run = simulate(
            _http_step(f"http://localhost:{port}/hooks"),
            inputs={},
            apps=None,
            scenario=None,
            denylist=Denylist(),
            live_http=True,
            allow_private=True,
        )
        assert run["status"] == "success", run
        [arrived] = receiver.wait_for(1)
        assert arrived.json() == {"a": 1}
        assert arrived.headers["host"] == f"localhost:{port}"
