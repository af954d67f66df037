"""The battery: what `dumpsys battery` prints and what `dumpsys battery set|unplug|reset` change,
as on a phone (the shell commands people and test labs use to fake a battery state).

    adb shell dumpsys battery set level 15     # the level shown from now on
    adb shell dumpsys battery unplug           # not charging (every power source off)
    adb shell dumpsys battery set ac 1         # on the charger again
    adb shell dumpsys battery reset            # back to the real state: full, on AC

As on Android, once a value was set the dump says `(UPDATES STOPPED -- use 'reset' to restart)`.
"""

from __future__ import annotations

from dataclasses import dataclass

# BatteryManager.BATTERY_STATUS_*
STATUS_CHARGING = 2
STATUS_DISCHARGING = 3
STATUS_NOT_CHARGING = 4
STATUS_FULL = 5

_SOURCES = ("ac", "usb", "wireless")


@dataclass
class Battery:
    level: int = 100
    ac: bool = True
    usb: bool = False
    wireless: bool = False
    status: int | None = None  # None: follows the level and the power sources
    updates_stopped: bool = False

    @property
    def charging(self) -> bool:
        return self.ac or self.usb or self.wireless

    def current_status(self) -> int:
        if self.status is not None:
            return self.status
        if self.charging:
            return STATUS_FULL if self.level >= 100 else STATUS_CHARGING
        return STATUS_DISCHARGING

    def dump(self) -> str:
        flag = "  (UPDATES STOPPED -- use 'reset' to restart)\n" if self.updates_stopped else ""
        return (
            f"Current Battery Service state:\n{flag}"
            f"  AC powered: {str(self.ac).lower()}\n  USB powered: {str(self.usb).lower()}\n"
            f"  Wireless powered: {str(self.wireless).lower()}\n  Max charging current: 0\n"
            f"  Max charging voltage: 0\n  Charge counter: {self.level * 100}\n"
            f"  status: {self.current_status()}\n  health: 2\n  present: true\n  level: {self.level}\n"
            "  scale: 100\n  voltage: 5000\n  temperature: 250\n  technology: Li-ion\n"
        )

    def command(self, args: list[str]) -> str | None:
        """`set KEY VALUE`, `unplug` or `reset`; returns an error text (for stderr) or None."""
        verb = args[0] if args else ""
        if verb == "reset":
            fresh = Battery()
            self.__dict__.update(fresh.__dict__)
            return None
        if verb == "unplug":
            self.ac = self.usb = self.wireless = False
            self.updates_stopped = True
            return None
        if verb == "set" and len(args) == 3:
            key, value = args[1], args[2]
            try:
                number = int(value)
            except ValueError:
                return f"Bad value: {value}\n"
            if key in _SOURCES:
                setattr(self, key, number != 0)
            elif key == "level":
                self.level = max(0, min(100, number))
            elif key == "status":
                self.status = number
            else:
                return f"Unknown set option: {key}\n"
            self.updates_stopped = True
            return None
        return (
            "Battery service (battery) dump options:\n"
            "  [-a] [-h] [set [ac|usb|wireless|status|level] value] [unplug] [reset]\n"
        )
