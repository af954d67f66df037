"""The base of every request and response model (camelCase on the wire, unknown fields refused), and
the bounded number and time types every request schema uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Request bodies refuse unknown fields (a typo is a 422, not silently ignored)."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, from_attributes=True
    )


# --- Bounded values: every number and time a request sets fits the columns that store it and the
# sums over them (PostgreSQL's integer is 32-bit; its timestamps and Python's datetime end at 9999).

INT32_MAX = 2**31 - 1
# Far above any run (the longest approval wait is a day; a run is capped well below a year), far
# enough below 2**63 that summing every run of any account cannot overflow a 64-bit column.
MAX_DURATION_MS = 366 * 24 * 3600 * 1000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A count or sequence number: 0 … 2^31-1 (a PostgreSQL integer)."""

DurationMs = Annotated[int, Field(ge=0, le=MAX_DURATION_MS)]
"""A duration in milliseconds: 0 … 366 days."""


def in_range_utc(moment: datetime) -> datetime:
    """`moment` (with a time zone) as UTC, or ValueError when it lies outside 1970 … 2199."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the time has no time zone; send ISO-8601 with Z or an offset")
    # Compare before converting: 0001-01-01T00:00+01:00 in UTC is before year 1, which Python
    # cannot represent (the conversion itself would fail).
    if not EARLIEST <= moment < LATEST:
        raise ValueError(
            f"the time {moment.isoformat()} is outside {EARLIEST.year}-01-01 … "
            f"{LATEST.year - 1}-12-31 (UTC); check the clock that made it"
        )
    return moment.astimezone(UTC)


def _iso_text_only(value: Any) -> Any:
    # pydantic would read a number as seconds since 1970: a number here is a mistake, not a time.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("send an ISO-8601 time such as 2026-11-23T10:00:00Z, not a number")
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_text_only), AfterValidator(in_range_utc)]
"""An ISO-8601 time with a zone, 1970 … 2199, converted to UTC (bodies and query parameters)."""


def iso_utc_text(value: str) -> datetime:
    """An ISO-8601 text with a zone as a bounded UTC datetime (ValueError otherwise)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO-8601 time like 2026-11-23T10:00:01.250Z") from None
    return in_range_utc(moment)
