"""The root of the `phoneflow` command.

It only composes each part's sub-commands, importing a part when its command runs,
so that `phoneflow simulate` never loads the server and `phoneflow serve` never
loads uiautomator2.
"""

from __future__ import annotations

import importlib

import click
import typer

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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = SUBCOMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, help_text = spec
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise

            @click.command(cmd_name, help=help_text)
            def missing() -> None:
                raise click.ClickException(f"'{cmd_name}' is not built yet in this version of phoneflow.")

            return missing
        sub_app: typer.Typer = getattr(module, attr)
        command = typer.main.get_command(sub_app)
        command.name = cmd_name
        command.help = command.help or help_text
        return command


@click.group(cls=LazyGroup, help="phoneflow: automation workflows on fleets of Android phones.")
@click.version_option(package_name="phoneflow")
def app() -> None:
    pass
