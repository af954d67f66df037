"""`am broadcast`: the intents a shell sends, and the one receiver on this device that answers.

    am broadcast -a ACTION [--es KEY VALUE] [--ei KEY N] [--ez KEY BOOL] [-n COMPONENT] ...

No app code runs here, so a broadcast reaches no receiver (`result=0`, as on a phone where
nothing listens) except uiautomator2's AdbKeyboard while it is the selected input method
(`ime set com.github.uiautomator/.AdbKeyboard`, which uiautomator2's `set_input_ime()` does
after installing its APK): the keyboard types into the focused field as the real one does —

    ADB_KEYBOARD_INPUT_TEXT  --es text BASE64    types the text
    ADB_KEYBOARD_CLEAR_TEXT                      empties the field
    ADB_KEYBOARD_INPUT_KEYCODE --ei code N       presses the key
    ADB_KEYBOARD_EDITOR_CODE --es code N, ADB_KEYBOARD_SMART_ENTER, ADB_KEYBOARD_HIDE
    ADB_KEYBOARD_GET_CLIPBOARD                   data = the clipboard, base64

each answering `result=-1, data="success"` (uiautomator2 checks for -1).
"""

from __future__ import annotations

import base64
import binascii

from emulator.shell_io import CommandContext

ADB_KEYBOARD = "com.github.uiautomator/.AdbKeyboard"
_RESULT_OK = -1


def _extras(args: list[str]) -> tuple[str, dict[str, str], list[str]]:
    """The action, the extras (values as text) and what else the intent had, from `am broadcast` args."""
    action, extras, rest = "", {}, []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-a" and i + 1 < len(args):
            action, i = args[i + 1], i + 2
        elif arg in ("--es", "--ei", "--ez", "--el", "--ef", "--eu") and i + 2 < len(args):
            extras[args[i + 1]], i = args[i + 2], i + 3
        elif arg in ("--user", "-n", "-p", "-c", "-d", "-t", "-f", "--receiver-permission") and i + 1 < len(
            args
        ):
            rest.extend(args[i : i + 2])
            i += 2
        else:
            rest.append(arg)
            i += 1
    return action, extras, rest


def _adb_keyboard(ctx: CommandContext, action: str, extras: dict[str, str]) -> tuple[int, str] | None:
    """What the AdbKeyboard's receiver answers, or None when it does not take `action`."""
    phone = ctx.device.phone
    if action == "ADB_KEYBOARD_INPUT_TEXT":
        try:
            text = base64.b64decode(extras.get("text", ""), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return 0, "text is not base64 of UTF-8"
        phone.input_text(text)
    elif action == "ADB_KEYBOARD_CLEAR_TEXT":
        phone.clear_text()
    elif action == "ADB_KEYBOARD_INPUT_KEYCODE":
        from emulator.android_commands import key_name  # that module imports this one

        ctx.device.press_key(key_name(extras.get("code", "")))
    elif action == "ADB_KEYBOARD_GET_CLIPBOARD":
        clip = phone.clipboard or ""
        return _RESULT_OK, base64.b64encode(clip.encode()).decode()
    elif action not in ("ADB_KEYBOARD_EDITOR_CODE", "ADB_KEYBOARD_SMART_ENTER", "ADB_KEYBOARD_HIDE"):
        return None
    return _RESULT_OK, "success"


async def broadcast(ctx: CommandContext, args: list[str]) -> int:
    action, extras, _ = _extras(args)
    flags = " flg=0x400000" + (" (has extras)" if extras else "")
    ctx.out(f"Broadcasting: Intent {{ {'act=' + action if action else ''}{flags} }}\n")
    answer = None
    selected = ctx.device.settings["secure"].get("default_input_method")
    if selected == ADB_KEYBOARD and ADB_KEYBOARD.split("/")[0] in ctx.device.apks:
        answer = _adb_keyboard(ctx, action, extras)
    if answer is None:
        ctx.out("Broadcast completed: result=0\n")
    else:
        ctx.out(f'Broadcast completed: result={answer[0]}, data="{answer[1]}"\n')
    return 0
