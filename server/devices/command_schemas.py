"""Wire shapes of the device command channel and of the screen inspector."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from server.schemas import ApiModel


class CommandCreate(ApiModel):
    kind: Literal["inspect", "click"] = Field(
        description=(
            "inspect: a screenshot and the window hierarchy; click: tap at params {x, y} (screen pixels), "
            "then the same as inspect of the screen after it (and the hierarchy before it)"
        )
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params_fit_kind(self) -> CommandCreate:
        if self.kind == "click":
            for axis in ("x", "y"):
                value = self.params.get(axis)
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
                    raise ValueError(f"a click needs params.{axis}: a whole number of screen pixels")
        elif self.params:
            raise ValueError("an inspect takes no params")
        return self


class CommandRead(ApiModel):
    id: str
    device_id: str
    kind: str
    params: dict[str, Any]
    status: str = Field(description="pending, taken, done, failed or expired")
    result: dict[str, Any] | None = Field(
        default=None,
        description=(
            "What the bridge answered: `screenshot` {contentType, data (base64)}, `hierarchy` (XML), "
            "`foreground` {package, activity}; a click adds `clicked` {x, y} and `before` "
            "{hierarchy, foreground}"
        ),
    )
    error: str | None = Field(default=None, description="Why it failed or expired, in words to act on.")
    created_at: datetime
    expires_at: datetime
    taken_at: datetime | None
    finished_at: datetime | None
    inspection: dict[str, Any] | None = Field(
        default=None,
        description="A done command's screen: its elements with their selectors (as POST /inspect/hierarchy)",
    )


class BridgeCommand(ApiModel):
    id: str
    kind: str
    params: dict[str, Any]
    expires_at: datetime


class BridgeCommands(ApiModel):
    commands: list[BridgeCommand]


class CommandAnswer(ApiModel):
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=4000)


class HierarchyIn(ApiModel):
    hierarchy: str = Field(min_length=1, description="A window hierarchy as uiautomator dumps it (XML).")
