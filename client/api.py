"""The HTTP client of the CLI: the account's bearer token, and every failure turned into a `CliError`
that says what happened and what to do, with the exit code scripts read."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import httpx

from client.exit_codes import CliError, Exit
from client.profiles import Target

API = "/api/v1"


class Api:
    """One server, signed in with the target's token. Use it as a context manager."""

    def __init__(self, target: Target, timeout_s: float = 30) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.server,
            headers={
                "Authorization": f"Bearer {target.token}",
                "User-Agent": f"phoneflow-cli/{version('phoneflow')}",
            },
            timeout=timeout_s,
        )
        self._paths: set[str] | None = None

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response to `method API+path`, or a `CliError` for a transport failure or a 4xx/5xx."""
        try:
            response = self.http.request(method, API + path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(
                f"the server at {self.target.server} did not answer {method} {API + path} in time: "
                "try again, or check the server",
                Exit.UNREACHABLE,
            ) from None
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None
        if response.status_code >= 400:
            raise self.refused(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.json("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.json("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.json("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.json("DELETE", path)

    def offers(self, method: str, path: str) -> bool:
        """Whether the server's OpenAPI document has `method API+path` (a path template)."""
        if self._paths is None:
            try:
                document = self.http.get("/openapi.json").raise_for_status().json()
            except httpx.HTTPStatusError as exc:
                raise self.refused(exc.response) from None
            except httpx.TransportError as exc:
                raise self.unreachable(exc) from None
            self._paths = {
                f"{verb.upper()} {route}"
                for route, operations in document.get("paths", {}).items()
                for verb in operations
            }
        return f"{method.upper()} {API}{path}" in self._paths

    def unreachable(self, exc: Exception) -> CliError:
        return CliError(
            f"cannot reach the server at {self.target.server} ({exc}): is `phoneflow serve` running "
            f"there? (server from {self.target.source})",
            Exit.UNREACHABLE,
        )

    def refused(self, response: httpx.Response) -> CliError:
        status = response.status_code
        detail, problems = _problem(response)
        if status == 401:
            return CliError(
                f"the server at {self.target.server} refused the token ({detail}): sign in again with "
                f"`phoneflow login --server {self.target.server}` (token from {self.target.source})",
                Exit.NOT_SIGNED_IN,
            )
        lines = [f"{detail} ({status})"] + [
            f"  {p.get('pointer') or '/'}: {p.get('message')}"
            + (f" (hint: {p['hint']})" if p.get("hint") else "")
            for p in problems
        ]
        message = "\n".join(lines)
        if status == 404:
            return CliError(message, Exit.NOT_FOUND)
        if status >= 500:
            return CliError(f"the server failed: {message}; try again later", Exit.UNREACHABLE)
        return CliError(message, Exit.REFUSED)


def _problem(response: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    """The detail (or title) of a problem+json answer and its field problems."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] or response.reason_phrase), []
    if not isinstance(body, dict):
        return str(body)[:300], []
    detail = body.get("detail") or body.get("title") or response.reason_phrase
    if not isinstance(detail, str):
        detail = str(detail)
    errors = body.get("errors")
    return detail, [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
