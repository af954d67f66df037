"""The device's system properties (`getprop`): Android 14 (SDK 34) on a Pixel-like emulator image.

The set is what `adb devices -l`, uiautomator2's `device_info` and ordinary scripts
read, and it is consistent with itself: the build fingerprint, description and
display id name the same product, version and build.
"""

from __future__ import annotations

SDK_INT = 34
RELEASE = "14"
BUILD_ID = "UE1A.230829.036.A1"
INCREMENTAL = "11228894"
PRODUCT_NAME = "sdk_gphone64_x86_64"
PRODUCT_DEVICE = "emu64xa"
PRODUCT_MODEL = "sdk_gphone64_x86_64"
BRAND = "google"
MANUFACTURER = "Google"
SECURITY_PATCH = "2023-10-05"
DENSITY = 420
SCREEN_SIZE = (1080, 2340)


def default_properties(console_port: int) -> dict[str, str]:
    """The property set of the emulator whose console port is `console_port`.

    `ro.serialno` follows Android emulators' own pattern (`EMULATOR34X1X<n>X0`, one
    `<n>` per instance); the adb serial (`emulator-5554`) is the adb server's name
    for the transport and is not a property.
    """
    fingerprint = (
        f"{BRAND}/{PRODUCT_NAME}/{PRODUCT_DEVICE}:{RELEASE}/{BUILD_ID}/{INCREMENTAL}:userdebug/dev-keys"
    )
    description = f"{PRODUCT_NAME}-userdebug {RELEASE} {BUILD_ID} {INCREMENTAL} dev-keys"
    instance = max(0, (console_port - 5554) // 2)
    return {
        "dalvik.vm.heapsize": "512m",
        "dalvik.vm.isa.x86_64.variant": "x86_64",
        "gsm.operator.alpha": "T-Mobile",
        "gsm.sim.operator.alpha": "T-Mobile",
        "init.svc.adbd": "running",
        "init.svc.bootanim": "stopped",
        "net.hostname": f"{PRODUCT_DEVICE}-{instance}",
        "persist.sys.locale": "en-US",
        "persist.sys.timezone": "UTC",
        "persist.sys.usb.config": "adb",
        "qemu.hw.mainkeys": "0",
        "ro.adb.secure": "0",
        "ro.boot.hardware": "ranchu",
        "ro.boot.qemu": "1",
        "ro.boot.serialno": f"EMULATOR34X1X{instance}X0",
        "ro.bootmode": "unknown",
        "ro.build.characteristics": "emulator",
        "ro.build.date": "Tue Oct 24 20:15:43 UTC 2023",
        "ro.build.date.utc": "1698178543",
        "ro.build.description": description,
        "ro.build.display.id": f"{PRODUCT_NAME}-userdebug {RELEASE} {BUILD_ID} {INCREMENTAL} dev-keys",
        "ro.build.fingerprint": fingerprint,
        "ro.build.flavor": f"{PRODUCT_NAME}-userdebug",
        "ro.build.host": "abfarm-release-2004-0223",
        "ro.build.id": BUILD_ID,
        "ro.build.product": PRODUCT_DEVICE,
        "ro.build.tags": "dev-keys",
        "ro.build.type": "userdebug",
        "ro.build.user": "android-build",
        "ro.build.version.base_os": "",
        "ro.build.version.codename": "REL",
        "ro.build.version.incremental": INCREMENTAL,
        "ro.build.version.preview_sdk": "0",
        "ro.build.version.release": RELEASE,
        "ro.build.version.release_or_codename": RELEASE,
        "ro.build.version.sdk": str(SDK_INT),
        "ro.build.version.security_patch": SECURITY_PATCH,
        "ro.debuggable": "1",
        "ro.hardware": "ranchu",
        "ro.kernel.qemu": "1",
        "ro.product.board": "goldfish_x86_64",
        "ro.product.brand": BRAND,
        "ro.product.cpu.abi": "x86_64",
        "ro.product.cpu.abilist": "x86_64,arm64-v8a",
        "ro.product.cpu.abilist32": "",
        "ro.product.cpu.abilist64": "x86_64,arm64-v8a",
        "ro.product.device": PRODUCT_DEVICE,
        "ro.product.locale": "en-US",
        "ro.product.manufacturer": MANUFACTURER,
        "ro.product.model": PRODUCT_MODEL,
        "ro.product.name": PRODUCT_NAME,
        "ro.secure": "1",
        "ro.serialno": f"EMULATOR34X1X{instance}X0",
        "ro.sf.lcd_density": str(DENSITY),
        "ro.system.build.version.sdk": str(SDK_INT),
        "ro.zygote": "zygote64_32",
        "service.adb.root": "0",
        "sys.boot_completed": "1",
        "dev.bootcomplete": "1",
        "vold.has_adoptable": "0",
        "wifi.interface": "wlan0",
    }
