"""A virtual Android device for CI and demos: the real adb and uiautomator2 clients drive it.

It speaks adb's wire protocol on 127.0.0.1 (so Debian's `adb` lists it as
`emulator-5554`) and runs the uiautomator2 server protocol, over the interpreter's app
model. It is not Android: no APKs run; the apps are models.

    from emulator import Emulator
    with Emulator(console_port=5560) as emu:
        ...  # adb -s emu.serial shell getprop ro.build.version.sdk  ->  34
"""

from emulator.device import VirtualDevice
from emulator.runner import Emulator, EmulatorError, EmulatorService, load_apps

__all__ = ["Emulator", "EmulatorError", "EmulatorService", "VirtualDevice", "load_apps"]
