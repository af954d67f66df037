"""Crontab expressions read by APScheduler, with crontab's own meaning kept.

APScheduler parses every field and computes the fire times (`CronTrigger.from_crontab`); this
module only bridges two places where APScheduler 3 reads a crontab differently from cron(8):

* weekday numbers: crontab counts 0 (and 7) as Sunday, APScheduler 3 counts 0 as Monday
  (its documented "historical mistake"). Numeric items of the day-of-week field are expanded by
  APScheduler's own field parser into the crontab days they name, and handed over as names.
* day of month *and* day of week both restricted: cron fires when *either* matches, APScheduler
  when both do. Such an expression becomes an `OrTrigger` of the two halves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.fields import BaseField

from server.errors import FieldProblem, ValidationFailed

CRON_EXAMPLE = "*/15 * * * *"
CRON_HINT = (
    f'five fields: minute hour day-of-month month day-of-week, e.g. "{CRON_EXAMPLE}" '
    '(every 15 minutes) or "0 9 * * 1-5" (09:00 on weekdays)'
)
# The five crontab fields: (name for people, CronTrigger's keyword).
CRON_FIELDS = (
    ("minute", "minute"),
    ("hour", "hour"),
    ("day-of-month", "day"),
    ("month", "month"),
    ("day-of-week", "day_of_week"),
)
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's 0..6 (7 is sun again)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA zone `name`; 422 at `/timezone` when there is none."""
    if name not in _zone_names():
        raise ValidationFailed(
            [
                FieldProblem(
                    "/timezone",
                    f"unknown time zone {name!r}",
                    'give an IANA time zone name such as "UTC", "Europe/Paris" or "America/New_York"',
                )
            ]
        )
    return ZoneInfo(name)


def _crontab_weekdays(item: str) -> list[str]:
    """The weekday names a numeric day-of-week item (`1`, `1-5`, `*/2`, `0-6/3`) means in crontab.

    APScheduler's own field parser reads the item over 0..7, then each number is looked up as
    crontab numbers it (0 and 7 are Sunday).
    """
    try:
        field = BaseField("hour", item)  # a plain numeric field whose range (0..23) holds 0..7
    except ValueError:
        raise ValueError(
            f"{item!r} is not a weekday: use 0-7 (0 and 7 are Sunday) or names (mon-fri), "
            "alone, as a range (1-5), a step (*/2) or a list (1,3)"
        ) from None
    for expression in field.expressions:
        last = getattr(expression, "last", None)
        first = getattr(expression, "first", 0)
        if first > 7 or (last is not None and last > 7):
            raise ValueError(f"{item!r} is out of range: weekdays go from 0 to 7 (0 and 7 are Sunday)")
    days = []
    for number in range(8):
        if field.get_next_value(datetime(2000, 1, 1, number)) == number:
            days.append(_WEEKDAY_NAMES[number % 7])
    return list(dict.fromkeys(days))


def _weekday_field(value: str) -> str:
    """The day-of-week field with numbers turned into names (names and `*` pass through)."""
    if value.startswith("*") and "/" not in value:
        return value
    items = []
    for item in value.split(","):
        if any(ch.isalpha() for ch in item) or item in ("", "?"):
            items.append(item)  # names (mon-fri), or something APScheduler will refuse with its words
        else:
            items.extend(_crontab_weekdays(item))
    return ",".join(items)


def _field_problem(label: str, value: str, error: Exception) -> FieldProblem:
    return FieldProblem("/cron", f"the {label} field {value!r} is not valid: {error}", CRON_HINT)


def parse_cron(expression: str, zone: ZoneInfo | None = None) -> Any:
    """An APScheduler trigger for a 5-field crontab `expression` read in `zone` (default UTC).

    422 at `/cron` naming each wrong field when the expression is not one.
    """
    zone = zone or ZoneInfo("UTC")
    values = expression.split()
    if len(values) != 5:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/cron",
                    f"a crontab expression has 5 fields, this one has {len(values)}",
                    CRON_HINT,
                )
            ]
        )
    fields: dict[str, str] = {}
    problems = []
    for (label, keyword), value in zip(CRON_FIELDS, values, strict=True):
        try:
            fields[keyword] = _weekday_field(value) if keyword == "day_of_week" else value
            CronTrigger(**{keyword: fields[keyword]}, timezone=zone)
        except (ValueError, TypeError) as exc:
            problems.append(_field_problem(label, value, exc))
    if problems:
        raise ValidationFailed(problems)
    try:
        if values[2].startswith("*") or values[4].startswith("*"):
            return CronTrigger(**fields, timezone=zone)
        # cron(8): with both day fields restricted, a day matching either one fires.
        by_month_day = CronTrigger(**{**fields, "day_of_week": "*"}, timezone=zone)
        by_week_day = CronTrigger(**{**fields, "day": "*"}, timezone=zone)
        return OrTrigger([by_month_day, by_week_day])
    except (ValueError, TypeError) as exc:
        raise ValidationFailed([FieldProblem("/cron", f"not a valid crontab: {exc}", CRON_HINT)]) from None


def next_fire_after(trigger: Any, moment: datetime) -> datetime | None:
    """The first slot of `trigger` strictly after `moment`, in UTC; None when it never fires again."""
    # Passing `moment` as the previous fire time makes APScheduler look strictly after it.
    fire: datetime | None = trigger.get_next_fire_time(moment, moment)
    return None if fire is None else fire.astimezone(UTC)


def first_fire_after(expression: str, zone: ZoneInfo, moment: datetime) -> datetime:
    """The next slot of a valid expression after `moment`; 422 at `/cron` when there is none."""
    fire = next_fire_after(parse_cron(expression, zone), moment)
    if fire is None:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/cron",
                    f"{expression!r} never fires (no date matches it, e.g. the 31st of February)",
                    CRON_HINT,
                )
            ]
        )
    return fire
