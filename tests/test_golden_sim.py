"""Every golden case on the simulator must give exactly its `trace.json`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.golden import case_paths, comparable, difference, golden_http_server, load_case, run_on_simulator

CASES = case_paths()


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    with golden_http_server() as base:
        yield base


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_case_matches_its_trace(path, http_base) -> None:
    case = load_case(path)
    assert case.expected is not None, f"{case.name} has no trace.json: run make golden-update"
    result = run_on_simulator(case, http_base if case.uses_http else None)
    diff = difference(case, comparable(result))
    assert diff is None, "\n" + diff
