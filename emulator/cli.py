"""`phoneflow emulator start`: run a virtual device in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer

from emulator.runner import EmulatorError, EmulatorService, check_console_port, load_apps
from interpreter.appmodel import AppModel
from interpreter.errors import AppModelError

emulator_app = typer.Typer(help="Run the virtual Android device.", no_args_is_help=True, add_completion=False)


@emulator_app.callback()
def _root() -> None:
    """Run the virtual Android device (adb + uiautomator2 over the app model)."""


@emulator_app.command("start")
def start(
    apps: Path | None = typer.Option(
        None, "--apps", help="App model JSON file (default: the sample apps).", exists=False, dir_okay=False
    ),
    port: int = typer.Option(
        5554, "--port", help="Even console port; the adb port is PORT+1, the serial emulator-PORT."
    ),
) -> None:
    """Start a virtual device and keep it running until Ctrl-C."""
    try:
        check_console_port(port)
        model = load_apps(apps)
    except (EmulatorError, AppModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        # SystemExit, not typer.Exit: `phoneflow` mounts this command under a plain click group.
        raise SystemExit(2) from None
    try:
        asyncio.run(_run(model, port, apps))
    except EmulatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


async def _run(model: AppModel, port: int, apps: Path | None) -> None:
    service = EmulatorService(model, port)
    await service.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, service.stopped.set)
    serial = service.device.serial
    source = str(apps) if apps else "the sample apps"
    typer.echo(f"{serial} is running ({source}: {', '.join(model.packages)})")
    typer.echo(f"  adb port 127.0.0.1:{service.device.adb_port}, console port {port}")
    typer.echo(f"  adb devices                      # lists {serial}")
    typer.echo(f"  adb -s {serial} shell getprop ro.build.version.sdk")
    typer.echo("  export ADBUTILS_ADB_PATH=$(command -v adb)   # so uiautomator2 uses the same adb server")
    typer.echo(f"  python -c \"import uiautomator2 as u2; print(u2.connect('{serial}').info)\"")
    if port + 1 > 5585:
        typer.echo(f"  (adb port {port + 1} is outside adb's scan: it is announced to a running adb server,")
        typer.echo(f"   or run `adb connect 127.0.0.1:{port + 1}`)")
    typer.echo("Press Ctrl-C to stop.")
    try:
        await service.stopped.wait()
    finally:
        await service.stop()
        typer.echo(f"{serial} stopped")
