"""Rewrite every golden case's `trace.json` from a run on the simulator (`make golden-update`).

Review the result with `git diff golden_traces/` before committing: a changed trace is a
changed contract, and the bridge must produce the same one on the emulator.
"""

from __future__ import annotations

import sys

from tests.golden import case_paths, comparable, golden_http_server, load_case, render, run_on_simulator


def main() -> int:
    """Run each case and write its trace; print which ones changed."""
    paths = case_paths()
    if not paths:
        print("no golden cases found under golden_traces/", file=sys.stderr)
        return 1
    changed = 0
    with golden_http_server() as http_base:
        for path in paths:
            case = load_case(path)
            actual = comparable(run_on_simulator(case, http_base if case.uses_http else None))
            if actual == case.expected:
                continue
            (path / "trace.json").write_text(render(actual), encoding="utf-8")
            changed += 1
            print(f"{'new' if case.expected is None else 'changed'}: {case.name} -> {actual['status']}")
    print(f"{len(paths)} cases, {changed} trace(s) written; review them with: git diff golden_traces/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
