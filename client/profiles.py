"""Where the CLI finds its server and token: profiles kept in a private file, or the environment.

The file is `profiles.json` in `$PHONEFLOW_CONFIG_DIR` (default: the user's config folder,
`~/.config/phoneflow` on Linux), mode 0600 in a 0700 folder since it holds API tokens. A profile is
chosen with `--profile NAME` or `PHONEFLOW_PROFILE` (default `default`); `PHONEFLOW_SERVER` and
`PHONEFLOW_TOKEN` override what the profile holds (CI sets them and needs no file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from client.exit_codes import CliError, Exit

DEFAULT_PROFILE = "default"


def server_url(value: str, source: str) -> str:
    """`value` as a server's base URL (no trailing slash), or a `CliError` when it cannot be one.

    `127.0.0.1:8000` without its scheme is a common slip: httpx would answer it with a transport
    error that reads as if no server ran there.
    """
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    example = f"http://{url}" if url and "://" not in url else "http://127.0.0.1:8000"
    raise CliError(
        f"{source} {value!r} is not a server URL: give it with http:// or https://, e.g. {example} "
        "(as `phoneflow serve` prints it)",
        Exit.USAGE,
    )


def config_dir() -> Path:
    configured = os.environ.get("PHONEFLOW_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("phoneflow", appauthor=False))


def profiles_file() -> Path:
    return config_dir() / "profiles.json"


def profile_name(chosen: str | None) -> str:
    return chosen or os.environ.get("PHONEFLOW_PROFILE") or DEFAULT_PROFILE


def _read() -> dict[str, Any]:
    path = profiles_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(
            f"cannot read the CLI profiles in {path} ({exc}): fix or delete the file, then "
            "`phoneflow login` again",
            Exit.USAGE,
        ) from None
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> Path:
    path = profiles_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    # Created 0600 before anything is written: the token is never readable by others.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def save(name: str, server: str, token: str) -> Path:
    data = _read()
    data.setdefault("profiles", {})[name] = {"server": server, "token": token}
    return _write(data)


def forget(name: str) -> bool:
    data = _read()
    if name not in data.get("profiles", {}):
        return False
    del data["profiles"][name]
    _write(data)
    return True


def stored(name: str) -> dict[str, str]:
    profile = _read().get("profiles", {}).get(name)
    return profile if isinstance(profile, dict) else {}


@dataclass(frozen=True)
class Target:
    """The server a command talks to, with the token, and where each came from."""

    server: str
    token: str
    profile: str
    source: str


def resolve(chosen_profile: str | None) -> Target:
    """The server and token for this command, or a `CliError` saying how to sign in."""
    name = profile_name(chosen_profile)
    profile = stored(name)
    server = os.environ.get("PHONEFLOW_SERVER") or profile.get("server")
    token = os.environ.get("PHONEFLOW_TOKEN") or profile.get("token")
    if not server or not token:
        missing = "server" if not server else "token"
        raise CliError(
            f"no {missing} for profile {name!r}: run `phoneflow login --server URL"
            + ("" if name == DEFAULT_PROFILE else f" --profile {name}")
            + "` (or set PHONEFLOW_SERVER and PHONEFLOW_TOKEN)",
            Exit.NOT_SIGNED_IN,
        )
    env = [v for v in ("PHONEFLOW_SERVER", "PHONEFLOW_TOKEN") if os.environ.get(v)]
    source = ", ".join(env) if env else f"profile {name!r} in {profiles_file()}"
    server_source = "PHONEFLOW_SERVER" if os.environ.get("PHONEFLOW_SERVER") else f"profile {name!r}'s server"
    return Target(server_url(server, server_source), token, name, source)
