"""Chart geometry for the Analytics page: the numbers an SVG template needs, computed here.

The charts are server-rendered SVG (no script, no library): they work under the dashboard's
strict Content-Security-Policy, print, and need nothing from the builder's npm toolchain.
Each chart has axes with "nice" ticks and a legend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WIDTH = 640
HEIGHT = 180
LEFT = 52  # room for the y-axis labels
BOTTOM = 22  # room for the x-axis labels
TOP = 8
RIGHT = 8


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _plot(width: int = WIDTH) -> tuple[float, float]:
    return width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _y_ticks(top: float, label: Any, count: int = 4) -> list[Tick]:
    _, plot_h = _plot()
    return [
        Tick(round(TOP + plot_h - plot_h * i / count, 2), label(top * i / count)) for i in range(count + 1)
    ]


def _count_ticks(top: float) -> int:
    """How many steps up a count axis so that every label is a whole number."""
    return int(top) if top < 4 else 4 if int(top) % 4 == 0 else 5


def _days(first: date, days: int) -> list[date]:
    return [first + timedelta(days=offset) for offset in range(days)]


def _x_labels(dates: list[date], slot: float, most: int = 10) -> list[dict[str, Any]]:
    """A date under every k-th slot so that labels never overlap (`most` of them at most)."""
    every = max(1, math.ceil(len(dates) / most))
    return [
        {"x": round(LEFT + slot * (i + 0.5), 2), "label": day.strftime("%d %b")}
        for i, day in enumerate(dates)
        if i % every == 0
    ]


def duration_text(ms: float) -> str:
    """`850 ms`, `12 s`, `4.5 min` — short, for an axis."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    return f"{ms / 60_000:.3g} min"


def runs_per_day(per_day: list[dict[str, Any]], first: date, days: int) -> dict[str, Any]:
    """Stacked bars a day: succeeded, failed or timed out, other (cancelled, unfinished)."""
    counts = {row["day"]: row["counts"] for row in per_day}
    dates = _days(first, days)
    plot_w, plot_h = _plot()
    slot = plot_w / days
    bar_w = max(1.0, slot * 0.72)
    series = []
    for day in dates:
        c = counts.get(day.isoformat(), {})
        ok = c.get("success", 0)
        bad = c.get("failed", 0) + c.get("timeout", 0)
        series.append((day, ok, bad, sum(c.values()) - ok - bad))
    top = nice_ceiling(max((ok + bad + other for _, ok, bad, other in series), default=0))
    scale = plot_h / top
    bars = []
    for index, (day, ok, bad, other) in enumerate(series):
        x = LEFT + slot * index + (slot - bar_w) / 2
        base = TOP + plot_h
        segments = []
        for name, value in (("ok", ok), ("bad", bad), ("other", other)):
            height = value * scale
            if height:
                segments.append({"class": name, "y": round(base - height, 2), "h": round(height, 2)})
                base -= height
        bars.append(
            {
                "x": round(x, 2),
                "day": day.isoformat(),
                "total": ok + bad + other,
                "ok": ok,
                "bad": bad,
                "other": other,
                "segments": segments,
            }
        )
    return {
        **_frame(),
        "bar_w": round(bar_w, 2),
        "bars": bars,
        "y_ticks": _y_ticks(top, lambda v: f"{v:g}", _count_ticks(top)),
        "x_labels": _x_labels(dates, slot),
        "legend": [("ok", "succeeded"), ("bad", "failed or timed out"), ("other", "cancelled or not ended")],
    }


def line(
    per_day: list[dict[str, Any]],
    first: date,
    days: int,
    key: str,
    *,
    percent: bool = False,
    width: int = WIDTH,
) -> dict[str, Any]:
    """A line through each day's `key` (days without a value break the line), with its y axis."""
    values = {row["day"]: row.get(key) for row in per_day}
    dates = _days(first, days)
    plot_w, plot_h = _plot(width)
    slot = plot_w / days
    known = [v for v in (values.get(d.isoformat()) for d in dates) if v is not None]
    top = 1.0 if percent else nice_ceiling(max(known, default=0))
    points: list[dict[str, Any]] = []
    segments: list[str] = []
    run: list[str] = []
    for index, day in enumerate(dates):
        value = values.get(day.isoformat())
        if value is None:
            if run:
                segments.append(" ".join(run))
                run = []
            continue
        x = round(LEFT + slot * (index + 0.5), 2)
        y = round(TOP + plot_h - plot_h * value / top, 2)
        run.append(f"{x},{y}")
        text = f"{value * 100:.0f}%" if percent else duration_text(value)
        points.append({"x": x, "y": y, "day": day.isoformat(), "text": text})
    if run:
        segments.append(" ".join(run))
    label = (lambda v: f"{v * 100:.0f}%") if percent else duration_text
    return {
        **_frame(width),
        "points": points,
        "paths": segments,
        "y_ticks": _y_ticks(top, label),
        "x_labels": _x_labels(dates, slot, most=max(3, width // 80)),
    }


def _frame(width: int = WIDTH) -> dict[str, Any]:
    plot_w, plot_h = _plot(width)
    return {
        "width": width,
        "height": HEIGHT,
        "left": LEFT,
        "right": LEFT + plot_w,
        "top": TOP,
        "bottom": TOP + plot_h,
    }
