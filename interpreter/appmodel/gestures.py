"""How far a swipe scrolls a list: touch slop, the drag itself, and the fling after the finger lifts.

The model, with Android's defaults for a 420 dpi screen (density 2.625):

- **Touch slop** (`ViewConfiguration.getScaledTouchSlop`, 8 dp = 21 px): a list starts to follow
  the finger only once it moved this far, so a swipe of `d` px drags the content `d - 21` px, and
  a swipe of 21 px or less scrolls nothing.
- **Fling**: the finger's speed when it lifts is the swipe's average speed, `d / duration`
  (uiautomator moves in even steps of 5 ms; Appium's pointer moves evenly over their duration).
  Below the minimum fling speed (50 dp/s = 131 px/s) the list stops where the finger left it;
  above it the list flings on, the speed capped at the maximum (8000 dp/s = 21000 px/s), for the
  distance Android's `OverScroller` spline gives:
  `c = friction × g × 39.37 in/m × ppi × 0.84`, `l = ln(0.35 × v / c)`, `distance = c × e^(2.358 / 1.358 × l)`
  with friction 0.015 and deceleration rate 2.358 = ln 0.78 / ln 0.9. A 936 px swipe in 250 ms
  (3744 px/s) flings about 945 px further; the same swipe in 2 s (468 px/s) about 25 px.
- The fling's end is applied at once when the finger lifts (the model does not animate), and the
  scroll stops at the list's ends.

A swipe without a duration (gestures that give none) drags with the slop and does not fling.
"""

from __future__ import annotations

import math

__all__ = ["MAX_FLING_VELOCITY", "MIN_FLING_VELOCITY", "TOUCH_SLOP", "fling_distance", "scroll_distance"]

DENSITY = 420 / 160
TOUCH_SLOP = round(8 * DENSITY)  # px
MIN_FLING_VELOCITY = round(50 * DENSITY)  # px/s
MAX_FLING_VELOCITY = round(8000 * DENSITY)  # px/s
_FRICTION = 0.015
_INFLEXION = 0.35
_DECELERATION_RATE = math.log(0.78) / math.log(0.9)
_PHYSICAL_COEF = 9.80665 * 39.37 * 160 * DENSITY * 0.84  # g in in/s², times the screen's pixels per inch


def fling_distance(velocity: float) -> int:
    """How far (px) a list flings after a finger lifts at `velocity` px/s (0 below the minimum)."""
    speed = min(abs(velocity), MAX_FLING_VELOCITY)
    if speed < MIN_FLING_VELOCITY:
        return 0
    coefficient = _FRICTION * _PHYSICAL_COEF
    spline = math.log(_INFLEXION * speed / coefficient)
    return round(coefficient * math.exp(_DECELERATION_RATE / (_DECELERATION_RATE - 1) * spline))


def scroll_distance(travel: float, duration_ms: float | None) -> int:
    """How far (px, signed like `travel`) a list scrolls when a finger moves `travel` px along it
    in `duration_ms` (None: no fling)."""
    length = abs(travel)
    if length <= TOUCH_SLOP:
        return 0
    moved = length - TOUCH_SLOP
    if duration_ms is not None and duration_ms > 0:
        moved += fling_distance(length / (duration_ms / 1000))
    return round(math.copysign(moved, travel))
