"""The root of the `phoneflow` command.

It only composes each part's sub-commands, importing a part when its command runs,
so that `phoneflow simulate` never loads the server and `phoneflow serve` never
loads uiautomator2.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any

import typer
from typer.core import TyperGroup

# name -> (module, attribute holding a typer.Typer, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "workflow": ("interpreter.cli", "workflow_app", "Validate workflow definitions."),
    "simulate": (
        "interpreter.simulate_cli",
        "simulate_app",
        "Run a workflow on the simulator and print its trace.",
    ),
    "serve": ("server.cli", "serve_app", "Run the phoneflow server."),
    "admin": ("server.cli", "admin_app", "Administer accounts and tokens."),
    "emulator": ("emulator.cli", "emulator_app", "Run the virtual Android device."),
    "bridge": ("device_bridge.cli", "bridge_app", "Run workflows on phones through uiautomator2."),
}


class LazyGroup(TyperGroup):
    """A command group whose sub-commands are imported only when one of them runs."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = SUBCOMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, help_text = spec
        sub_app: typer.Typer = getattr(importlib.import_module(module_name), attr)
        command = typer.main.get_command(sub_app)
        command.name = cmd_name
        command.help = command.help or help_text
        command.short_help = help_text
        return command


app = typer.Typer(
    cls=LazyGroup,
    help="phoneflow: automation workflows on fleets of Android phones.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"phoneflow {version('phoneflow')}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """phoneflow: automation workflows on fleets of Android phones."""
