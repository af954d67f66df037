"""`python -m device_bridge ...`: the bridge's commands without the `phoneflow` root."""

from device_bridge.cli import bridge_app

bridge_app(prog_name="phoneflow bridge")
