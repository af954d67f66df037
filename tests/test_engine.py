"""The engine on the simulator: limits, cancel, callbacks, the run's fields, waits in virtual time."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.appmodel import AppModel, sample_apps
from interpreter.clock import VirtualClock
from interpreter.denylist import Denylist
from interpreter.engine import MAX_NODE_EXECUTIONS, run_workflow
from interpreter.errors import DeviceError
from interpreter.simulator import SimulatedDevice
from interpreter.trace import Outcome, RunStatus

SHOP = "com.example.shop"


def workflow(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"schemaVersion": 1, "name": "t", "start": nodes[0]["id"], "nodes": list(nodes), **top}


def node(node_id: str, kind: str, params: dict[str, Any] | None = None, next: Any = None, **extra: Any):
    data: dict[str, Any] = {"id": node_id, "kind": kind, "params": params or {}}
    if next is not None:
        data["next"] = next
    return data | extra


def simulate(definition: dict[str, Any], **kwargs: Any):
    clock = kwargs.pop("clock", None) or VirtualClock()
    # Device calls cost no time here, so that the waits' own arithmetic shows (test_simulator charges them).
    device = kwargs.pop("device", None) or SimulatedDevice(sample_apps(), clock, costs_ms={})
    return run_workflow(definition, device, clock=clock, **kwargs), clock


def test_an_endless_loop_stops_at_the_execution_limit() -> None:
    definition = workflow(
        node("a", "control.setVar", {"name": "x", "value": 1}, "b"),
        node("b", "control.setVar", {"name": "y", "value": 2}, "a"),
    )
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert len(result.trace) == MAX_NODE_EXECUTIONS == 10_000
    assert "10,000 node executions" in (result.error_message or "")


def test_should_cancel_is_honoured_between_steps() -> None:
    seen: list[str] = []
    definition = workflow(
        node("a", "control.setVar", {"name": "x", "value": 1}, "b"),
        node("b", "control.setVar", {"name": "x", "value": 2}, "c"),
        node("c", "control.setVar", {"name": "x", "value": 3}),
    )
    result, _ = simulate(
        definition, on_event=lambda e: seen.append(e.node_id), should_cancel=lambda: "b" in seen
    )
    assert result.status is RunStatus.CANCELLED
    assert [e.node_id for e in result.trace] == ["a", "b"]
    assert result.error_message is None


def test_status_callbacks_follow_the_run_through_an_approval() -> None:
    statuses: list[RunStatus] = []
    definition = workflow(node("ask", "control.approval", {"message": "ok?", "timeoutS": 5}, "end"))
    definition["nodes"].append(node("end", "control.setVar", {"name": "x", "value": 1}))
    from interpreter.approvals import ScenarioApprovals

    gate = ScenarioApprovals.from_json(
        {"approvals": {"ask": {"decision": "approved", "by": "ann", "afterS": 2}}}
    )
    result, clock = simulate(definition, approvals=gate, on_status=statuses.append)
    assert result.status is RunStatus.SUCCESS
    assert statuses == [
        RunStatus.RUNNING,
        RunStatus.WAITING_FOR_APPROVAL,
        RunStatus.RUNNING,
        RunStatus.SUCCESS,
    ]
    assert result.trace[0].duration_ms == 2000
    assert clock.monotonic() == 2.0


def test_run_fields_and_json_shape() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node(
            "tap",
            "action.tapByText",
            {"text": "Nope", "timeoutMs": 200},
            {"failed": "shot"},
            retry={"max": 2, "delayMs": 1000},
        ),
        node("shot", "action.screenshot"),
    )
    result, clock = simulate(definition, inputs={"a": 1}, run_id="run-1")
    assert result.status is RunStatus.SUCCESS
    assert (result.n_steps, result.n_failed, result.n_retries) == (3, 1, 2)
    # three element waits of 0.2 s and two retry delays of 1 s, all on the virtual clock
    assert abs(clock.monotonic() - 2.6) < 1e-6
    assert result.duration_ms == 2600
    assert result.trace[1].attempts == 3
    assert result.trace[1].duration_ms == 2600
    assert len(result.artifacts) == 1
    data = result.to_json()
    assert list(data) == [
        "id",
        "status",
        "inputs",
        "startedAt",
        "endedAt",
        "durationMs",
        "trace",
        "errorMessage",
        "nSteps",
        "nFailed",
        "nRetries",
        "log",
    ]
    assert data["id"] == "run-1"
    assert data["startedAt"] == "2026-01-01T00:00:00.000Z"
    assert data["endedAt"] == "2026-01-01T00:00:02.600Z"
    assert [e["seq"] for e in data["trace"]] == [1, 2, 3]
    assert data["trace"][2]["startedAt"] == "2026-01-01T00:00:02.600Z"


def test_default_element_wait_is_five_seconds_polled() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tapByText", {"text": "Nope"}),
    )
    result, clock = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert (result.error_message or "").startswith(
        "step 'tap' (action.tapByText): no element with text 'Nope' on screen; on screen: 'Shop', 'User'"
    )
    assert (result.error_message or "").endswith("; in front: com.example.shop/.LoginActivity")
    assert abs(clock.monotonic() - 5.0) < 1e-6


def test_node_timeout_ms_sets_the_element_wait() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tap", {"selector": {"resourceId": "x:id/nope"}}, timeoutMs=700),
    )
    result, clock = simulate(definition)
    assert (result.trace[-1].message or "").startswith("no element with resource id 'x:id/nope' on screen; ")
    assert abs(clock.monotonic() - 0.7) < 1e-6


def test_a_wait_never_sleeps_past_the_run_deadline() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "wait"),
        node("wait", "action.waitForText", {"text": "Never", "timeoutMs": 60000}),
        timeoutS=2,
    )
    result, clock = simulate(definition)
    assert result.status is RunStatus.TIMEOUT
    assert result.error_message == (
        "step 'wait' (action.waitForText): the run reached its time limit of 2 s (timeoutS) and was stopped"
    )
    assert result.trace[-1].outcome is Outcome.FAILED
    assert abs(clock.monotonic() - 2.0) < 1e-6


def test_retry_delay_is_cut_at_the_deadline() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node(
            "tap", "action.tapByText", {"text": "Nope", "timeoutMs": 100}, retry={"max": 3, "delayMs": 5000}
        ),
        timeoutS=3,
    )
    result, clock = simulate(definition)
    assert result.status is RunStatus.TIMEOUT
    assert result.trace[-1].attempts == 1
    assert abs(clock.monotonic() - 3.0) < 1e-6


def test_timeout_s_is_capped_at_600() -> None:
    definition = workflow(node("wait", "action.wait", {"ms": 700_000}), timeoutS=9999)
    result, clock = simulate(definition)
    assert result.status is RunStatus.TIMEOUT
    assert "600 s" in (result.error_message or "")
    assert abs(clock.monotonic() - 600) < 1e-6


def test_a_missing_next_target_fails_the_run_with_a_clear_message() -> None:
    definition = workflow(node("a", "control.setVar", {"name": "x", "value": 1}, "ghost"))
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert result.error_message == "node 'a' (ok) leads to node 'ghost', which is not in the workflow"


def test_an_unknown_kind_fails_its_node() -> None:
    result, _ = simulate(workflow(node("a", "action.teleport")))
    assert result.error_message == "step 'a' (action.teleport): unknown node kind 'action.teleport'"


def test_a_broken_definition_fails_without_steps() -> None:
    result, _ = simulate({"schemaVersion": 1, "name": "x", "start": "a", "nodes": []})
    assert result.status is RunStatus.FAILED
    assert result.trace == []
    assert result.error_message == "the workflow cannot run: it has no nodes"


def test_inputs_are_checked_before_the_first_step() -> None:
    definition = workflow(
        node("a", "control.setVar", {"name": "x", "value": 1}),
        inputs={"type": "object", "required": ["order"]},
    )
    result, _ = simulate(definition, inputs={})
    assert result.status is RunStatus.FAILED
    assert result.trace == []
    assert result.error_message == (
        "the run's inputs do not match the workflow's inputs schema: 'order' is a required property"
    )
    ok, _ = simulate(definition, inputs={"order": "A"})
    assert ok.status is RunStatus.SUCCESS


def test_an_input_not_given_takes_its_schema_default() -> None:
    """As the builder's simulation sends a field's default, a run given no value uses the schema's
    `default` in templates and conditions; a value given wins, and a required field with a default is met."""
    definition = workflow(
        node("a", "control.setVar", {"name": "said", "value": "{{inputs.greeting}} x{{inputs.times}}"}, "b"),
        node("b", "control.if", {"expr": "inputs.times == 3 && inputs.tags == ['a']"}),
        inputs={
            "type": "object",
            "properties": {
                "greeting": {"type": "string", "default": "Hallo"},
                "times": {"type": "integer", "default": 3},
                "tags": {"type": "array", "default": ["a"]},
            },
            "required": ["greeting"],
        },
    )
    result, _ = simulate(definition, inputs={})
    assert result.status is RunStatus.SUCCESS, result.error_message
    assert result.trace[1].output == {"result": True}
    assert result.log[1]["values"] == {"name": "said", "value": "Hallo x3"}
    given, _ = simulate(definition, inputs={"greeting": "Hi"})
    assert given.log[1]["values"] == {"name": "said", "value": "Hi x3"}


def test_an_invalid_inputs_schema_is_reported() -> None:
    definition = workflow(node("a", "control.setVar", {"name": "x", "value": 1}), inputs={"type": 12})
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert "inputs schema is not a valid JSON Schema" in (result.error_message or "")


def test_templates_keep_their_type_and_set_var_renders() -> None:
    definition = workflow(
        node("a", "control.setVar", {"name": "n", "value": "{{inputs.count}}"}, "b"),
        node("b", "control.if", {"expr": "vars.n + 1 == 4"}),
    )
    result, _ = simulate(definition, inputs={"count": 3})
    assert result.trace[1].output == {"result": True}


def test_device_serial_and_run_id_templates() -> None:
    definition = workflow(
        node("a", "control.setVar", {"name": "who", "value": "{{device.serial}}/{{run.id}}"}, "b"),
        node("b", "control.fail", {"message": "{{vars.who}}"}),
    )
    clock = VirtualClock()
    device = SimulatedDevice(sample_apps(), clock, serial="phone-7")
    result, _ = simulate(definition, clock=clock, device=device, run_id="r-1")
    assert result.trace[-1].message == "phone-7/r-1"


class FlakyPhone(SimulatedDevice):
    """A simulated phone whose connection drops on the first `fails` taps (as a real one may)."""

    def __init__(self, *args: Any, fails: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fails = fails

    def tap(self, x: int, y: int) -> None:
        if self.fails > 0:
            self.fails -= 1
            raise DeviceError("the phone did not answer (uiautomator2 connection lost)")
        super().tap(x, y)


def test_a_device_error_fails_the_step_and_can_be_retried() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tapByText", {"text": "Sign in"}, "check", retry={"max": 1, "delayMs": 100}),
        node("check", "action.waitForText", {"text": "New order"}),
    )
    clock = VirtualClock()
    result, _ = simulate(definition, clock=clock, device=FlakyPhone(sample_apps(), clock, fails=1))
    assert result.status is RunStatus.SUCCESS
    assert result.trace[1].attempts == 2
    clock = VirtualClock()
    result, _ = simulate(definition, clock=clock, device=FlakyPhone(sample_apps(), clock, fails=5))
    assert result.status is RunStatus.FAILED
    assert result.trace[-1].message == "device error: the phone did not answer (uiautomator2 connection lost)"


class CountingPhone(SimulatedDevice):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.foreground_checks = 0

    def foreground_package(self) -> str | None:
        self.foreground_checks += 1
        return super().foreground_package()


def test_foreground_is_checked_only_with_a_denylist_and_only_for_screen_kinds() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tapByText", {"text": "Sign in"}, "var"),
        node("var", "control.setVar", {"name": "x", "value": 1}, "key"),
        node("key", "action.pressKey", {"key": "back"}),
    )
    clock = VirtualClock()
    phone = CountingPhone(sample_apps(), clock)
    simulate(definition, clock=clock, device=phone)
    assert phone.foreground_checks == 1  # launchApp makes sure its app came to the front
    clock = VirtualClock()
    phone = CountingPhone(sample_apps(), clock)
    result, _ = simulate(definition, clock=clock, device=phone, denylist=Denylist(["com.bank.*"]))
    assert result.status is RunStatus.SUCCESS
    assert phone.foreground_checks == 3  # that, then tap and pressKey; setVar does not look at the screen


def test_disabled_node_does_not_touch_the_phone() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, enabled=False, next="check"),
        node("check", "control.if", {"textVisible": "Sign in"}),
    )
    result, _ = simulate(definition)
    assert [e.outcome for e in result.trace] == [Outcome.SKIPPED, Outcome.OK]
    assert result.trace[0].attempts == 0
    assert result.trace[1].output == {"result": False}  # the shop never opened


def test_a_disabled_node_reads_as_skipped_in_conditions_and_templates() -> None:
    """Like an optional step that found nothing: `nodes.ID.outcome` is 'skipped' for CEL, and a
    template of its output says it was skipped (it said the node had not run yet, and CEL found no
    field 'ID')."""
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, enabled=False, next="check"),
        node("check", "control.if", {"expr": "nodes.open.outcome == 'skipped'"}, next="use"),
        node("use", "control.setVar", {"name": "x", "value": "{{nodes.open.output.text}}"}),
    )
    result, _ = simulate(definition)
    assert result.trace[1].output == {"result": True}
    assert result.trace[2].message == (
        "template '{{nodes.open.output.text}}' does not resolve: node 'open' (action.launchApp) was "
        "skipped, so it has no output"
    )


def test_optional_does_not_hide_other_failures() -> None:
    definition = workflow(node("open", "action.launchApp", {"package": "com.x.missing"}, optional=True))
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert result.error_message == "step 'open' (action.launchApp): app not installed: com.x.missing"


def test_a_string_next_on_if_is_the_true_path() -> None:
    definition = workflow(
        node("check", "control.if", {"expr": "inputs.go"}, "then"),
        node("then", "control.fail", {"message": "went on"}),
    )
    went, _ = simulate(definition, inputs={"go": True})
    assert went.error_message == "step 'then' (control.fail): went on"
    stopped, _ = simulate(definition, inputs={"go": False})
    assert stopped.status is RunStatus.SUCCESS
    assert len(stopped.trace) == 1


def test_a_bad_regex_fails_the_step_with_the_matchers_words() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tapByText", {"text": "(", "match": "regex"}),
    )
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert "invalid regex" in (result.error_message or "")
    assert result.trace[-1].duration_ms == 0  # no waiting on a selector that can never match


def test_a_cel_error_fails_the_node() -> None:
    result, _ = simulate(workflow(node("a", "control.if", {"expr": "vars.nope == 1"})))
    assert result.status is RunStatus.FAILED
    assert "nope" in (result.error_message or "")


def test_type_text_aimed_at_a_button_taps_nothing() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "sign_in"),
        node("sign_in", "action.tapByText", {"text": "Sign in"}, "type"),
        node("type", "action.typeText", {"text": "1234", "selector": {"text": "Pay with Bank"}}),
    )
    clock = VirtualClock()
    phone = CountingPhone(sample_apps(), clock)
    result, _ = simulate(definition, clock=clock, device=phone, denylist=Denylist(["com.bank.app"]))
    assert result.status is RunStatus.FAILED
    assert result.trace[-1].node_id == "type"
    assert "'Pay with Bank' is a Button, not an editable field, so nothing was typed" in (
        result.error_message or ""
    )
    assert phone.state.foreground_package() == SHOP  # the button that opens the bank was not tapped


class OpensAnotherApp(SimulatedDevice):
    """A phone whose launched app hands over to another one at once (as a login via Settings would)."""

    def launch_app(self, package: str, stop_first: bool = False) -> None:
        super().launch_app(package, stop_first)
        if package == SHOP:
            super().launch_app("com.android.settings")


def test_launch_app_fails_when_another_app_stays_in_front() -> None:
    clock = VirtualClock()
    device = OpensAnotherApp(sample_apps(), clock, costs_ms={})
    result, _ = simulate(
        workflow(node("open", "action.launchApp", {"package": SHOP})), clock=clock, device=device
    )
    assert result.status is RunStatus.FAILED
    assert result.trace[0].message == (
        f"{SHOP} was launched, but com.android.settings is in front after 5 s: the app may have closed at "
        "once (crashed) or opened another app"
    )
    assert clock.monotonic() == pytest.approx(5.0)  # it waited for the app to come to the front


def test_text_with_half_a_character_is_not_typed() -> None:
    """A label cut inside an emoji reaches readText; typing it fails naming the place, not the phone."""
    model = AppModel.from_dict(
        {
            "schemaVersion": 1,
            "apps": [
                {
                    "package": "com.example.cut",
                    "label": "Cut",
                    "startScreen": "home",
                    "screens": [
                        {
                            "id": "home",
                            "widgets": [
                                {"id": "label", "text": "Zo\ud83d", "resourceId": "com.example.cut:id/label"},
                                {
                                    "id": "field",
                                    "class": "EditText",
                                    "resourceId": "com.example.cut:id/field",
                                },
                            ],
                        }
                    ],
                }
            ],
        }
    )
    definition = workflow(
        node("open", "action.launchApp", {"package": "com.example.cut"}, "read"),
        node("read", "action.readText", {"selector": {"resourceId": "com.example.cut:id/label"}}, "type"),
        node(
            "type",
            "action.typeText",
            {"text": "{{nodes.read.output.text}}", "selector": {"resourceId": "com.example.cut:id/field"}},
        ),
    )
    clock = VirtualClock()
    result, _ = simulate(definition, clock=clock, device=SimulatedDevice(model, clock, costs_ms={}))
    assert result.status is RunStatus.FAILED
    assert (result.trace[-1].message or "").startswith(
        "the text to type has half a character at position 2 ('\\ud83d', a lone surrogate"
    )
