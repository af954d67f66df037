"""The builder's screen inspector on the virtual phone through a real bridge process: the phone's
screen with its elements, a picked element's selectors (counted on the phone's hierarchy), a step
added from one that matches exactly one element; and a bridge that does not run, told in the panel."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from server.devices.models import Device
from tests.bridge.server_process import ServerProcess, pair_in_state_dir, start_agent
from tests.browser.builder_support import require_built_builder
from tests.browser.conftest import screenshot, sign_in
from tests.server.factories import DeviceFixture

pytestmark = [pytest.mark.browser, pytest.mark.emulator]


@pytest.fixture(scope="module")
def served_phone(
    server_process: ServerProcess, phone: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceFixture]:
    """The phone paired and served by a bridge process, once it listens for commands."""
    state_dir = tmp_path_factory.mktemp("bridge")
    device = pair_in_state_dir(server_process, phone.serial, state_dir)
    agent = start_agent(server_process, phone.serial, state_dir, PHONEFLOW_BRIDGE_COMMAND_WAIT_S="5")
    try:
        deadline = time.monotonic() + 60
        while not _listening(server_process, device.id):
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
            assert time.monotonic() < deadline, "the bridge never asked for commands"
            time.sleep(0.2)
        yield device
    finally:
        agent.terminate()
        try:
            agent.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.communicate()


def _listening(server: ServerProcess, device_id: str) -> bool:
    with server.db.session_factory() as session:
        polled = session.scalars(select(Device.commands_polled_at).where(Device.id == device_id)).first()
    return polled is not None


@pytest.fixture
def page(browser: Browser, server_process: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=server_process.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def _inspected_elements(server: ServerProcess, device_id: str) -> list[dict[str, Any]]:
    """The phone's screen as the API reads it (what the panel shows)."""
    with server.client() as client:
        created = client.post(f"/api/v1/devices/{device_id}/commands", json={"kind": "inspect"})
        assert created.status_code == 201, created.text
        command = created.json()
        while command["status"] in ("pending", "taken"):
            command = client.get(
                f"/api/v1/devices/{device_id}/commands/{command['id']}?wait=20", timeout=httpx.Timeout(40)
            ).json()
    assert command["status"] == "done", command
    elements: list[dict[str, Any]] = command["inspection"]["elements"]
    return elements


def click_on_screen(page: Page, bounds: list[int], width: int = 1080, height: int = 2340) -> None:
    """Click the centre of `bounds` (phone pixels) on the panel's picture of the screen."""
    overlay = page.get_by_test_id("screen-overlay")
    box = overlay.bounding_box()
    assert box is not None
    x = (bounds[0] + bounds[2]) / 2 * box["width"] / width
    y = (bounds[1] + bounds[3]) / 2 * box["height"] / height
    overlay.click(position={"x": x, "y": y})


def definition_json(page: Page) -> dict[str, Any]:
    page.get_by_role("tab", name="JSON").click()
    text = page.get_by_label("The workflow definition as JSON").input_value()
    page.get_by_role("tab", name="Graph").click()
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_a_phone_without_a_running_bridge_is_told_in_the_panel(
    page: Page, server_process: ServerProcess, phone: Any, tmp_path: Path
) -> None:
    require_built_builder()
    stopped = server_process.device("no-bridge-here")
    sign_in(page, server_process.account.token, "/workflows/new")
    page.get_by_role("tab", name="Inspect").click()
    page.get_by_label("Phone").select_option(stopped.id)
    page.get_by_role("button", name="Inspect").click()
    expect(page.locator(".inspect-status.error")).to_contain_text("is not running")
    expect(page.locator(".inspect-status.error")).to_contain_text(
        "phoneflow bridge run --serial no-bridge-here"
    )


def test_inspect_the_phone_and_add_a_tap_step_from_a_unique_selector(
    page: Page, server_process: ServerProcess, served_phone: DeviceFixture
) -> None:
    require_built_builder()
    elements = _inspected_elements(server_process, served_phone.id)
    shop = next(e for e in elements if e["text"] == "Shop" and e["clickable"])
    sign_in(page, server_process.account.token, "/workflows/new")
    page.get_by_role("tab", name="Inspect").click()
    page.get_by_label("Phone").select_option(served_phone.id)
    page.get_by_role("button", name="Inspect").click()
    expect(page.locator(".inspect-status.ok")).to_contain_text("elements")
    expect(page.get_by_role("img", name="The phone's screen")).to_be_visible()

    click_on_screen(page, shop["bounds"])
    details = page.locator(".element-details")
    expect(details.locator("h3")).to_have_text("Shop")
    first = details.locator(".selector-row").first
    expect(first).to_have_attribute("data-matches", "1")
    expect(first).to_contain_text("unique")
    expect(first.locator("input[type=radio]")).to_be_checked()
    # A selector matching several elements says how many, and comes after the unique ones.
    expect(details.locator(".selector-row:not(.unique)").first).to_contain_text("matches")
    screenshot(page, "builder-inspect")

    details.get_by_role("button", name="Add tap step").click()
    expect(page.locator(".react-flow [data-node-id='tap']")).to_be_visible()
    definition = definition_json(page)
    tap = next(n for n in definition["nodes"] if n["id"] == "tap")
    assert tap["kind"] == "action.tap"
    assert tap["params"]["selector"] == shop["selectors"][0]["selector"]
    assert shop["selectors"][0]["matches"] == 1


def _command(server: ServerProcess, device_id: str, kind: str, **params: int) -> dict[str, Any]:
    """One command through the API, waited for (what the panel does)."""
    with server.client() as client:
        created = client.post(f"/api/v1/devices/{device_id}/commands", json={"kind": kind, "params": params})
        assert created.status_code == 201, created.text
        command: dict[str, Any] = created.json()
        while command["status"] in ("pending", "taken"):
            command = client.get(
                f"/api/v1/devices/{device_id}/commands/{command['id']}?wait=20", timeout=httpx.Timeout(40)
            ).json()
    assert command["status"] == "done", command
    return command


def _bounds(server: ServerProcess, device_id: str, **attributes: Any) -> list[int]:
    elements = _command(server, device_id, "inspect")["inspection"]["elements"]
    found = [e for e in elements if all(e[k] == v for k, v in attributes.items())]
    assert found, (attributes, [(e["text"], e["resourceId"]) for e in elements])
    bounds: list[int] = found[0]["bounds"]
    return bounds


def _events(trace: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["nodeId"], e["kind"], e["outcome"], e["message"], e["output"]) for e in trace]


def test_record_a_three_screen_path_then_simulate_and_run_it_with_equal_traces(
    page: Page, server_process: ServerProcess, served_phone: DeviceFixture
) -> None:
    require_built_builder()
    device_id = served_phone.id
    # Open the shop on the phone (not recorded): its login screen is where the recording starts.
    icon = _bounds(server_process, device_id, text="Shop", clickable=True)
    _command(server_process, device_id, "click", x=(icon[0] + icon[2]) // 2, y=(icon[1] + icon[3]) // 2)
    sign_in_button = _bounds(server_process, device_id, resourceId="com.example.shop:id/sign_in")

    sign_in(page, server_process.account.token, "/workflows/new")
    page.get_by_label("Name", exact=True).fill("Recorded order")
    page.get_by_role("tab", name="Inspect").click()
    page.get_by_label("Phone").select_option(device_id)
    page.get_by_role("button", name="Inspect").click()
    status = page.locator(".inspect-status")
    expect(status).to_contain_text("com.example.shop")
    page.get_by_label("New app model's name").fill("Shop as recorded")
    page.get_by_role("button", name="Record clicks").click()
    expect(status).to_contain_text("Recording into “Shop as recorded”")
    expect(page.locator(".react-flow [data-node-id='launch_app']")).to_be_visible()

    click_on_screen(page, sign_in_button)
    expect(status).to_contain_text("login → orders")
    new_order = _bounds(server_process, device_id, resourceId="com.example.shop:id/new_order")
    click_on_screen(page, new_order)
    expect(status).to_contain_text("orders → new_order")
    expect(page.locator(".record-bar")).to_contain_text("3 screens of com.example.shop")
    screenshot(page, "builder-record")
    page.get_by_role("button", name="Stop recording").click()

    # On the third screen, a wait for its Save button, from the inspector.
    save = _bounds(server_process, device_id, resourceId="com.example.shop:id/save")
    click_on_screen(page, save)
    page.locator(".element-details").get_by_role("button", name="Add wait step").click()
    expect(page.locator(".react-flow [data-node-id='wait_for_text']")).to_be_visible()
    page.get_by_role("button", name="Save version").click()
    page.wait_for_url("**/workflows/*/edit")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("save-state")).to_have_text("Version 1 · published")
    workflow_id = page.url.rsplit("/", 2)[-2]

    with server_process.client() as client:
        definition = client.get(f"/api/v1/workflows/{workflow_id}").json()["latestVersion"]["definition"]
        assert [n["id"] for n in definition["nodes"]] == ["launch_app", "tap", "tap_2", "wait_for_text"]
        assert definition["nodes"][1]["params"] == {"selector": {"resourceId": "com.example.shop:id/sign_in"}}
        models = client.get("/api/v1/app-models").json()
        model_id = next(m["id"] for m in models if m["name"] == "Shop as recorded")
        apps = client.get(f"/api/v1/app-models/{model_id}").json()["model"]
        assert [s["id"] for s in apps["apps"][0]["screens"]] == ["login", "orders", "new_order"]
        simulated = client.post(
            "/api/v1/simulate", json={"definition": definition, "apps": apps, "screens": False}, timeout=60
        )
        assert simulated.status_code == 200, simulated.text
        created = client.post(
            f"/api/v1/workflows/{workflow_id}/runs", json={"deviceId": device_id, "inputs": {}}
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        deadline = time.monotonic() + 90
        run = client.get(f"/api/v1/runs/{run_id}").json()
        while run["status"] not in ("success", "failed", "cancelled", "timeout"):
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
            run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "success", run
    assert simulated.json()["status"] == "success"
    assert _events(simulated.json()["trace"]) == _events(run["trace"])
    assert [e["outcome"] for e in run["trace"]] == ["ok"] * 4
