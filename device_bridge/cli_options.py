"""The options and settings every `phoneflow bridge` command shares (state folder, driver), and
one way to fail: an error line on stderr and the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from device_bridge.settings import BridgeSettings

EXIT_SUCCESS = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Where the bridge keeps pairings and its outbox (PHONEFLOW_BRIDGE_STATE_DIR)."
    ),
]

Driver = Annotated[
    str | None,
    typer.Option(
        "--driver",
        help="How to drive the phones: uiautomator2 (this machine's adb; the default) or appium "
        "(PHONEFLOW_BRIDGE_DRIVER).",
    ),
]
AppiumUrl = Annotated[
    str | None,
    typer.Option(
        "--appium-url",
        help="The Appium server for --driver appium (PHONEFLOW_BRIDGE_APPIUM_URL; default http://127.0.0.1:4723).",
    ),
]
AppiumCapabilities = Annotated[
    str | None,
    typer.Option(
        "--appium-capabilities",
        help="JSON object (text or a file) added to the Appium session's capabilities, e.g. a device "
        "cloud's options (PHONEFLOW_BRIDGE_APPIUM_CAPABILITIES).",
    ),
]

_err = Console(stderr=True, soft_wrap=True)


def _settings(state_dir: Path | None, **overrides: Any) -> BridgeSettings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if state_dir is not None:
        values["state_dir"] = state_dir
    try:
        settings = BridgeSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise _fail(
            f"the bridge settings cannot be used ({problems}): fix the option or PHONEFLOW_BRIDGE_ variable"
        ) from None
    settings.ensure_state_dir()
    return settings


def _driver_options(driver: str | None, appium_url: str | None, capabilities: str | None) -> dict[str, Any]:
    """The driver settings the command line gives (None: leave the environment's or the default)."""
    if driver is not None and driver not in ("uiautomator2", "appium"):
        raise _fail(f"--driver {driver!r} is not a driver: use uiautomator2 or appium")
    parsed: dict[str, Any] | None = None
    if capabilities is not None:
        source = Path(capabilities)
        try:
            text = source.read_text(encoding="utf-8") if source.is_file() else capabilities
            value = json.loads(text)
        except (OSError, ValueError) as exc:
            raise _fail(
                f"--appium-capabilities is neither a JSON object nor a readable JSON file: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise _fail(
                '--appium-capabilities must be a JSON object, e.g. \'{"appium:deviceName": "Pixel 8"}\''
            )
        parsed = value
    return {"driver": driver, "appium_url": appium_url, "appium_capabilities": parsed}


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    _err.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)
