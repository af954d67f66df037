"""Browser tests: Debian's Chromium, driven by Playwright, against a real uvicorn server.

One server (SQLite in a tmp folder, schema by the migrations at startup) and one headless
Chromium serve the whole module; each test makes its own account and browser context, so
the tests do not see each other's runs. Screenshots go to `test-output/screenshots/`.
Playwright's own browsers are never downloaded: the tests use `/usr/bin/chromium`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from server.accounts import service as accounts_service
from server.accounts.models import Plan
from server.app import create_app
from server.settings import Settings
from tests.bridge.conftest import adb_missing_reason, start_emulator
from tests.bridge.server_process import ServerProcess, start_server
from tests.server.test_dashboard_support import run_report as run_report_body
from tests.server.test_dashboard_support import serve

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# A small workflow over the sample shop app; the server validates it on upload.
WORKFLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Capture order",
    "targetPackages": ["com.example.shop"],
    "inputs": {"type": "object", "properties": {"order": {"type": "string"}}},
    "timeoutS": 60,
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}, "next": "new"},
        {"id": "new", "kind": "action.tapByText", "params": {"text": "New order"}, "next": "check"},
        {"id": "check", "kind": "action.waitForText", "params": {"text": "Saved", "timeoutMs": 2000}},
    ],
}


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    serial: str
    token: str


@dataclass(frozen=True, slots=True)
class Workflow:
    id: str
    version_id: str


@dataclass(frozen=True, slots=True)
class LiveServer:
    """A phoneflow server on 127.0.0.1, and helpers that talk to its API as outside clients do."""

    base_url: str
    session_factory: sessionmaker[Session]

    def create_account(self, plan: Plan = Plan.FREE) -> tuple[str, str]:
        """A new account: (email, account token)."""
        email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
        with self.session_factory.begin() as session:
            _account, token = accounts_service.create_account(session, email, plan)
        return email, token

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.base_url + "/api/v1" + path, headers=headers, timeout=10, **kwargs)

    def pair_with_code(self, code: str, serial: str | None = None) -> Device:
        """Redeem a pairing code as `phoneflow bridge pair` does."""
        serial = serial or f"SER{uuid.uuid4().hex[:6].upper()}"
        answer = self.api(
            "POST",
            "/devices/pair",
            json={"code": code, "serial": serial, "model": "Pixel 7", "androidVersion": "14"},
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return Device(id=body["deviceId"], serial=serial, token=body["token"])

    def pair_device(self, account_token: str) -> Device:
        """A device paired through the API: a pairing code, then the pairing."""
        answer = self.api("POST", "/pairing-codes", account_token)
        assert answer.status_code == 201, answer.text
        return self.pair_with_code(answer.json()["code"])

    def create_workflow(self, account_token: str) -> Workflow:
        answer = self.api(
            "POST", "/workflows", account_token, json={"name": "Capture order", "definition": WORKFLOW}
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        published = self.api(
            "POST", f"/workflows/{body['id']}/publish", account_token, json={"versionId": body["versionId"]}
        )
        assert published.status_code == 200, published.text
        return Workflow(id=body["id"], version_id=body["versionId"])

    def upload_artifact(self, device: Device, run_id: str, name: str, content_type: str, data: bytes) -> None:
        """Upload a run's artifact as the bridge does after the run's report."""
        answer = self.api(
            "POST", f"/runs/{run_id}/artifacts", device.token, files={"file": (name, data, content_type)}
        )
        assert answer.status_code == 201, answer.text

    def report(self, device: Device, run: dict[str, Any]) -> None:
        """One runs.report of `run`, which the server must store."""
        answer = self.api("POST", "/runs.report", device.token, json={"runs": [run]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["runs"][0]["result"] == "stored", answer.text


def run_report(run_id: str, workflow: Workflow, **fields: Any) -> dict[str, Any]:
    """The whole state of a run of `workflow` so far, as a device reports it (see run_report_body)."""
    return run_report_body(run_id, workflow.id, workflow.version_id, **fields)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app served by uvicorn in a thread on a free port; migrations run at startup."""
    folder = tmp_path_factory.mktemp("browser-server")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'phoneflow.db'}",
        run_migrations=True,
        start_scheduler=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    # Open event streams would hold a graceful shutdown: the browser fixture closes first.
    with serve(app) as base_url:
        yield LiveServer(base_url=base_url, session_factory=app.state.session_factory)


def _chromium_or_skip() -> Path:
    if not CHROMIUM.exists() and shutil.which("bash"):
        # Installs Debian's chromium when run as root; says what to do otherwise.
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "system-deps.sh")], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} and scripts/system-deps.sh could not install it "
            "(it needs root): run `apt-get install chromium`"
        )
    return CHROMIUM


# Generous for a loaded 2-core machine; a live update normally lands in well under a second.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) with one page; downloads allowed."""
    context = browser.new_context(
        base_url=live_server.base_url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Script errors and CSP refusals fail the test: a page can look fine while its script is dead.
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert problems == [], problems


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot at test-output/screenshots/NAME.png, for a person to review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, token: str, target: str = "/runs") -> None:
    """Sign in through the sign-in page (reached by asking for `target`)."""
    page.goto(target)
    page.wait_for_url("**/signin?next=*")
    page.fill("input[name=token]", token)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_url(f"**{target}")


def phone_screenshot(text: str) -> bytes:
    """A small PNG that looks like a phone screen showing `text` (failure context for the detail page)."""
    image = Image.new("RGB", (270, 585), "#ffffff")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 270, 56), fill="#3f51b5")
    draw.text((14, 20), "Shop", fill="#ffffff")
    draw.text((14, 90), text, fill="#222222")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def phone() -> Iterator[Any]:
    """The virtual phone with the sample apps, announced to the machine's adb server (one per module)."""
    reason = adb_missing_reason()
    if reason:
        pytest.skip(reason)
    emulator: Any = start_emulator(None)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def server_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server process of the module's own (the bridge pairs with it over HTTP)."""
    process = start_server(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    try:
        yield process
    finally:
        process.stop()
