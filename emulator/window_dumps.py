"""`dumpsys window` and `dumpsys activity activities|top`, printed as Android 14 prints them.

What clients parse, and where Android 14 puts it:

- `dumpsys window windows` lists the windows (`Window #N Window{hash u0 PKG/ACT}:` with their
  `mActivityRecord`), but since Android 13 it has no `mCurrentFocus=` line: adbutils'
  `app_current()` then falls back to `dumpsys activity activities` (`mResumedActivity:`) and
  `dumpsys activity top` (`ACTIVITY PKG/.Act HASH pid=N`), which gives the short activity name
  and the app's pid.
- `dumpsys window displays` (what Appium reads on API 29+) and a bare `dumpsys window` hold the
  display's `mCurrentFocus=Window{hash u0 PKG/ACT}` and `mFocusedApp=ActivityRecord{hash u0 PKG/.Act tN}`.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from emulator.package_commands import short_component

if TYPE_CHECKING:
    from emulator.device import VirtualDevice
    from emulator.shell_io import CommandContext

__all__ = ["dumpsys_activity_state", "dumpsys_window"]


def _hash(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"[:7]


class _Focus:
    """The app in front: its package, activity, task, pid and the record strings naming them."""

    def __init__(self, device: VirtualDevice) -> None:
        phone = device.phone
        self.package = phone.foreground_package()
        self.activity = phone.foreground_activity()
        self.task = device.task_id(self.package)
        self.pid = device.app_pid(self.package)
        self.uid = device.app_uid(self.package)
        self.short = short_component(self.package, self.activity)
        self.window = f"Window{{{_hash(self.activity)} u0 {self.package}/{self.activity}}}"
        self.record = f"ActivityRecord{{{_hash(self.activity + 'r')} u0 {self.short} t{self.task}}}"


def _windows_section(ctx: CommandContext, focus: _Focus, width: int, height: int) -> None:
    ctx.out("WINDOW MANAGER WINDOWS (dumpsys window windows)\n")
    ctx.out(f"  Window #0 {focus.window}:\n")
    ctx.out(
        f"    mDisplayId=0 rootTaskId={focus.task} mSession=Session{{{_hash(focus.package + 's')} "
        f"{focus.pid}:u0a{focus.uid - 10000}}} mClient=android.os.BinderProxy@{_hash(focus.package + 'c')}\n"
    )
    ctx.out(f"    mOwnerUid={focus.uid} showForAllUsers=false package={focus.package} appop=NONE\n")
    ctx.out("    mAttrs={(0,0)(fillxfill) sim={adjust=resize} ty=BASE_APPLICATION wanim=0x10302fe}\n")
    ctx.out(f"    Requested w={width} h={height} mLayoutSeq=42\n")
    ctx.out(f"    mBaseLayer=21000 mSubLayer=0    mToken={focus.record}\n")
    ctx.out(f"    mActivityRecord={focus.record}\n")
    ctx.out("    mViewVisibility=0x0 mHaveFrame=true mObscured=false\n\n")
    ctx.out("  mGlobalConfiguration={1.0 ?mcc?mnc [en_US] ldltr}\n  mHasPermanentDpad=false\n")
    ctx.out("  mTopFocusedDisplayId=0\n  mInTouchMode=true\n")


def _displays_section(ctx: CommandContext, focus: _Focus, width: int, height: int, rotation: int) -> None:
    density = ctx.device.density
    ctx.out("WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)\n")
    ctx.out(f"  Display: mDisplayId=0 rootTasks={focus.task}\n")
    ctx.out(f"    init=1080x2340 {density}dpi cur={width}x{height} rotation={rotation}\n")
    ctx.out(f"  mCurrentFocus={focus.window}\n  mFocusedApp={focus.record}\n")


def _policy_section(ctx: CommandContext) -> None:
    """The policy's screen and keyguard state: the screen is on or off (`input keyevent POWER`);
    there is no lock screen, so the keyguard never shows (Appium's `is_locked` reads these lines)."""
    on = ctx.device.screen_on
    ctx.out("WINDOW MANAGER POLICY STATE (dumpsys window policy)\n")
    ctx.out("    mSystemReady=true mSystemBooted=true\n    mDefaultDisplayPolicy:\n")
    ctx.out(f"      mAwake={str(on).lower()}\n")
    ctx.out(f"      mScreenOnEarly={str(on).lower()} mScreenOnFully={str(on).lower()}\n")
    ctx.out("      mKeyguardDrawComplete=true mWindowManagerDrawComplete=true\n")
    ctx.out("    KeyguardServiceDelegate\n      showing=false\n      inputRestricted=false\n")
    ctx.out("      occluded=false\n      secure=false\n      dreaming=false\n      systemIsReady=true\n")
    ctx.out("      deviceHasKeyguard=true\n      enabled=true\n      offReason=OFF_BECAUSE_OF_USER\n")
    ctx.out("      currentUser=0\n      bootCompleted=true\n")
    ctx.out(f"      screenState=SCREEN_STATE_{'ON' if on else 'OFF'}\n")
    ctx.out(f"      interactiveState=INTERACTIVE_STATE_{'AWAKE' if on else 'SLEEP'}\n")
    ctx.out("      KeyguardStateMonitor\n        mIsShowing=false\n        mSimSecure=false\n")
    ctx.out("        mInputRestricted=false\n        mTrusted=false\n        mCurrentUserId=0\n")


def dumpsys_window(ctx: CommandContext, section: str) -> None:
    """`dumpsys window [windows|displays|policy]` (other sections print the whole dump, as `all` does)."""
    device = ctx.device
    focus = _Focus(device)
    width, height = device.display_size()
    rotation = device.phone.rotation
    if section in ("windows", "w"):
        _windows_section(ctx, focus, width, height)
        return
    if section in ("displays", "d"):
        _displays_section(ctx, focus, width, height, rotation)
        return
    if section in ("policy", "p"):
        _policy_section(ctx)
        return
    _policy_section(ctx)
    ctx.out("\n")
    _displays_section(ctx, focus, width, height, rotation)
    ctx.out("\n")
    _windows_section(ctx, focus, width, height)


def dumpsys_activity_state(ctx: CommandContext, sub: str) -> None:
    """`dumpsys activity top` (the task in front, with its pid) or `dumpsys activity activities`."""
    focus = _Focus(ctx.device)
    if sub == "top":
        ctx.out(f"TASK {focus.package} id={focus.task} userId=0\n")
        ctx.out(f"  ACTIVITY {focus.short} {_hash(focus.activity + 'a')} pid={focus.pid}\n")
        return
    ctx.out("ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n")
    ctx.out("Display #0 (activities from top to bottom):\n")
    task = f"Task{{{_hash(focus.package + 't')} #{focus.task} type=standard A={focus.uid}:{focus.package}}}"
    ctx.out(f"  * {task}\n")
    ctx.out(f"      * Hist #0: {focus.record}\n")
    ctx.out(f"    mResumedActivity: {focus.record}\n")
    ctx.out("  Resumed activities in task display areas (from top to bottom):\n")
    ctx.out(f"    Resumed: {focus.record}\n")
    ctx.out(f"  ResumedActivity: {focus.record}\n  topResumedActivity={focus.record}\n")
    ctx.out(f"  mFocusedApp={focus.record}\n")
