"""Approvals answered by people: `ServerApprovals` against a real server process, and a run on the
emulator that waits at an approval node until someone approves it through the account API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_bridge.approvals import ServerApprovals
from device_bridge.outbox import Outbox
from device_bridge.reporting import ProgressReporter
from device_bridge.server_api import DeviceApi
from interpreter.approvals import ApprovalDecision, ApprovalResponse
from interpreter.clock import RealClock
from interpreter.trace import RunStatus
from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    free_port,
    pair_in_state_dir,
    poll_run,
    publish_workflow,
    start_agent,
    trigger,
)
from tests.server.factories import DeviceFixture

SHOP = "com.example.shop"
POLL_S = 0.05

APPROVAL_WORKFLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Ship after approval",
    "targetPackages": [SHOP],
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
         "next": "ask"},
        {"id": "ask", "kind": "control.approval", "params": {"message": "Ship order A-1?", "timeoutS": 120},
         "next": {"approved": "done", "rejected": "stop"}},
        {"id": "done", "kind": "action.wait", "params": {"ms": 10}},
        {"id": "stop", "kind": "control.fail", "params": {"message": "not approved"}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def workflow_id(server: ServerProcess) -> str:
    with server.client() as client:
        return publish_workflow(client, APPROVAL_WORKFLOW)


class Claimed:
    """A run claimed by a fresh device of the account, with that device's API."""

    def __init__(self, server: ServerProcess, workflow_id: str) -> None:
        self.server = server
        self.device: DeviceFixture = server.device()
        self.account = server.client()
        self.http = httpx.Client(timeout=5)
        self.api = DeviceApi(self.http, server.url, self.device.token)
        self.run_id = trigger(self.account, workflow_id, self.device.id)
        claimed = self.api.claim()
        assert claimed is not None
        assert claimed.run_id == self.run_id

    def close(self) -> None:
        self.account.close()
        self.http.close()

    def ask(
        self, pool: ThreadPoolExecutor, gate: ServerApprovals, node_id: str = "ask", timeout_s: float = 30
    ) -> Future[ApprovalResponse]:
        return pool.submit(
            gate.request,
            run_id=self.run_id,
            node_id=node_id,
            message="Ship order A-1?",
            approvers=[],
            timeout_s=timeout_s,
            clock=RealClock(),
        )

    def pending(self, timeout_s: float = 15) -> dict[str, Any]:
        """The run's pending approval, once the gate has asked for it."""
        deadline = time.monotonic() + timeout_s
        while True:
            listed = self.account.get("/api/v1/approvals", params={"status": "pending", "runId": self.run_id})
            assert listed.status_code == 200, listed.text
            if listed.json():
                found: dict[str, Any] = listed.json()[0]
                return found
            assert time.monotonic() < deadline, "the gate never asked the server"
            time.sleep(POLL_S)


@pytest.fixture
def claimed(server: ServerProcess, workflow_id: str) -> Iterator[Claimed]:
    run = Claimed(server, workflow_id)
    try:
        yield run
    finally:
        run.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def _gate(claimed: Claimed, should_cancel: Callable[[], bool] | None = None) -> ServerApprovals:
    return ServerApprovals(claimed.api, should_cancel=should_cancel, poll_interval_s=POLL_S)


def test_an_approval_given_through_the_server_lets_the_run_go_on(
    server: ServerProcess, claimed: Claimed, pool: ThreadPoolExecutor
) -> None:
    gate = _gate(claimed)
    answer = claimed.ask(pool, gate)
    approval = claimed.pending()
    assert (approval["nodeId"], approval["visit"], approval["message"]) == ("ask", 1, "Ship order A-1?")
    decided = claimed.account.post(
        f"/api/v1/approvals/{approval['id']}/decision", json={"decision": "approve", "note": "go"}
    )
    assert decided.status_code == 200, decided.text
    # Answered through the API: the run's trace says so (respondedVia).
    assert answer.result(timeout=15) == ApprovalResponse(
        ApprovalDecision.APPROVED, server.account.email, "go", "api"
    )

    # the same node reached again (a loop) asks again: visit 2, a new approval
    again = claimed.ask(pool, gate)
    second = claimed.pending()
    assert (second["visit"], second["id"] != approval["id"]) == (2, True)
    claimed.account.post(f"/api/v1/approvals/{second['id']}/decision", json={"decision": "reject"})
    assert again.result(timeout=15).decision is ApprovalDecision.REJECTED


def test_the_run_is_told_waiting_only_once_the_server_has_its_approval(
    claimed: Claimed, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    """The engine says "waiting" before it asks; a person who sees the run waiting must find the
    approval to answer, so the status goes out when the server has the approval, not before."""
    outbox = Outbox(tmp_path / "outbox.db")
    reporter = ProgressReporter(outbox, claimed.device.id, {"id": claimed.run_id}, interval_s=60)
    seen_at_asked: list[list[Any]] = []

    def asked() -> None:
        listed = claimed.account.get(
            "/api/v1/approvals", params={"status": "pending", "runId": claimed.run_id}
        )
        seen_at_asked.append([a["nodeId"] for a in listed.json()])
        reporter.approval_asked()

    def queued_status() -> str | None:
        """The status of the run's progress waiting in the outbox (one row per run, replaced)."""
        queued = outbox.reports()
        return queued[-1].run_status if queued else None

    try:
        reporter.on_status(RunStatus.WAITING_FOR_APPROVAL)
        assert queued_status() is None, "waiting was queued before the approval was asked"
        gate = ServerApprovals(claimed.api, poll_interval_s=POLL_S, on_asked=asked)
        answer = claimed.ask(pool, gate)
        approval = claimed.pending()
        deadline = time.monotonic() + 15
        while not seen_at_asked and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert seen_at_asked == [["ask"]], "told waiting before the server listed the approval"
        assert queued_status() == "waiting_for_approval"
        claimed.account.post(f"/api/v1/approvals/{approval['id']}/decision", json={"decision": "approve"})
        assert answer.result(timeout=15).decision is ApprovalDecision.APPROVED
        reporter.on_status(RunStatus.RUNNING)
        assert queued_status() == "running"

        # Given up before the server heard of it (a cancel): the run never says it waits.
        reporter.on_status(RunStatus.WAITING_FOR_APPROVAL)
        assert queued_status() == "running"
        reporter.on_status(RunStatus.RUNNING)
        reporter.approval_asked()
        assert queued_status() == "running"
    finally:
        reporter.stop()
        outbox.close()


def test_a_rejection_is_rejected_with_who_and_why(
    server: ServerProcess, claimed: Claimed, pool: ThreadPoolExecutor
) -> None:
    answer = claimed.ask(pool, _gate(claimed))
    approval = claimed.pending()
    claimed.account.post(
        f"/api/v1/approvals/{approval['id']}/decision", json={"decision": "reject", "note": "not today"}
    )
    assert answer.result(timeout=15) == ApprovalResponse(
        ApprovalDecision.REJECTED, server.account.email, "not today", "api"
    )


def test_nobody_answers_and_the_approval_times_out(claimed: Claimed, pool: ThreadPoolExecutor) -> None:
    clock = RealClock()
    started = clock.monotonic()
    response = claimed.ask(pool, _gate(claimed), timeout_s=0.5).result(timeout=15)
    assert response.decision is ApprovalDecision.TIMED_OUT
    assert clock.monotonic() - started >= 0.5
    listed = claimed.account.get("/api/v1/approvals", params={"runId": claimed.run_id}).json()
    assert [a["status"] for a in listed] == ["timed_out"]


def test_timeout_0_waits_past_any_limit_until_someone_answers(
    server: ServerProcess, claimed: Claimed, pool: ThreadPoolExecutor
) -> None:
    answer = claimed.ask(pool, _gate(claimed), timeout_s=0)
    approval = claimed.pending()
    assert approval["expiresAt"] is None
    time.sleep(POLL_S * 3)  # several polls: still waiting, not timed out
    assert not answer.done()
    claimed.account.post(f"/api/v1/approvals/{approval['id']}/decision", json={"decision": "approve"})
    assert answer.result(timeout=15) == ApprovalResponse(
        ApprovalDecision.APPROVED, server.account.email, None, "api"
    )


def test_cancelling_the_run_on_the_server_rejects_the_approval(
    claimed: Claimed, pool: ThreadPoolExecutor
) -> None:
    answer = claimed.ask(pool, _gate(claimed))
    claimed.pending()
    asked = claimed.account.post(f"/api/v1/runs/{claimed.run_id}/cancel")
    assert asked.status_code == 200, asked.text
    assert answer.result(timeout=15) == ApprovalResponse(
        ApprovalDecision.REJECTED, None, "cancelled", "server"
    )


def test_a_local_cancel_rejects_the_approval(claimed: Claimed, pool: ThreadPoolExecutor) -> None:
    cancel = threading.Event()
    answer = claimed.ask(pool, _gate(claimed, should_cancel=cancel.is_set))
    claimed.pending()
    cancel.set()
    assert answer.result(timeout=15) == ApprovalResponse(
        ApprovalDecision.REJECTED, None, "cancelled", "server"
    )


def test_an_unreachable_server_is_retried_until_the_timeout(pool: ThreadPoolExecutor) -> None:
    with httpx.Client(timeout=1) as http:
        api = DeviceApi(http, f"http://127.0.0.1:{free_port()}", "pf_dev_nobody")
        gate = ServerApprovals(api, poll_interval_s=POLL_S)
        response = gate.request(
            run_id="r", node_id="ask", message="?", approvers=[], timeout_s=0.6, clock=RealClock()
        )
    assert response.decision is ApprovalDecision.TIMED_OUT
    assert gate.backoff.failures >= 1  # it did try again


@pytest.mark.emulator
def test_a_run_on_the_phone_waits_for_approval_and_goes_on_when_approved(
    server: ServerProcess, workflow_id: str, sample_emulator: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = pair_in_state_dir(server, serial, state_dir)
    client = server.client()
    run_id = trigger(client, workflow_id, device.id)
    agent = start_agent(server, serial, state_dir, PHONEFLOW_BRIDGE_APPROVAL_POLL_INTERVAL_S="0.1")
    try:
        deadline = time.monotonic() + 60
        run = poll_run(
            client,
            run_id,
            lambda run: run["status"] == "waiting_for_approval",
            deadline=deadline,
            what="the run never waited for approval",
            meanwhile=lambda run: run["status"] in ("queued", "running"),
        )
        pending = client.get("/api/v1/approvals", params={"status": "pending", "runId": run_id}).json()
        assert [(a["nodeId"], a["message"]) for a in pending] == [("ask", "Ship order A-1?")]
        decided = client.post(
            f"/api/v1/approvals/{pending[0]['id']}/decision", json={"decision": "approve", "note": "ship it"}
        )
        assert decided.status_code == 200, decided.text
        run = poll_run(
            client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="the run did not end"
        )
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert run["status"] == "success", (run, err)
    assert [(e["nodeId"], e["outcome"]) for e in run["trace"]] == [
        ("open", "ok"),
        ("ask", "ok"),
        ("done", "ok"),
    ]
    assert run["trace"][1]["output"] == {
        "respondedBy": server.account.email,
        "responseNote": "ship it",
        "respondedVia": "api",
    }
