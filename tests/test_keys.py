"""One list of pressKey keys: the schema, the simulator and the drivers' key codes agree."""

from __future__ import annotations

import pytest

from interpreter.appmodel import sample_apps
from interpreter.clock import VirtualClock
from interpreter.keys import KEYCODES, KEYS, keycode
from interpreter.schema import workflow_schema
from interpreter.simulator import SimulatedDevice


def test_the_schema_names_exactly_the_keys_with_codes() -> None:
    enum = workflow_schema()["$defs"]["params.action.pressKey"]["properties"]["key"]["enum"]
    assert enum == list(KEYS)
    assert {"tab", "space", "volume_up", "center", "power"} <= set(KEYS)
    assert keycode("home") == 3
    assert keycode("recent") == 187
    assert len(set(KEYCODES.values())) == len(KEYCODES)


def test_the_simulator_presses_every_key_and_refuses_others() -> None:
    clock = VirtualClock()
    device = SimulatedDevice(sample_apps(), clock)
    for key in KEYS:
        device.press_key(key)
    with pytest.raises(ValueError, match="unknown key 'Back': use one of back, home"):
        device.press_key("Back")
