"""THE golden-trace parity test: every case on the simulator and on `U2Device` against the emulator.

Both must equal the case's `trace.json`. The emulator starts with the case's `apps.json`;
one emulator serves every case of the same app model (cases are ordered by model so each
model starts once), and between cases every app of the model is force-stopped, the phone sent
home and a toast still up waited out (a toast outlives its app's force-stop, on a phone too) —
through adb, as a phone would be reset — so no case sees another's state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_bridge.driver import U2Device
from interpreter.clock import RealClock
from tests.bridge.conftest import start_emulator
from tests.golden import (
    GoldenCase,
    case_paths,
    comparable,
    difference,
    golden_http_server,
    load_case,
    reset_phone,
    run_case,
    run_on_simulator,
)

pytestmark = pytest.mark.emulator


def _model_key(path: Path) -> str:
    apps = json.loads((path / "apps.json").read_text(encoding="utf-8"))
    return hashlib.sha256(json.dumps(apps, sort_keys=True).encode()).hexdigest()


# Same app model → consecutive cases → one emulator start per model.
CASES = sorted(case_paths(), key=lambda path: (_model_key(path), path.name))


class EmulatorPool:
    """Keeps the emulator (and the bridge's device) of the current app model; one at a time."""

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self.key: str | None = None
        self.emulator: Any = None
        self.device: U2Device | None = None

    def device_for(self, case: GoldenCase) -> U2Device:
        key = _model_key(case.path)
        if key != self.key or self.device is None:
            self.close()
            self.emulator = start_emulator(case.app_model())
            self.device = U2Device(self.emulator.serial, lock_dir=self.lock_dir)
            self.key = key
        else:
            self.reset(case)
        return self.device

    def reset(self, case: GoldenCase) -> None:
        assert self.device is not None
        reset_phone(self.device, case)

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
        if self.emulator is not None:
            self.emulator.stop()
        self.device = self.emulator = self.key = None


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    with golden_http_server() as base:
        yield base


@pytest.fixture(scope="module")
def pool(adb_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorPool]:
    emulators = EmulatorPool(tmp_path_factory.mktemp("parity-locks"))
    try:
        yield emulators
    finally:
        emulators.close()


def test_there_are_cases() -> None:
    assert len(CASES) >= 20, f"golden_traces/ holds only {len(CASES)} cases"


@pytest.mark.parametrize("case_path", CASES, ids=[path.name for path in CASES])
def test_golden_case_on_simulator_and_emulator(case_path: Path, pool: EmulatorPool, http_base: str) -> None:
    case = load_case(case_path)
    assert case.expected is not None, f"{case.name} has no trace.json: run make golden-update"
    base = http_base if case.uses_http else None
    on_simulator = comparable(run_on_simulator(case, base))
    on_emulator = comparable(run_case(case, pool.device_for(case), RealClock(), base))
    problems = []
    if (diff := difference(case, on_simulator)) is not None:
        problems.append(f"simulator differs from trace.json:\n{diff}")
    if (diff := difference(case, on_emulator)) is not None:
        problems.append(f"bridge + emulator differs from trace.json:\n{diff}")
    assert not problems, "\n\n".join(problems)
