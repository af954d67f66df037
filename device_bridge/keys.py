"""The keys of `action.pressKey` as Android key codes (`android.view.KeyEvent.KEYCODE_*`).

The Appium driver presses keys by code (`press_keycode`); this is its one mapping.
"""

from __future__ import annotations

ANDROID_KEYCODES: dict[str, int] = {
    "home": 3,
    "back": 4,
    "tab": 61,
    "space": 62,
    "enter": 66,
    "delete": 67,
    "menu": 82,
    "search": 84,
    "recent": 187,  # KEYCODE_APP_SWITCH
}


def keycode(key: str) -> int:
    """The Android key code of a key name (case-insensitive). Raises `ValueError` naming the known keys."""
    code = ANDROID_KEYCODES.get(key.lower())
    if code is None:
        raise ValueError(f"unknown key {key!r}: use one of {', '.join(sorted(ANDROID_KEYCODES))}")
    return code
