"""What every benchmark records of the machine it ran on, beside its results, and how it prints them."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """Print (measure, value, note) rows as the benchmarks' three aligned columns."""
    width = max(len(label) for label, _, _ in rows)
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>10}  {note}")
