"""Lets a `typer.Typer` sub-app run under the root `phoneflow` command, a plain click group.

typer (0.29 and later) carries its own copy of click, so the exceptions its commands
raise to end (`typer.Exit` for `--help` and for exit codes, its usage errors) are not
the ones the root click group knows: unconverted, they escape as tracebacks with exit
code 1. `MountableGroup` turns them into plain click's at the seam. Use it as
`typer.Typer(cls=MountableGroup)`; run on its own, the sub-app behaves as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException


@contextmanager
def _as_plain_click(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    try:
        yield
    except typer.Exit as exc:
        raise click.exceptions.Exit(exc.exit_code) from None
    except typer.Abort:
        raise click.Abort() from None
    except TyperException as exc:
        # a usage error or a bad parameter: show it the way typer would, with its exit code (2)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            click.echo(f"Error: {exc.format_message()}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None


class MountableGroup(TyperGroup):
    """A typer group that speaks plain click's exceptions when its parent is a plain click context."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _as_plain_click(isinstance(parent, click.Context)):
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _as_plain_click(isinstance(getattr(ctx, "parent", None), click.Context)):
            return super().invoke(ctx)
