"""The root of the `phoneflow` command.

It only composes each part's sub-commands, importing a part when its command runs,
so that `phoneflow simulate` never loads the server and `phoneflow serve` never
loads uiautomator2.
"""

from __future__ import annotations

import importlib
import io
import sys
from difflib import get_close_matches
from importlib.metadata import version
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

# name -> (module, attribute holding a typer.Typer, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "workflow": ("interpreter.cli", "workflow_app", "Validate workflow definitions."),
    "simulate": (
        "interpreter.simulate_cli",
        "simulate_app",
        "Run a workflow (or a folder of them) on the simulator and print the trace.",
    ),
    "serve": ("server.cli", "serve_app", "Run the phoneflow server."),
    "admin": ("server.cli", "admin_app", "Accounts, API tokens and pairing codes, in the database."),
    "emulator": ("emulator.cli", "emulator_app", "Run the virtual Android device."),
    "bridge": ("device_bridge.cli", "bridge_app", "Run workflows on phones through uiautomator2 or Appium."),
    "login": ("client.login_cli", "login_app", "Sign the CLI in to a server (a token kept per profile)."),
    "logout": ("client.login_cli", "logout_app", "Forget a profile's server and token."),
    "workflows": (
        "client.workflows_cli",
        "workflows_app",
        "Workflows on the server: list, push, publish, diff.",
    ),
    "runs": ("client.runs_cli", "runs_app", "Runs: list, show, watch, trigger, retry, cancel, export."),
    "devices": ("client.devices_cli", "devices_app", "Paired phones: list, pair-code, rename, revoke."),
    "approvals": (
        "client.approvals_cli",
        "approvals_app",
        "Approvals waiting for people: list, approve, reject.",
    ),
    "schedules": ("client.schedules_cli", "schedules_app", "Cron schedules of workflows."),
}


def _without_flag_placeholder(self: TyperOption, ctx: Any) -> str | None:
    """Typer shows flags as taking a value (`--json <bool>`), which reads as if `--json true` were
    wanted: a flag shows no value placeholder, every other option keeps typer's."""
    if self.is_flag and self.metavar is None:
        return None
    return _typer_display_type_rich(self, ctx)


_typer_display_type_rich = TyperOption.display_type_rich
TyperOption.display_type_rich = _without_flag_placeholder  # type: ignore[method-assign]


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

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # The sub-commands are not loaded, so typer's own suggestion (over self.commands) sees none.
        if args and args[0] not in SUBCOMMANDS and not args[0].startswith("-"):
            matches = get_close_matches(args[0], list(SUBCOMMANDS), n=3, cutoff=0.6)
            if matches:
                suggestions = " or ".join(f"'{m}'" for m in matches)
                ctx.fail(f"No such command '{args[0]}'. Did you mean {suggestions}?")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=LazyGroup,
    help="phoneflow: automation workflows on fleets of Android phones.",
    no_args_is_help=True,
    add_completion=True,
)


def tolerant_output() -> None:
    """Print what cannot be encoded (a lone surrogate in a run's inputs, a NUL) as a backslash escape.

    Text from a server, a file or a phone may hold characters the terminal's encoding cannot
    carry; printing it must not end the command with a UnicodeEncodeError.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


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
    tolerant_output()
