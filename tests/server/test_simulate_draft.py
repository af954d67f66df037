"""`POST /api/v1/simulate`: a draft run on the simulator, the phone's screen before and after each step."""

from __future__ import annotations

import base64
import io
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from interpreter.appmodel import PhoneState, sample_apps
from server.workflows.models import Workflow
from tests.server.factories import Db, auth, create_account

SHOP = "com.example.shop"


def _draft(*nodes: dict[str, Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    chained = [dict(node) for node in nodes]
    for here, there in zip(chained, chained[1:], strict=False):
        here.setdefault("next", there["id"])
    definition: dict[str, Any] = {
        "schemaVersion": 1,
        "name": "draft",
        "start": chained[0]["id"],
        "nodes": chained,
    }
    if inputs is not None:
        definition["inputs"] = inputs
    return definition


SIGN_IN = _draft(
    {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}},
    {"id": "who", "kind": "control.setVar", "params": {"name": "user", "value": "{{inputs.user}}"}},
    {
        "id": "user",
        "kind": "action.typeText",
        "params": {"text": "{{vars.user}}", "selector": {"resourceId": f"{SHOP}:id/user"}},
    },
    {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
    {"id": "orders", "kind": "action.waitForText", "params": {"text": "New order"}},
    inputs={"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]},
)


def _simulate(client: TestClient, token: str, status: int = 200, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/simulate", json=body, headers=auth(token))
    assert answer.status_code == status, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _picture(result: dict[str, Any], screen_id: str) -> Image.Image:
    uri = result["images"][screen_id]["uri"]
    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/webp;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def _shop_login_bounds(text: str) -> dict[str, int]:
    phone = PhoneState(sample_apps())
    phone.launch(SHOP)
    node = next(n for n in phone.hierarchy().walk() if n.text == text)
    b = node.bounds
    return {"left": b.left, "top": b.top, "right": b.right, "bottom": b.bottom}


def test_a_draft_runs_with_screens_before_and_after_each_step_and_nothing_is_saved(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    result = _simulate(client, acc.token, definition=SIGN_IN, inputs={"user": "alice"})
    assert result["status"] == "success", result["errorMessage"]
    assert [e["nodeId"] for e in result["trace"]] == ["open", "who", "user", "sign_in", "orders"]
    assert result["screenSize"] == {"width": 1080, "height": 2340}
    steps = {e["nodeId"]: e["screens"] for e in result["trace"]}
    # every screen named by a step is in `images`, each a 360 px wide picture of the phone
    named = {s[k] for s in steps.values() for k in ("before", "after")}
    assert named == set(result["images"])
    for screen_id in named:
        picture = _picture(result, screen_id)
        assert picture.format == "PNG"
        assert picture.size == (360, 780)
        assert result["images"][screen_id]["width"] == 360
    # a step that does not touch the phone shows the same screen before and after (one picture)
    assert steps["who"]["before"] == steps["who"]["after"] == steps["open"]["after"]
    assert steps["who"]["actedOn"] is None
    # typing changed the picture; the tap was on "Sign in", outlined on the screen it was found on
    assert steps["user"]["before"] != steps["user"]["after"]
    assert steps["sign_in"]["actedOn"] == {
        "screen": steps["sign_in"]["before"],
        "bounds": _shop_login_bounds("Sign in"),
    }
    assert steps["sign_in"]["after"] != steps["sign_in"]["before"]
    # the screens are deduplicated: the wait's before is the tap's after, not a second picture
    assert steps["orders"]["before"] == steps["sign_in"]["after"]
    assert len(result["images"]) == len(named) < 2 * len(result["trace"])
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Workflow)) == 0


def test_the_pictures_are_drawn_by_the_app_models_renderer_at_the_asked_size_and_format(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    draft = _draft({"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}})
    result = _simulate(client, acc.token, definition=draft, screenWidth=540, screenFormat="webp")
    after = result["trace"][0]["screens"]["after"]
    picture = _picture(result, after)
    assert picture.format == "WEBP"
    assert picture.size == (540, 1170)
    # the Sign in button is drawn where the layout puts it: a blue box (the emulator's screenshot colours)
    b = _shop_login_bounds("Sign in")
    inside = picture.convert("RGB").getpixel(((b["left"] + 30) // 2, (b["top"] + 10) // 2))
    assert isinstance(inside, tuple)
    assert inside[2] > 180
    assert inside[0] < 90
    without = _simulate(client, acc.token, definition=draft, screens=False)
    assert without["images"] == {}
    assert "screens" not in without["trace"][0]


def test_drawing_the_screens_changes_nothing_in_the_run(client: TestClient, db: Db) -> None:
    """The preview is the run: with or without pictures, the same trace, its times included."""
    acc = create_account(db)
    body = {"definition": SIGN_IN, "inputs": {"user": "alice"}}
    with_screens = _simulate(client, acc.token, **body)
    without = _simulate(client, acc.token, **body, screens=False)
    drawn = [{k: v for k, v in event.items() if k != "screens"} for event in with_screens["trace"]]
    assert drawn == without["trace"]
    assert with_screens["durationMs"] == without["durationMs"] > 0


def test_approvals_are_answered_approve_reject_with_a_note_or_left_to_time_out(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    draft = _draft(
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}},
        {
            "id": "ask",
            "kind": "control.approval",
            "params": {"message": "Sign in?", "timeoutS": 120},
            "next": {"approved": "sign_in", "rejected": "stop"},
        },
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
        {"id": "stop", "kind": "control.setVar", "params": {"name": "stopped", "value": True}},
    )
    draft["nodes"][2].pop("next")
    approved = _simulate(
        client,
        acc.token,
        definition=draft,
        scenario={"approvals": {"ask": {"decision": "approved", "by": "me"}}},
    )
    assert [(e["nodeId"], e["outcome"]) for e in approved["trace"]] == [
        ("open", "ok"),
        ("ask", "ok"),
        ("sign_in", "ok"),
    ]
    assert approved["trace"][1]["output"]["respondedBy"] == "me"
    # The engine's execution log comes with it: the approval asked and answered, in order.
    log = [(e["kind"], e["nodeId"]) for e in approved["log"]]
    assert log.index(("approval-asked", "ask")) + 1 == log.index(("approval-answered", "ask"))
    answered = next(e for e in approved["log"] if e["kind"] == "approval-answered")
    assert answered["values"]["decision"] == "approved"
    assert answered["values"]["by"] == "me"
    rejected = _simulate(
        client,
        acc.token,
        definition=draft,
        scenario={"approvals": {"ask": {"decision": "rejected", "note": "not today"}}},
    )
    ask = rejected["trace"][1]
    assert (ask["outcome"], ask["message"]) == ("failed", "rejected: not today")
    assert [e["nodeId"] for e in rejected["trace"]] == ["open", "ask", "stop"]
    assert rejected["status"] == "success"
    timed_out = _simulate(
        client, acc.token, definition=draft, scenario={"approvals": {"ask": {"decision": "timeout"}}}
    )
    assert timed_out["trace"][1]["message"] == "no answer to the approval within 120 s"
    # the phone's clock moved on by the wait: its status bar shows 00:02, so the screen is another one
    waited = timed_out["trace"][1]["screens"]
    assert waited["before"] == timed_out["trace"][0]["screens"]["after"]
    assert waited["after"] != waited["before"]
    assert timed_out["trace"][2]["screens"]["before"] == waited["after"]


def test_a_failing_step_has_its_message_and_the_screen_it_looked_at(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    draft = _draft(
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}},
        {"id": "go", "kind": "action.tapByText", "params": {"text": "Checkout", "timeoutMs": 500}},
    )
    result = _simulate(client, acc.token, definition=draft)
    assert result["status"] == "failed"
    failing = result["trace"][-1]
    assert failing["outcome"] == "failed"
    assert failing["message"].startswith("no element with text 'Checkout' on screen; on screen: 'Shop', ")
    assert result["errorMessage"] == f"step 'go' (action.tapByText): {failing['message']}"
    assert failing["screens"]["before"] == result["trace"][0]["screens"]["after"]
    assert failing["screens"]["actedOn"] is None


def test_any_app_model_the_account_sends_is_simulated_and_drawn(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    apps = {
        "schemaVersion": 1,
        "apps": [
            {
                "package": "com.acme.tiny",
                "label": "Tiny",
                "startScreen": "home",
                "screens": [
                    {
                        "id": "home",
                        "title": "Tiny",
                        "widgets": [
                            {"id": "go", "class": "Button", "text": "Go", "onClick": [{"goTo": "next"}]}
                        ],
                    },
                    {"id": "next", "title": "Next", "widgets": [{"id": "done", "text": "Done!"}]},
                ],
            }
        ],
    }
    draft = _draft(
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.acme.tiny"}},
        {"id": "go", "kind": "action.tapByText", "params": {"text": "Go"}},
        {"id": "done", "kind": "action.readText", "params": {"selector": {"text": "Done!"}}},
    )
    result = _simulate(client, acc.token, definition=draft, apps=apps)
    assert result["status"] == "success", result["errorMessage"]
    assert result["trace"][-1]["output"] == {"text": "Done!"}
    done = result["trace"][-1]["screens"]["actedOn"]
    assert done is not None
    assert done["screen"] == result["trace"][-1]["screens"]["before"]
    assert done["bounds"]["top"] > 0
    # the sample apps are not there: only the model sent
    missing = _simulate(
        client,
        acc.token,
        definition=_draft({"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}}),
        apps=apps,
    )
    assert missing["trace"][0]["message"] == f"app not installed: {SHOP}"


def test_an_invalid_draft_app_model_or_scenario_is_a_422_with_pointers(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    broken = _draft(
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}, "next": "nowhere"}
    )
    problem = _simulate(client, acc.token, 422, definition=broken)
    assert any(e["pointer"] == "/definition/nodes/0/next" for e in problem["errors"])
    fine = _draft({"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}})
    bad_apps = _simulate(client, acc.token, 422, definition=fine, apps={"apps": "no"})
    assert bad_apps["errors"][0]["pointer"] == "/apps"
    bad_scenario = _simulate(
        client, acc.token, 422, definition=fine, scenario={"approvals": {"x": {"decision": "maybe"}}}
    )
    assert bad_scenario["errors"][0]["pointer"] == "/scenario"
    assert client.post("/api/v1/simulate", json={"definition": fine}).status_code == 401
