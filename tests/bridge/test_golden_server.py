"""Golden cases with an account denylist, through the server: the account's entries are added with
the API, then the server's simulate endpoint and the bridge (`bridge run`, claiming from the
server) on the emulator must both give the case's `trace.json`.

The phone gets the account's list only from the server (with the claimed run): the bridge has no
local denylist here, so the case shows that the server's list reaches the phone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.conftest import start_emulator
from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    pair_in_state_dir,
    poll_run,
    publish_workflow,
    start_agent,
    start_server,
    trigger,
)
from tests.golden import case_paths, difference, load_case

pytestmark = pytest.mark.emulator

CASES = [path for path in case_paths() if (path / "account-denylist.txt").exists()]


def _comparable(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("nodeId", "kind", "outcome", "message", "attempts", "output")
    return {
        "status": run["status"],
        "errorMessage": run["errorMessage"],
        "events": [{key: event[key] for key in keys} for event in run["trace"]],
    }


@pytest.fixture(scope="module")
def golden_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("golden-server"))
    try:
        yield process
    finally:
        process.stop()


def test_there_is_an_account_denylist_case() -> None:
    assert CASES, "golden_traces/ has no case with an account-denylist.txt"


@pytest.mark.parametrize("case_path", CASES, ids=[path.name for path in CASES])
def test_account_denylist_case_through_the_server(
    case_path: Path, golden_server: ServerProcess, adb_server: str, tmp_path: Path
) -> None:
    case = load_case(case_path)
    assert case.expected is not None
    assert not case.denylist, "the server path takes the account's list only: no denylist.txt here"
    client = golden_server.client()
    added = []
    try:
        for pattern in case.account_denylist.entries:
            answer = client.post("/api/v1/denylist", json={"pattern": pattern})
            assert answer.status_code == 201, answer.text
            added.append(answer.json()["id"])
        workflow_id = publish_workflow(client, case.workflow)

        simulated = client.post(
            f"/api/v1/workflows/{workflow_id}/simulate", json={"apps": case.apps, "inputs": case.inputs}
        )
        assert simulated.status_code == 200, simulated.text
        problems = []
        if (diff := difference(case, _comparable(simulated.json()))) is not None:
            problems.append(f"the server's simulate endpoint differs from trace.json:\n{diff}")

        emulator: Any = start_emulator(case.app_model())
        state_dir = tmp_path / "bridge"
        try:
            device = pair_in_state_dir(golden_server, emulator.serial, state_dir)
            run_id = trigger(client, workflow_id, device.id, case.inputs)
            agent = start_agent(golden_server, emulator.serial, state_dir)
            try:
                run = poll_run(
                    client,
                    run_id,
                    lambda run: run["status"] in ENDED,
                    deadline=time.monotonic() + 60,
                    what="the run on the emulator did not end",
                )
            finally:
                agent.terminate()
                agent.communicate(timeout=30)
        finally:
            emulator.stop()
        if (diff := difference(case, _comparable(run))) is not None:
            problems.append(
                f"the bridge on the emulator (through the server) differs from trace.json:\n{diff}"
            )
        assert not problems, "\n\n".join(problems)
    finally:
        for entry_id in added:
            client.delete(f"/api/v1/denylist/{entry_id}")
        client.close()
