"""The exit codes of the API commands, for scripts (docs/cli.md lists them).

A command that follows a run (`runs watch`, `runs trigger --watch`) ends with the code of how the
run ended; every other command ends 0 when it did what was asked.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    RUN_FAILED = 1
    USAGE = 2  # a bad option or argument, an unreadable or invalid file
    RUN_CANCELLED = 3
    RUN_TIMEOUT = 4
    NOT_SIGNED_IN = 5  # no server or token, or the server refused the token (401/403)
    NOT_FOUND = 6  # no such workflow, run, device, approval or schedule (404)
    REFUSED = 7  # the server refused the request (409, 410, 422, 429...)
    UNREACHABLE = 8  # the server could not be reached, answered 5xx, or does not offer the call
    DIFFERENT = 9  # `workflows diff`: the two sides differ


RUN_EXITS = {
    "success": Exit.OK,
    "failed": Exit.RUN_FAILED,
    "cancelled": Exit.RUN_CANCELLED,
    "timeout": Exit.RUN_TIMEOUT,
}


class CliError(Exception):
    """A command cannot do what was asked; `message` says why and what to do."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
