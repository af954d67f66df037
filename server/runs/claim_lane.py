"""A lane for ordinary claims past the generic request machinery, as `report_lane.py` is for runs.report.

Every idle phone claims, and what a claim cost the server was much more the input guard, the router,
FastAPI's dependencies and its request and response wrappers than the claim's statements. An ordinary
claim — `POST /api/v1/devices/me/claim`, no query, a bearer device token, and either no body at all
(and no content type) or one `Content-Type: application/json` with a body that the input guard would
pass unparsed and that validates as `ClaimIn` — is answered here with the route's own code
(`answer_claim`).

Everything else goes the usual way, with the body already read handed on: a missing or odd token,
another content type, a query, a body the guard must look into or that does not validate. So every
refusal is the route's own, word for word. What lanes share is in device_lane.py.
"""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from server.runs.device_lane import NOT_ORDINARY, DeviceLane, validated_json
from server.runs.endpoints import answer_claim, router
from server.runs.schemas import ClaimIn


class ClaimLane(DeviceLane):
    """Answers ordinary claims itself (the module docstring says which); hands every other request to
    `app` as it came."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, router, "/devices/me/claim")

    def parse(self, body: bytes, json_body: bool) -> Any:
        """The claim's body (None: no body, without a content type), or `NOT_ORDINARY`."""
        if not body:
            return NOT_ORDINARY if json_body else None
        return validated_json(ClaimIn, body) if json_body else NOT_ORDINARY

    async def answer(
        self, request: Request, credentials: HTTPAuthorizationCredentials, parsed: Any
    ) -> Response:
        return await answer_claim(request, credentials, parsed)
