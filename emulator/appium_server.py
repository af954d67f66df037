"""The Appium UiAutomator2 server inside the virtual device (device port 6790).

On a phone, `am instrument -w io.appium.uiautomator2.server.test/androidx.test.runner.AndroidJUnitRunner`
starts a Netty HTTP server that the Appium UiAutomator2 driver reaches through `adb forward` and
speaks W3C WebDriver (plus Appium's own routes) to. Here `emulator.instrumentation` starts this
server instead, over the same phone state the uiautomator2 server drives.

Every answer is JSON `{"sessionId": ID, "value": VALUE}` (HTTP 200); an error is the W3C shape
`{"value": {"error": "no such element", "message": ..., "stacktrace": ...}}` with the status the
real server uses (404 no such element / invalid session id / unknown command, 400 invalid
argument / invalid selector / invalid element state, 500 unknown error). One session at a time;
deleting it stops the server (and so `am instrument` ends), as the real server does. The routes
live in `emulator.appium_elements` (elements) and `emulator.appium_device` (the rest).
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from emulator.http_server import DeviceHttpServer, Reply

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

__all__ = ["AppiumError", "AppiumServer", "Request", "Session"]

log = logging.getLogger(__name__)

SERVER_VERSION = ("10.6.6", 278)
NO_ID = "None"
_NOT_FOUND = "An element could not be located on the page using the given search parameters"
_LEGACY_PREFIX = "/wd/hub"

# The settings the real server reports (GET /appium/settings), with their defaults.
DEFAULT_SETTINGS: dict[str, Any] = {
    "actionAcknowledgmentTimeout": 3000,
    "allowInvisibleElements": False,
    "ignoreUnimportantViews": False,
    "compressedLayoutHierarchy": False,
    "elementResponseAttributes": "",
    "enableMultiWindows": False,
    "enableNotificationListener": True,
    "enforceXPath1": False,
    "keyInjectionDelay": 0,
    "normalizeTagNames": False,
    "scrollAcknowledgmentTimeout": 200,
    "shouldUseCompactResponses": True,
    "shutdownOnPowerDisconnect": True,
    "simpleBoundsCalculation": False,
    "snapshotMaxDepth": 70,
    "trackScrollEvents": True,
    "waitForIdleTimeout": 10000,
    "waitForSelectorTimeout": 10000,
    "currentDisplayId": 0,
}


class AppiumError(Exception):
    """A W3C error answer: `error` is the W3C error code, `status` the HTTP status."""

    def __init__(self, error: str, message: str, status: int) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status

    @classmethod
    def no_such_element(cls, message: str = _NOT_FOUND) -> AppiumError:
        return cls("no such element", message, 404)

    @classmethod
    def invalid_argument(cls, message: str) -> AppiumError:
        return cls("invalid argument", message, 400)

    @classmethod
    def invalid_selector(cls, message: str) -> AppiumError:
        return cls("invalid selector", message, 400)

    @classmethod
    def invalid_state(cls, message: str) -> AppiumError:
        return cls("invalid element state", message, 400)

    @classmethod
    def unsupported(cls, what: str, instead: str) -> AppiumError:
        return cls(
            "unknown error", f"{what} is not supported by the phoneflow virtual device; {instead}", 500
        )


@dataclass
class Session:
    id: str
    capabilities: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    elements: dict[str, Any] = field(default_factory=dict)  # element id → appium_elements.Element


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any]
    session: Session | None

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        value = self.body.get(name)
        if value is None:
            raise AppiumError.invalid_argument(f"'{name}' is mandatory for this request")
        if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
            raise AppiumError.invalid_argument(f"'{name}' has the wrong type: {value!r}")
        return value

    @property
    def current(self) -> Session:
        assert self.session is not None  # routes that need a session get one, or an error first
        return self.session


Handler = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    parts: tuple[str, ...]
    handler: Handler
    needs_session: bool

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if method != self.method or len(parts) != len(self.parts):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(self.parts, parts, strict=True):
            if pattern.startswith(":"):
                params[pattern[1:]] = unquote(part)
            elif pattern != part:
                return None
        return params


class AppiumServer(DeviceHttpServer):
    """The routes of Appium's UiAutomator2 server over one virtual device."""

    name = "Appium UiAutomator2 server"

    def __init__(self, device: VirtualDevice, quit: Callable[[], None]) -> None:
        from emulator.appium_device import device_routes
        from emulator.appium_elements import element_routes

        super().__init__()
        self.device = device
        self.quit = quit
        self.session: Session | None = None
        self.routes: list[Route] = []
        self.add("GET", "/status", self.status, needs_session=False)
        self.add("GET", "/sessions", self.sessions, needs_session=False)
        self.add("POST", "/session", self.new_session, needs_session=False)
        self.add("DELETE", "/session/:sessionId", self.delete_session)
        self.add("GET", "/session/:sessionId", self.session_details)
        self.add("GET", "/session/:sessionId/appium/settings", self.get_settings)
        self.add("POST", "/session/:sessionId/appium/settings", self.update_settings)
        for method, template, handler in element_routes(device) + device_routes(device):
            self.add(method, template, handler)

    def add(self, method: str, template: str, handler: Handler, needs_session: bool = True) -> None:
        self.routes.append(Route(method, tuple(template.strip("/").split("/")), handler, needs_session))

    # -- HTTP -------------------------------------------------------------------------------
    async def route(self, method: bytes, target: bytes, body: bytes) -> Reply:
        path = target.decode("utf-8", "replace").split("?", 1)[0]
        if path.startswith(_LEGACY_PREFIX):
            path = path[len(_LEGACY_PREFIX) :]
        parts = [p for p in path.split("/") if p]
        verb = method.decode("ascii", "replace")
        session_id: str | None = parts[1] if len(parts) > 1 and parts[0] == "session" else None
        try:
            route, params = self._match(verb, parts)
            session_id = params.get("sessionId", session_id)
            session = self._session_for(route, params)
            request = Request(verb, path, params, _json_body(body), session)
            value = await route.handler(request)
            if route.handler == self.new_session:
                session_id = self.session.id if self.session else None
            return _reply(200, {"sessionId": session_id, "value": value})
        except AppiumError as exc:
            return _error(exc.status, session_id, exc.error, exc.message, "")
        except Exception as exc:  # a bug: the client gets the real server's 500 shape with the trace
            log.exception("%s: %s %s failed", self.name, verb, path)
            trace = "".join(traceback.format_exception(exc))
            return _error(500, session_id, "unknown error", f"{type(exc).__name__}: {exc}", trace)

    def _match(self, method: str, parts: list[str]) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            params = route.match(method, parts)
            if params is not None:
                return route, params
        raise AppiumError(
            "unknown command",
            f"The requested resource could not be found, or a request was received using an HTTP method "
            f"that is not supported by the mapped resource: {method} /{'/'.join(parts)}",
            404,
        )

    def _session_for(self, route: Route, params: dict[str, str]) -> Session | None:
        if not route.needs_session:
            return self.session
        wanted = params.get("sessionId")
        if self.session is None or wanted != self.session.id:
            raise AppiumError("invalid session id", f"The session identified by {wanted} is not known", 404)
        return self.session

    # -- sessions -----------------------------------------------------------------------------
    async def status(self, request: Request) -> Any:
        name, code = SERVER_VERSION
        return {
            "ready": True,
            "message": "UiAutomator2 Server is ready to accept commands",
            "build": {"versionName": name, "versionCode": code},
        }

    async def sessions(self, request: Request) -> Any:
        if self.session is None:
            return []
        return [
            {"id": self.session.id, "sessionId": self.session.id, "capabilities": self.session.capabilities}
        ]

    async def new_session(self, request: Request) -> Any:
        capabilities = request.body.get("capabilities")
        if not isinstance(capabilities, dict):
            raise AppiumError("session not created", "'capabilities' are mandatory for session creation", 500)
        merged: dict[str, Any] = {}
        first = capabilities.get("firstMatch") or [{}]
        if isinstance(first, list) and first and isinstance(first[0], dict):
            merged.update(first[0])
        if isinstance(capabilities.get("alwaysMatch"), dict):
            merged.update(capabilities["alwaysMatch"])
        self.session = Session(str(uuid.uuid4()), merged)
        return {"capabilities": capabilities, "sessionId": self.session.id}

    async def delete_session(self, request: Request) -> Any:
        self.session = None
        # The real server answers, then stops its instrumentation a moment later.
        asyncio.get_running_loop().call_later(0.015, self.quit)
        return None

    async def session_details(self, request: Request) -> Any:
        return {"lastScrollData": None}

    async def get_settings(self, request: Request) -> Any:
        return dict(request.current.settings)

    async def update_settings(self, request: Request) -> Any:
        settings = request.require("settings", dict)
        unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
        if unknown:
            raise AppiumError.invalid_argument(
                f"unknown settings {unknown}: the virtual device knows {sorted(DEFAULT_SETTINGS)}"
            )
        request.current.settings.update(settings)
        return dict(request.current.settings)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise AppiumError.invalid_argument(f"the request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AppiumError.invalid_argument("the request body must be a JSON object")
    return data


def _reply(status: int, payload: dict[str, Any]) -> Reply:
    return status, b"application/json; charset=utf-8", json.dumps(payload, ensure_ascii=False).encode()


def _error(status: int, session_id: str | None, error: str, message: str, trace: str) -> Reply:
    value = {"error": error, "message": message, "stacktrace": trace or f"{error}: {message}"}
    return _reply(status, {"sessionId": session_id, "value": value})


ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
LEGACY_ELEMENT_KEY = "ELEMENT"
