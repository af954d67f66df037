"""`make demo`: show phoneflow working end to end on this machine.

Today it runs the sample workflow (examples/capture_order.json) on the simulator over
the sample apps and prints its trace. Later steps of the quick start (server, virtual
device, bridge, dashboard) are added here as they are built.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHONEFLOW = Path(sys.executable).with_name("phoneflow")


def main() -> int:
    from interpreter.appmodel import sample_apps_path

    workflow = ROOT / "examples" / "capture_order.json"
    inputs = (ROOT / "examples" / "capture_order.inputs.json").read_text(encoding="utf-8")
    print(f"phoneflow demo: simulating {workflow.relative_to(ROOT)} on the sample apps\n", flush=True)
    result = subprocess.run(
        [str(PHONEFLOW), "simulate", str(workflow), "--apps", str(sample_apps_path()), "--inputs", inputs],
        check=False,
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
