"""The keys of `action.pressKey`, with their Android key codes (`android.view.KeyEvent.KEYCODE_*`).

The one list: the workflow schema's `pressKey.key` enum holds exactly these names in this
order (a test checks it), the simulator accepts exactly these, and every bridge driver
presses them by code, so a key that validates is a key every driver can press.
"""

from __future__ import annotations

KEYCODES: dict[str, int] = {
    "back": 4,
    "home": 3,
    "enter": 66,
    "menu": 82,
    "recent": 187,  # KEYCODE_APP_SWITCH
    "delete": 67,  # KEYCODE_DEL: backspace
    "search": 84,
    "up": 19,  # the D-pad
    "down": 20,
    "left": 21,
    "right": 22,
    "center": 23,
    "volume_up": 24,
    "volume_down": 25,
    "volume_mute": 164,
    "camera": 27,
    "power": 26,
    "tab": 61,
    "space": 62,
}

KEYS: tuple[str, ...] = tuple(KEYCODES)


def keycode(key: str) -> int:
    """The Android key code of a key name. Raises `ValueError` naming the keys there are."""
    code = KEYCODES.get(key)
    if code is None:
        raise ValueError(f"unknown key {key!r}: use one of {', '.join(KEYS)}")
    return code
