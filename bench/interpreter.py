"""Benchmark the interpreter: the engine on the simulator, and validation.

    .venv/bin/python bench/interpreter.py [--rounds 7]      (or: make bench)

Measures (each the median of several rounds, in one process on this machine):
- node executions per second on the simulator: a 1,000-node chain of screen-reading and
  control steps, and a 2-node loop the engine stops at its 10,000-execution limit;
- the time to simulate a 100-node workflow (order capture, repeated: taps, typing, waits
  for a toast, conditions), from a fresh `SimulatedDevice` to the finished run;
- the time `validate()` takes on a 1,000-node workflow.

Prints a table and writes `bench/results/interpreter.json`. Targets: a 100-node workflow
simulates in under 20 ms; 1,000 nodes validate in under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from interpreter.appmodel import AppModel, sample_apps  # noqa: E402
from interpreter.clock import VirtualClock  # noqa: E402
from interpreter.denylist import Denylist  # noqa: E402
from interpreter.engine import RunResult, run_workflow  # noqa: E402
from interpreter.simulator import SimulatedDevice  # noqa: E402
from interpreter.trace import RunStatus  # noqa: E402
from interpreter.validation import validate  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "interpreter.json"
SHOP = "com.example.shop"
TARGET_100_NODES_MS = 20.0
TARGET_VALIDATE_1000_MS = 100.0


def chain_workflow(size: int) -> dict[str, Any]:
    """`size` nodes in a line: launch and sign in, then waits, reads, conditions and setVars in turn."""
    nodes: list[dict[str, Any]] = [
        {"id": "n0", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True}},
        {"id": "n1", "kind": "action.tapByText", "params": {"text": "Sign in"}},
    ]
    cycle = [
        ("action.waitForText", {"text": "New order"}),
        ("action.readText", {"selector": {"resourceId": "com.example.shop:id/order_row", "index": 1}}),
        ("control.setVar", {"name": "seen", "value": "row {{inputs.order}}"}),
        ("control.if", {"textVisible": "Refresh"}),
        ("control.setVar", {"name": "last", "value": "{{vars.seen}}"}),
        ("control.if", {"expr": "vars.seen != ''"}),
    ]
    while len(nodes) < size:
        kind, params = cycle[len(nodes) % len(cycle)]
        nodes.append({"id": f"n{len(nodes)}", "kind": kind, "params": params})
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return _definition("chain", nodes, order_input=True)


def loop_workflow() -> dict[str, Any]:
    """Two nodes calling each other forever: the engine stops the run at 10,000 executions."""
    nodes = [
        {"id": "look", "kind": "control.if", "params": {"expr": "inputs.order != ''"}, "next": "note"},
        {
            "id": "note",
            "kind": "control.setVar",
            "params": {"name": "x", "value": "{{inputs.order}}"},
            "next": "look",
        },
    ]
    return _definition("loop", nodes, order_input=True)


def capture_workflow(size: int = 100) -> dict[str, Any]:
    """Order capture as people write it, repeated until `size` nodes: taps, typing, toasts, branches."""
    nodes: list[dict[str, Any]] = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True}},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
    ]
    round_no = 0
    while len(nodes) < size:
        r = round_no
        round_no += 1
        block = [
            {"id": f"new{r}", "kind": "action.tapByText", "params": {"text": "New order"}},
            {
                "id": f"type{r}",
                "kind": "action.typeText",
                "params": {
                    "text": f"{{{{inputs.order}}}}-{r}",
                    "selector": {"resourceId": "com.example.shop:id/order"},
                },
            },
            {"id": f"save{r}", "kind": "action.tapByText", "params": {"text": "Save"}},
            {"id": f"saved{r}", "kind": "action.waitForText", "params": {"text": "Saved", "timeoutMs": 2000}},
            {"id": f"row{r}", "kind": "action.readText", "params": {"selector": {"text": f"A-1-{r}"}}},
            {
                "id": f"ok{r}",
                "kind": "control.if",
                "params": {"expr": f"nodes.row{r}.output.text == 'A-1-{r}'"},
            },
        ]
        nodes.extend(block[: size - len(nodes)])
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return _definition("capture", nodes, order_input=True)


def _definition(name: str, nodes: list[dict[str, Any]], order_input: bool) -> dict[str, Any]:
    definition: dict[str, Any] = {"schemaVersion": 1, "name": name, "start": nodes[0]["id"], "nodes": nodes}
    if order_input:
        definition["inputs"] = {"type": "object", "properties": {"order": {"type": "string"}}}
        definition["targetPackages"] = [SHOP]
    return definition


def simulate(definition: dict[str, Any], model: AppModel) -> RunResult:
    clock = VirtualClock()
    return run_workflow(definition, SimulatedDevice(model, clock), inputs={"order": "A-1"}, clock=clock)


def median_seconds(action: Callable[[], Any], rounds: int) -> float:
    action()  # warm caches (compiled CEL, the schema validators) as a running server would have them
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per measurement (median is kept)")
    args = parser.parse_args()
    model = sample_apps()

    chain = chain_workflow(1000)
    loop = loop_workflow()
    capture = capture_workflow(100)
    checks = {
        "chain": simulate(chain, model),
        "loop": simulate(loop, model),
        "capture": simulate(capture, model),
    }
    expected = {
        "chain": (RunStatus.SUCCESS, 1000),
        "loop": (RunStatus.FAILED, 10_000),
        "capture": (RunStatus.SUCCESS, 100),
    }
    for key, result in checks.items():
        if (result.status, result.n_steps) != expected[key]:
            print(
                f"benchmark workflow {key!r} did not run as intended: {result.status}"
                f" after {result.n_steps} steps ({result.error_message})",
                file=sys.stderr,
            )
            return 1
    problems = [p for p in validate(chain, Denylist(["com.bank.*"])) if p.severity == "error"]
    if problems:
        print(f"the 1,000-node workflow is not valid: {problems[0]}", file=sys.stderr)
        return 1

    chain_s = median_seconds(lambda: simulate(chain, model), args.rounds)
    loop_s = median_seconds(lambda: simulate(loop, model), args.rounds)
    capture_s = median_seconds(lambda: simulate(capture, model), max(args.rounds, 21))
    validate_s = median_seconds(lambda: validate(chain, Denylist(["com.bank.*"])), args.rounds)

    rows = [
        {
            "name": "1,000-node chain on the simulator",
            "value": 1000 / chain_s,
            "unit": "node executions/s",
            "detail_ms": chain_s * 1000,
            "target": None,
            "passed": None,
        },
        {
            "name": "10,000-step loop on the simulator",
            "value": 10_000 / loop_s,
            "unit": "node executions/s",
            "detail_ms": loop_s * 1000,
            "target": None,
            "passed": None,
        },
        {
            "name": "100-node workflow, simulated",
            "value": capture_s * 1000,
            "unit": "ms",
            "detail_ms": capture_s * 1000,
            "target": f"< {TARGET_100_NODES_MS:g} ms",
            "passed": capture_s * 1000 < TARGET_100_NODES_MS,
        },
        {
            "name": "1,000-node workflow, validated",
            "value": validate_s * 1000,
            "unit": "ms",
            "detail_ms": validate_s * 1000,
            "target": f"< {TARGET_VALIDATE_1000_MS:g} ms",
            "passed": validate_s * 1000 < TARGET_VALIDATE_1000_MS,
        },
    ]
    table = Table(title="phoneflow interpreter benchmark", title_justify="left")
    for column in ("measure", "result", "run time", "target", "pass"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for row in rows:
        value = f"{row['value']:,.0f} {row['unit']}" if row["unit"] != "ms" else f"{row['value']:.2f} ms"
        verdict = "-" if row["passed"] is None else ("PASS" if row["passed"] else "FAIL")
        style = "" if row["passed"] is None else ("green" if row["passed"] else "bold red")
        table.add_row(
            row["name"],
            value,
            f"{row['detail_ms']:.1f} ms",
            row["target"] or "-",
            f"[{style}]{verdict}[/]" if style else verdict,
        )
    Console().print(table)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "interpreter",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rounds": args.rounds,
        "results": rows,
        "allTargetsMet": all(row["passed"] is not False for row in rows),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0 if report["allTargetsMet"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
