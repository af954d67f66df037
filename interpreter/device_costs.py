"""What each device call costs on a phone, as the simulator charges it to its virtual clock.

A phone spends real time on every call (a hierarchy dump, a tap, a launch); a simulator that
spent none would let a run cap or a widget that appears after N ms race differently against
the steps. So `SimulatedDevice` on a `VirtualClock` moves the clock on by these costs: the
medians measured on the virtual device through the uiautomator2 driver (`bench/device_costs.py`
prints them beside these numbers), rounded. `launch` includes the force-stop of `stopFirst`;
a swipe costs its own duration (the finger moves that long) plus `swipe`; `foreground` is one
look at the app (or the activity) in front.
"""

from __future__ import annotations

DEVICE_COSTS_MS: dict[str, int] = {
    "launch": 45,
    "stop": 22,
    "hierarchy": 1,
    "foreground": 22,
    "tap": 1,
    "input_text": 3,
    "press_key": 1,
    "swipe": 16,
    "screenshot": 100,
}
