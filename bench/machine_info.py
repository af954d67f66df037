"""What every benchmark records of the machine it ran on, beside its results."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
