"""The device side of the server's HTTP surface: pair, heartbeat, claim, config, step gate, approvals.

`runs.report` and artifact uploads go through the outbox and `uploader`, never from here. The step
gate, asked before every step, goes over a connection of its own kept open (`kept_http.py`: the
standard library's http.client, where httpx costs half a millisecond of CPU a request); the rest
through httpx.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from device_bridge.errors import ServerError, ServerRefusedError, ServerUnreachableError
from device_bridge.kept_http import kept_connection
from device_bridge.uploader import problem_detail, problem_text

PAIR_PATH = "/api/v1/devices/pair"
CLAIM_PATH = "/api/v1/devices/me/claim"
HEARTBEAT_PATH = "/api/v1/devices/me/heartbeat"
APPROVALS_PATH = "/api/v1/devices/me/approvals"
CONFIG_PATH = "/api/v1/devices/me/config"
GATE_PATH = "/api/v1/devices/me/runs/{run_id}/gate"
# How long a claim may take when the HTTP client sets no read timeout.
CLAIM_TIMEOUT_S = 30.0
LIVE_FRAME_PATH = "/api/v1/runs/{run_id}/live-frame"
COMMANDS_PATH = "/api/v1/devices/me/commands"
WAKEUP_PATH = "/api/v1/devices/me/wakeup"


@dataclass(frozen=True, slots=True)
class ServerDenylist:
    """The account's effective package denylist as the server sent it, with its version."""

    version: str
    patterns: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any, where: str) -> ServerDenylist:
        """Read `{"version", "patterns"}`; a `ServerError` naming `where` when it is not that."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("version"), str)
            or not isinstance(data.get("patterns"), list)
            or not all(isinstance(p, str) for p in data["patterns"])
        ):
            raise ServerError(
                f"{where}: the server sent no usable package denylist ({{version, patterns}}); "
                "it may be older than this bridge: update the server"
            )
        return cls(data["version"], tuple(data["patterns"]))


@dataclass(frozen=True, slots=True)
class Pairing:
    device_id: str
    token: str


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run the server handed to this device, with the workflow version it runs."""

    run: dict[str, Any]
    definition: dict[str, Any]
    # None when the server sent none (an older server): such a run must not start.
    denylist: ServerDenylist | None = None
    # When to keep the run's screens, as the server says (`every`, `failures`, `off`); None from an
    # older server (the definition's `frames` then). The bridge's own setting caps it.
    frames: str | None = None
    # The lease the claim came with (server/runs/lease.py): `(monotonic time before the claim was sent,
    # its length in ms)`; None without one.
    lease: tuple[float, int] | None = None

    @property
    def run_id(self) -> str:
        return str(self.run["id"])


def _refusal(what: str, url: str, status: int, detail: str) -> ServerError:
    """The error for an answer with an error status (4xx, 5xx)."""
    if status >= 500 or status in (408, 429):
        return ServerUnreachableError(f"{what}: HTTP {status} from {url}: {detail}")
    return ServerRefusedError(f"{what}: HTTP {status} from {url}: {detail}", status)


def _call(client: httpx.Client, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(f"{what}: cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise _refusal(what, url, response.status_code, problem_detail(response))
    return response


def pair(
    client: httpx.Client, server_url: str, *, code: str, serial: str, model: str, android_version: str
) -> Pairing:
    """Redeem a pairing code; the token in the answer is shown once, so the caller must keep it."""
    response = _call(
        client,
        "POST",
        server_url.rstrip("/") + PAIR_PATH,
        "pairing",
        json={"code": code, "serial": serial, "model": model, "androidVersion": android_version},
    )
    body = response.json()
    return Pairing(device_id=str(body["deviceId"]), token=str(body["token"]))


class DeviceApi:
    """Calls made as one paired device (its token)."""

    def __init__(self, client: httpx.Client, server_url: str, token: str) -> None:
        self.client = client
        self.server_url = server_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        # The kept connection of the claim and the step gate (None: through httpx, which honours a
        # configured proxy), asked by the worker and by its progress ticker (a long leased step).
        self._gate = kept_connection(self.server_url)
        self._gate_lock = threading.Lock()
        # Whether this server's gate said it grants leases (`grantsLease`): only then is one asked for.
        self.grants_lease = False
        # Whether this server's last claim said it takes the final report of the last run
        # (`acceptsReport`): only then does a claim carry one.
        self.accepts_report = False
        if self._gate is not None:
            weakref.finalize(self, self._gate.close)

    def close(self) -> None:
        """Close the step gate's connection (the httpx client is its owner's to close)."""
        if self._gate is not None:
            self._gate.close()

    def heartbeat(self, health: dict[str, Any] | None = None) -> dict[str, Any]:
        response = _call(
            self.client,
            "POST",
            self.server_url + HEARTBEAT_PATH,
            "heartbeat",
            headers=self._headers,
            json=health or {},
        )
        if response.status_code == 204 or not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {}

    def claim(self) -> ClaimedRun | None:
        """The next queued run of this device (now claimed by us), or None when there is none. It comes
        with a lease when the server grants them (a server that knows none ignores the ask)."""
        return self.claim_carrying(None)[0]

    def claim_carrying(self, report: str | None) -> tuple[ClaimedRun | None, dict[str, Any] | None]:
        """`claim`, carrying `report` (the final report of this device's last run, a runs.report run object
        already JSON; send one only once `accepts_report`): the claimed run (None: none queued) and the
        server's runs.report answer for the report (None when none was carried, or the answer has none).
        A report that does not validate is a `ServerRefusedError` 422, and nothing was claimed."""
        asked_at = time.monotonic()
        timeout_s = self.client.timeout.read or CLAIM_TIMEOUT_S
        body = b'{"lease":true}' if report is None else b'{"lease":true,"report":' + report.encode() + b"}"
        status, answer = self._post(CLAIM_PATH, body, "claim", timeout_s)
        if status == 204:
            return None, None
        if not isinstance(answer, dict):
            raise ServerUnreachableError(
                f"claim: the answer from {self.server_url + CLAIM_PATH} is not an object"
            )
        self.grants_lease = answer.get("grantsLease") is True
        self.accepts_report = answer.get("acceptsReport") is True
        carried = answer.get("report")
        reported = dict(carried) if report is not None and isinstance(carried, dict) else None
        if answer.get("run") is None:
            return None, reported
        lease_ms = answer.get("leaseMs")
        try:
            denylist: ServerDenylist | None = ServerDenylist.from_json(answer.get("denylist"), "claim")
        except ServerError:
            denylist = None
        frames = answer.get("frames")
        claimed = ClaimedRun(
            run=dict(answer["run"]),
            definition=dict(answer["definition"]),
            denylist=denylist,
            frames=frames if isinstance(frames, str) else None,
            lease=(asked_at, lease_ms) if isinstance(lease_ms, int) and lease_ms > 0 else None,
        )
        return claimed, reported

    def wakeup(self, wait_s: float) -> bool:
        """Whether a run is queued for this device; the server holds the call up to `wait_s` for one."""
        response = _call(
            self.client,
            "GET",
            self.server_url + WAKEUP_PATH,
            "wake-up",
            headers=self._headers,
            params={"wait": wait_s},
            timeout=wait_s + 15,
        )
        return bool(response.json().get("runQueued"))

    def commands(self, wait_s: float) -> list[dict[str, Any]]:
        """Commands for this device (now taken by us); the server holds the call up to `wait_s`."""
        response = _call(
            self.client,
            "GET",
            self.server_url + COMMANDS_PATH,
            "commands",
            headers=self._headers,
            params={"wait": wait_s},
            timeout=wait_s + 15,
        )
        found = response.json().get("commands")
        return [dict(c) for c in found] if isinstance(found, list) else []

    def command_result(self, command_id: str, body: dict[str, Any]) -> None:
        """Answer one command: `{"ok": true, "result": {...}}` or `{"ok": false, "error": "..."}`."""
        _call(
            self.client,
            "POST",
            f"{self.server_url}{COMMANDS_PATH}/{command_id}/result",
            "command answer",
            headers=self._headers,
            json=body,
            timeout=30,
        )

    def config(self) -> ServerDenylist:
        """What this device must enforce now: the account's effective denylist and its version."""
        response = _call(self.client, "GET", self.server_url + CONFIG_PATH, "config", headers=self._headers)
        return ServerDenylist.from_json(response.json().get("denylist"), "config")

    def live_frame(self, run_id: str, jpeg: bytes, timeout_s: float) -> None:
        """The phone's screen right now, for a run someone watches live (replaces the last one)."""
        _call(
            self.client,
            "PUT",
            self.server_url + LIVE_FRAME_PATH.format(run_id=run_id),
            "live frame",
            headers={**self._headers, "Content-Type": "image/jpeg"},
            content=jpeg,
            timeout=timeout_s,
        )

    def gate(
        self, run_id: str, timeout_s: float, step: dict[str, Any] | None = None, report: str | None = None
    ) -> dict[str, Any]:
        """The step gate of one run: `{"status", "cancelRequested", "denylistVersion", "live", ...}`
        (short timeout). `step` (`{"seq", "nodeId"}`) names the step about to start: the step in
        flight; `report` is the run's progress for the gate to store (a runs.report run object,
        already JSON: the reporter encodes each trace event once, not the whole trace every step).
        A lease is asked for with the step once the server said it grants them (`leaseMs`)."""
        path = GATE_PATH.format(run_id=run_id)
        if step is not None and self.grants_lease:
            step = {**step, "lease": True}
        body = _gate_body(step, report)
        _, answer = self._post(path, body, "step gate", timeout_s)
        if not isinstance(answer, dict):
            return {}
        self.grants_lease = answer.get("grantsLease") is True
        return answer

    def _post(self, path: str, body: bytes, what: str, timeout_s: float) -> tuple[int, Any]:
        """POST a JSON body over the kept connection (the step gate's and the claim's; through httpx when
        a proxy is configured): the status and the answer's JSON (None when it has no body). An error
        status or an unreadable answer raises as `_call` does."""
        url = self.server_url + path
        if self._gate is None:
            headers = {**self._headers, "Content-Type": "application/json"}
            response = _call(self.client, "POST", url, what, headers=headers, timeout=timeout_s, content=body)
            status, data = response.status_code, response.content
        else:
            try:
                with self._gate_lock:
                    status, data = self._gate.post(path, body, self._headers, timeout_s)
            except (OSError, ValueError) as exc:
                raise ServerUnreachableError(
                    f"{what}: cannot reach {url}: {type(exc).__name__}: {exc}"
                ) from exc
            if status >= 400:
                raise _refusal(what, url, status, problem_text(data, str(status)))
        if not data:
            return status, None
        try:
            return status, json.loads(data)
        except ValueError as exc:
            raise ServerUnreachableError(f"{what}: the answer from {url} is not JSON: {data[:80]!r}") from exc

    def request_approval(
        self,
        *,
        run_id: str,
        node_id: str,
        visit: int,
        message: str,
        approvers: list[str],
        timeout_s: float,
    ) -> dict[str, Any]:
        """Ask people to approve (idempotent by run, node and visit): the approval, with its id and status."""
        body = {
            "runId": run_id,
            "nodeId": node_id,
            "visit": visit,
            "message": message,
            "approvers": approvers,
            "timeoutS": timeout_s,
        }
        response = _call(
            self.client,
            "POST",
            self.server_url + APPROVALS_PATH,
            "approval request",
            headers=self._headers,
            json=body,
        )
        return dict(response.json())

    def approval(self, approval_id: str) -> dict[str, Any]:
        """One approval of this device's runs, with its current status."""
        response = _call(
            self.client,
            "GET",
            f"{self.server_url}{APPROVALS_PATH}/{approval_id}",
            "approval poll",
            headers=self._headers,
        )
        return dict(response.json())


def _gate_body(step: dict[str, Any] | None, report: str | None) -> bytes:
    """The gate's JSON body: the step about to start, with the run's progress (already JSON) in it."""
    if step is None:
        return b""
    text = json.dumps(step, separators=(",", ":"))
    if report is not None:
        text = f'{text[:-1]},"report":{report}}}' if len(text) > 2 else f'{{"report":{report}}}'
    return text.encode()
