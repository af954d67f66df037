"""What each device call costs on a phone, as the simulator charges it to its virtual clock.

A phone spends real time on every call (a hierarchy dump, a tap, a launch); a simulator that
spent none would let a run cap or a widget that appears after N ms race differently against
the steps. So `SimulatedDevice` on a `VirtualClock` moves the clock on by these costs: the
medians measured on the virtual device through the uiautomator2 driver (`bench/device_costs.py`
prints them beside these numbers), rounded. `launch` includes the force-stop of `stopFirst`;
`swipe` is what the virtual device takes to answer one (it does not hold the finger down for
the swipe's duration).
"""

from __future__ import annotations

DEVICE_COSTS_MS: dict[str, int] = {
    "launch": 50,
    "stop": 20,
    "hierarchy": 40,
    "foreground": 30,
    "tap": 25,
    "input_text": 150,
    "press_key": 25,
    "swipe": 25,
    "screenshot": 550,
}
