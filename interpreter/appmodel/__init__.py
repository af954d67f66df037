"""The app model: installed apps, screens, widgets and what a click does, its layout and a running phone.

The simulator and the emulator both build on this package; it imports nothing from the
engine or validation, so the emulator can use it alone.
"""

from interpreter.appmodel.layout import ScreenView, Window, layout_home, layout_screen
from interpreter.appmodel.model import (
    LAUNCHER_ACTIVITY,
    LAUNCHER_PACKAGE,
    SYSTEM_PACKAGES,
    AppModel,
    AppSpec,
    ScreenSpec,
    WidgetSpec,
    app_model_schema,
    sample_apps,
    sample_apps_path,
)
from interpreter.appmodel.phone import TOAST_SECONDS, PhoneState

__all__ = [
    "LAUNCHER_ACTIVITY",
    "LAUNCHER_PACKAGE",
    "SYSTEM_PACKAGES",
    "TOAST_SECONDS",
    "AppModel",
    "AppSpec",
    "PhoneState",
    "ScreenSpec",
    "ScreenView",
    "WidgetSpec",
    "Window",
    "app_model_schema",
    "layout_home",
    "layout_screen",
    "sample_apps",
    "sample_apps_path",
]
