"""What a security probe of every endpoint found, kept fixed: the security headers on every answer
(the API's docs pages too), the session cookie's Secure flag behind a TLS proxy, another account's
ids answering 404 on the hooks list and the dashboard's redelivery, webhooks that go only to the
address that was checked (no DNS rebinding, no IPv4 address hidden in an IPv6 one, never the cloud
metadata service), and what a workflow makes the server compute kept bounded: regular expressions
that backtrack without bound, CEL comprehensions that multiply, templates that double a value."""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from interpreter.appmodel.model import AppModel
from interpreter.denylist import Denylist
from interpreter.errors import AppModelError
from interpreter.expressions import ExpressionError, evaluate
from interpreter.matcher import compile_pattern
from interpreter.run_inputs import check_inputs
from interpreter.safe_regex import backtracking_risk
from server.app import create_app
from server.outgoing import address_refusal
from server.settings import Settings
from server.webhooks.delivery import deliver_due, send
from server.workflows.simulation import simulate
from tests.server.factories import Db, auth, create_account, create_workflow, sample_definition
from tests.server.test_dashboard_support import form_csrf, sign_in
from tests.server.webhook_receiver import webhook_receiver

# The database plays no part: SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in (
        "/docs",
        "/redoc",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/healthz",
        "/api/v1/nothing",
        "/",
    ):
        answer = client.get(path, follow_redirects=False)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["referrer-policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        if not answer.headers.get("content-type", "").startswith("text/html"):
            assert answer.headers["content-security-policy"].startswith("default-src 'none'"), path


@SQLITE_ONLY
def test_a_page_keeps_its_own_policy(client: TestClient) -> None:
    page = client.get("/signin")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers.get_list("content-security-policy") == [page.headers["content-security-policy"]]


@SQLITE_ONLY
def test_the_session_cookie_is_secure_when_the_public_url_is_https(settings: Settings, db: Db) -> None:
    # Behind a proxy that ends TLS (and is not trusted for X-Forwarded-Proto) requests look like http.
    app = create_app(settings.model_copy(update={"public_url": "https://phones.example.com"}))
    acc = create_account(db)
    with TestClient(app) as client:
        page = client.get("/signin")
        assert "secure" in page.headers["set-cookie"].lower()
        csrf = form_csrf(page.text)
        # A browser sends the Secure cookie back over https only; this request is that.
        client.cookies.set("pf_signin_csrf", csrf)
        answer = client.post("/signin", data={"token": acc.token, "csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        session_cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pf_session="))
        assert "secure" in session_cookie.lower()
        assert "httponly" in session_cookie.lower()
        # Over plain http the form's cookie never comes back: the page says where to sign in instead.
        client.cookies.clear()
        refused = client.post("/signin", data={"token": acc.token, "csrf_token": csrf})
        assert refused.status_code == 403
        assert "https://phones.example.com/signin" in refused.text


@pytest.mark.private_targets
def test_another_accounts_ids_are_404_on_the_hooks_list_and_the_redelivery(
    client: TestClient, db: Db
) -> None:
    mine, theirs = create_account(db), create_account(db)
    their_workflow = create_workflow(db, theirs.id)
    listed = client.get(f"/api/v1/workflows/{their_workflow.id}/hooks", headers=auth(mine.token))
    assert listed.status_code == 404, listed.text
    assert "no workflow" in listed.json()["detail"]

    def endpoint(token: str) -> str:
        made = client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/x", "events": ["run.finished"]},
            headers=auth(token),
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    my_endpoint, their_endpoint = endpoint(mine.token), endpoint(theirs.token)
    delivery = client.post(f"/api/v1/webhooks/{my_endpoint}/test", headers=auth(mine.token)).json()["id"]
    csrf = sign_in(client, mine.token)
    wrong = client.post(
        f"/integrations/webhooks/{their_endpoint}/deliveries/{delivery}/redeliver",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert wrong.status_code == 404, wrong.text
    right = client.post(
        f"/integrations/webhooks/{my_endpoint}/deliveries/{delivery}/redeliver",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert right.status_code == 303, right.text


@SQLITE_ONLY
def test_a_webhook_to_the_metadata_service_is_refused_when_made(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/x",
        "http://0.0.0.0:8080/",
        "http://[::]/",
    ):
        answer = client.post(
            "/api/v1/webhooks", json={"url": url, "events": ["run.finished"]}, headers=auth(acc.token)
        )
        assert answer.status_code == 422, answer.text
        assert "link-local" in answer.json()["errors"][0]["hint"], url


@pytest.mark.parametrize(
    ("address", "allowed_with_private", "allowed_without"),
    [
        ("8.8.8.8", True, True),
        ("2606:4700::1111", True, True),
        ("10.1.2.3", True, False),
        ("::ffff:127.0.0.1", True, False),
        ("64:ff9b::7f00:1", True, False),  # NAT64 of 127.0.0.1
        ("2002:a01:203::", True, False),  # 6to4 of 10.1.2.3
        ("::127.0.0.1", True, False),  # IPv4-compatible
        ("169.254.169.254", False, False),
        ("::ffff:169.254.169.254", False, False),
        ("fe80::1", False, False),
    ],
)
def test_the_address_a_webhook_reaches_is_judged_with_the_ipv4_it_carries(
    address: str, allowed_with_private: bool, allowed_without: bool
) -> None:
    ip = ipaddress.ip_address(address)
    assert (address_refusal("h", ip, allow_private=True) is None) == allowed_with_private
    assert (address_refusal("h", ip, allow_private=False) is None) == allowed_without


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A resolver for `*.test` names: each lookup of a name takes the next of its answers (the last one
    again when they run out), as a DNS server that rebinds a name between two lookups does; an answer
    of several addresses is written "a,b"."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in table:
            return real(host, port, *args, **kwargs)
        addresses = table[name].pop(0) if len(table[name]) > 1 else table[name][0]
        return [info for address in addresses.split(",") for info in real(address, port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def _settings(allow_private: bool) -> Settings:
    return Settings(
        database_url="sqlite://", webhook_allow_private_targets=allow_private, webhook_timeout_s=1
    )


def test_a_webhook_goes_to_the_address_that_was_checked(names: dict[str, list[str]]) -> None:
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        # Public when checked, the server's own loopback when connecting: it must not arrive.
        names["rebind.test"] = ["93.184.215.14", "127.0.0.1"]
        result = send(
            f"http://rebind.test:{port}/hooks", "whsec_" + "A" * 32, "msg_1", "{}", _settings(False)
        )
        assert receiver.received == [], "the request went to an address that was never checked"
        assert result.status_code is None
        # A name of the receiver's (private targets allowed): sent there, with the name as its Host.
        names["receiver.test"] = ["127.0.0.1"]
        result = send(
            f"http://receiver.test:{port}/hooks", "whsec_" + "A" * 32, "msg_2", "{}", _settings(True)
        )
        assert result.status_code == 200, result
        [arrived] = receiver.wait_for(1)
        assert arrived.headers["host"] == f"receiver.test:{port}"
        # A name of two addresses, the first refusing the connection: the next one is tried.
        names["dual.test"] = ["::1,127.0.0.1"]
        result = send(f"http://dual.test:{port}/hooks", "whsec_" + "A" * 32, "msg_3", "{}", _settings(True))
        assert result.status_code == 200, result
        assert len(receiver.wait_for(2)) == 2


@SQLITE_ONLY
@pytest.mark.private_targets
def test_a_name_that_resolves_to_the_metadata_service_is_never_sent_to(
    app: FastAPI, client: TestClient, db: Db, settings: Settings, names: dict[str, list[str]]
) -> None:
    names["metadata.test"] = ["169.254.169.254"]
    acc = create_account(db)
    made = client.post(
        "/api/v1/webhooks",
        json={"url": "http://metadata.test/x", "events": ["run.finished"]},
        headers=auth(acc.token),
    )
    endpoint = made.json()["id"]
    client.post(f"/api/v1/webhooks/{endpoint}/test", headers=auth(acc.token))
    deliver_due(app.state.session_factory, settings)  # even with private targets allowed
    [delivery] = client.get(f"/api/v1/webhooks/{endpoint}/deliveries", headers=auth(acc.token)).json()
    assert "169.254.169.254" in delivery["lastError"]
    assert "link-local" in delivery["lastError"]


# --- regular expressions that backtrack without bound (they held the whole process: 24 `a`s took 3 s,
# each one more doubled it) ---

REDOS = "(a+)+$"


@SQLITE_ONLY
def test_a_pattern_that_backtracks_without_bound_is_refused_in_a_workflow(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    inputs = {"type": "object", "properties": {"order": {"type": "string", "pattern": REDOS}}}
    tap = {"id": "tap", "kind": "action.tapByText", "params": {"text": REDOS, "match": "regex"}}
    definition = sample_definition(inputs=inputs)
    definition["nodes"][-1]["next"] = "tap"
    definition["nodes"].append(tap)
    answer = client.post(
        "/api/v1/workflows/validate", json={"definition": definition}, headers=auth(acc.token)
    )
    assert answer.status_code == 200, answer.text
    pointers = {error["pointer"]: error for error in answer.json()["errors"]}
    assert "exponential" in pointers["/inputs/properties/order/pattern"]["message"]
    assert "exponential" in pointers["/nodes/2/params/text"]["message"]
    assert "possessive" in pointers["/inputs/properties/order/pattern"]["hint"]


def test_a_stored_pattern_that_backtracks_is_never_run() -> None:
    # Versions stored before the check, and templates known only at run time, meet it when they run.
    schema = {"type": "object", "properties": {"order": {"type": "string", "pattern": REDOS}}}
    started = time.perf_counter()
    why = check_inputs(schema, {"order": "a" * 40 + "!"})
    assert why is not None
    assert "exponential" in why
    with pytest.raises(ValueError, match="exponential"):
        compile_pattern(REDOS)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("(a+)+$", True),
        (r"(\w+\s?)+$", True),
        ("(a|ab)*c", True),
        (r"(.*)\1", True),
        ("(?>a+)+$", False),
        ("(?:foo|bar)+", False),
        (r"(\d{3}-)+", False),
        (r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", False),
        (r"Order #\d+ .*", False),
        (r"(ab?)+", False),
        # each round ends with a character its repeat cannot match: the rounds are told apart
        (r"^(\d{1,3}\.){3}\d{1,3}$", False),
        (r"^([\w-]+\.)+[a-z]{2,}$", False),
        (r"(\w+\s)*\w+", False),
        (r"([a-z]+A)+$", False),
        ("(a+a)+$", True),
        (r"(.+\.)+$", True),
        (r"(?i)([a-z]+A)+$", True),
    ],
)
def test_which_patterns_backtrack_without_bound(pattern: str, refused: bool) -> None:
    assert (backtracking_risk(pattern) is not None) == refused


def test_a_condition_whose_work_multiplies_is_refused() -> None:
    nested = "1"
    for depth in range(30):  # 2^30 elements: it never finished
        nested = f"[0, 1].map(v{depth}, {nested})"
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match="more than 2"):
        evaluate("[0].map(a, [a, a]).map(b, [b, b]).map(c, [c, c]).size() > 0", {})
    with pytest.raises(ExpressionError, match="inside another comprehension"):
        evaluate(f"size({nested}) > 0", {})
    assert time.perf_counter() - started < 1
    assert evaluate("inputs.n.map(x, x * 2).filter(y, y > 2).size() == 1", {"inputs": {"n": [1, 2]}})


def _set_vars(values: list[Any]) -> dict[str, Any]:
    """A definition of control.setVar steps, one a value, in a row."""
    nodes = [
        {
            "id": f"s{i}",
            "kind": "control.setVar",
            "params": {"name": f"v{i % 2}", "value": value},
            "next": f"s{i + 1}",
        }
        for i, value in enumerate(values)
    ]
    del nodes[-1]["next"]
    return {
        "schemaVersion": 1,
        "name": "vars",
        "targetPackages": ["com.example.shop"],
        "start": "s0",
        "nodes": nodes,
    }


def test_a_value_that_doubles_each_step_stops_at_the_bound() -> None:
    # 2.7 GB after 29 doublings on the old code; here 22 (8 MB), refused at a megabyte.
    doubling = _set_vars(["ab"] + ["{{vars.v0}}{{vars.v0}}"] * 22)
    for node in doubling["nodes"]:
        node["params"]["name"] = "v0"
    run = simulate(doubling, inputs={}, apps=None, scenario=None, denylist=Denylist())
    assert run["status"] == "failed"
    assert "more than 1,000,000 characters" in run["trace"][-1]["message"]


def test_what_a_runs_templates_make_in_all_is_bounded() -> None:
    big = "x" * 900_000
    many = _set_vars([f"{{{{inputs.big}}}}{i}" for i in range(30)])  # 27 MB kept in all on the old code
    many["inputs"] = {"type": "object", "properties": {"big": {"type": "string"}}}
    run = simulate(many, inputs={"big": big}, apps=None, scenario=None, denylist=Denylist())
    assert run["status"] == "failed"
    assert "20,000,000 characters in all" in run["trace"][-1]["message"]
    assert len(run["trace"]) < 30


@SQLITE_ONLY
def test_a_hierarchy_nested_beyond_any_screen_is_422(client: TestClient, db: Db) -> None:
    # 50,000 levels (2 MB) took the inspector 38 s on the old code; 2,000 here (the tests' body limit).
    acc = create_account(db)
    deep = '<node class="a">' * 2000 + "</node>" * 2000
    answer = client.post(
        "/api/v1/inspect/hierarchy",
        json={"hierarchy": f"<hierarchy>{deep}</hierarchy>"},
        headers=auth(acc.token),
    )
    assert answer.status_code == 422, answer.text
    assert "more than 512 deep" in answer.json()["errors"][0]["message"]


def test_checking_inputs_costs_about_what_they_are_long() -> None:
    # Objects compared pair by pair: 4,000 took 13 s on the old code. Nested anyOf over a nested list:
    # every failing branch walked, doubling per level.
    unique = {"type": "object", "properties": {"l": {"type": "array", "uniqueItems": True}}}
    either = {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/n"}}] * 2 + [{"type": "integer"}]}
    nested = {"type": "object", "$defs": {"n": either}, "properties": {"o": {"$ref": "#/$defs/n"}}}
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    started = time.perf_counter()
    duplicated = check_inputs(unique, {"l": [{"a": i} for i in range(3000)] + [{"a": 7}]})
    assert duplicated is not None
    assert 'at /l: the items are not unique: {"a": 7}' in duplicated
    assert check_inputs(unique, {"l": [{"a": i} for i in range(3000)]}) is None
    refused = check_inputs(nested, {"o": deep})
    assert refused is not None
    assert "anyOf" in refused
    assert time.perf_counter() - started < 1


def test_an_app_model_of_more_widgets_than_any_app_is_refused_before_any_is_made() -> None:
    # 10 KB of JSON: 200 widgets repeated 1,000 times; 1.4 s and 90 MB to load on the old code.
    widgets = [{"id": f"w{j}_{{n}}", "repeat": 1000, "text": "x"} for j in range(200)]
    screen = {"id": "home", "activity": ".Main", "widgets": widgets}
    model = {
        "schemaVersion": 1,
        "apps": [{"package": "com.t.t", "label": "T", "startScreen": "home", "screens": [screen]}],
    }
    started = time.perf_counter()
    with pytest.raises(AppModelError, match="more than 100,000 widgets"):
        AppModel.from_dict(model)
    assert time.perf_counter() - started < 0.5


@SQLITE_ONLY
def test_json_in_form_fields_and_cursors_gets_the_json_bodys_refusals(client: TestClient, db: Db) -> None:
    # The guard that refuses a too-deep JSON body or a 5,000-digit number saw only JSON bodies: the same
    # text in a dashboard form field, a cursor or a hook posted as a form was a 500.
    acc = create_account(db)
    workflow = create_workflow(db, acc.id)
    csrf = sign_in(client, acc.token)
    deep = "[" * 5000 + "]" * 5000
    for definition, words in ((deep, "deeper than 64"), ('{"schemaVersion": ' + "9" * 5000 + "}", "64 bits")):
        page = client.post("/workflows", data={"csrf_token": csrf, "name": "x", "definition": definition})
        assert page.status_code == 422, page.text[:300]
        assert words in page.text
    batch = client.post(
        f"/workflows/{workflow.id}/batches", data={"csrf_token": csrf, "tag": "x", "inputs": deep}
    )
    assert batch.status_code == 422, batch.text[:300]
    cursor = base64.urlsafe_b64encode(b"[" * 5000).decode()
    assert client.get("/runs", params={"cursor": cursor}).status_code == 422
    fired = client.post(
        "/api/v1/hooks/pf_hook_x", content=deep, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert fired.status_code < 500
