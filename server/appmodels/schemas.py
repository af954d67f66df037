"""Wire shapes of `/api/v1/app-models`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from server.schemas import ApiModel


class AppModelCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    model: dict[str, Any] | None = Field(
        default=None, description="An app model (docs/app-model.md); none: an empty one to record into."
    )


class AppModelUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    model: dict[str, Any] | None = None


class AppModelSummary(ApiModel):
    id: str
    name: str
    packages: list[str]
    screens: int
    created_at: datetime
    updated_at: datetime


class AppModelRead(AppModelSummary):
    model: dict[str, Any]


class RecordIn(ApiModel):
    device_id: str = Field(description="The device the command was made on.")
    command_id: str = Field(
        description="A done command of that device: an inspect (records its screen) or a click (records "
        "the screens before and after and what the click did)."
    )


class Recorded(ApiModel):
    package: str
    screen: str = Field(description="The screen shown now (after the click).")
    before: str | None = Field(default=None, description="A click's screen before it.")
    widget: str | None = Field(default=None, description="The widget the click hit (its id in `before`).")
    action: dict[str, Any] | None = Field(default=None, description="What the click does in the model now.")


class RecordOut(ApiModel):
    app_model: AppModelRead
    recorded: Recorded
