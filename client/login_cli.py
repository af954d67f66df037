"""`phoneflow login` and `phoneflow logout`: a server and an API token kept per profile."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer

from client import profiles
from client.api import Api
from client.common import AsJson, Profile, failing
from client.exit_codes import CliError, Exit
from client.output import err, out, print_json

login_app = typer.Typer(add_completion=False, help="Sign the CLI in to a server (a token kept per profile).")
logout_app = typer.Typer(add_completion=False, help="Forget a profile's server and token.")


@login_app.command()
def login(
    server: Annotated[str, typer.Option("--server", help="The server's URL, e.g. http://127.0.0.1:8000")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="An account API token (else read from --with-token or asked for)."),
    ] = None,
    with_token: Annotated[
        bool, typer.Option("--with-token", help="Read the token from standard input.")
    ] = False,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Check an API token against SERVER and keep both in the profile (a file only you can read)."""
    name = profiles.profile_name(profile)
    with failing():
        target = profiles.Target(profiles.server_url(server, "--server"), "", name, "the command line")
        secret = _token(token, with_token)
        target = dataclasses.replace(target, token=secret)
        with Api(target) as api:
            try:
                account = api.get("/account")
            except CliError as exc:
                if exc.code != Exit.NOT_FOUND:
                    raise
                raise CliError(
                    f"{target.server} has no phoneflow API ({exc.message.splitlines()[0]}): give --server "
                    "as `phoneflow serve` prints it, the server's address without a page's path "
                    "(e.g. http://127.0.0.1:8000)",
                    Exit.NOT_FOUND,
                ) from None
        path = profiles.save(name, target.server, secret)
    if as_json:
        print_json({"server": target.server, "profile": name, "email": account["email"], "file": str(path)})
        return
    out.print(f"signed in to {target.server} as {account['email']} (profile {name!r})")
    err.print(f"the token is kept in {path} (readable by you only)")
    hint = "" if name == profiles.DEFAULT_PROFILE else f" --profile {name}"
    err.print(
        f"next: phoneflow workflows list{hint} · phoneflow devices list{hint} · phoneflow runs list{hint}"
    )


def _token(token: str | None, with_token: bool) -> str:
    if token:
        return token.strip()
    if with_token:
        value = sys.stdin.readline().strip()
        if not value:
            raise CliError("--with-token read nothing from standard input: pipe the token in", Exit.USAGE)
        return value
    if not sys.stdin.isatty():
        raise CliError(
            "no token: give --token TOKEN, pipe it with --with-token, or run in a terminal to be asked "
            "(`phoneflow admin create-token EMAIL` makes one)",
            Exit.USAGE,
        )
    asked: str = typer.prompt("API token (pf_acc_…)", hide_input=True)
    return asked.strip()


@logout_app.command()
def logout(profile: Profile = None) -> None:
    """Forget the profile's server and token (the token itself stays valid: revoke it on the server)."""
    name = profiles.profile_name(profile)
    with failing():
        forgotten = profiles.forget(name)
    if not forgotten:
        err.print(f"profile {name!r} was not signed in ({profiles.profiles_file()})")
        raise typer.Exit(int(Exit.NOT_SIGNED_IN))
    out.print(f"profile {name!r} signed out; revoke its token in the dashboard's settings if it leaked")
