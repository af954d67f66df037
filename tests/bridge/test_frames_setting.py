"""The workflow's `frames` setting reaches the bridge with the claimed run, and the bridge keeps the
lesser of it and its own `PHONEFLOW_BRIDGE_FRAMES` (the bridge's setting is the upper bound)."""

from __future__ import annotations

import copy

import pytest

from device_bridge.frames import FrameMode, FramePolicy
from tests.bridge.server_process import ServerProcess, publish_workflow, trigger
from tests.bridge.test_frames import FRAMES, SIGN_IN, Bridge, bridge  # noqa: F401  (the fixture)


@pytest.mark.parametrize(
    ("bridge_mode", "requested", "kept"),
    [
        ("every", "failures", "failures"),
        ("every", "off", "off"),
        ("failures", "every", "failures"),  # a workflow cannot raise the bridge's setting
        ("off", "every", "off"),
        ("failures", None, "failures"),  # no setting: the bridge's own
        ("every", "sometimes", "every"),  # not a mode (an older server, a hand-made claim): ignored
        ("every", ["off"], "every"),
    ],
)
def test_the_run_lowers_the_bridges_policy_never_raises_it(
    bridge_mode: str, requested: object, kept: str
) -> None:
    policy = FramePolicy(FrameMode(bridge_mode), width=200)
    lowered = policy.for_run(requested)
    assert lowered.mode == FrameMode(kept)
    assert lowered.width == 200


@pytest.mark.emulator
def test_a_workflows_frames_setting_is_sent_with_the_claim_and_honoured(
    server: ServerProcess,
    bridge: Bridge,  # noqa: F811
) -> None:
    with server.client() as client:
        quiet = copy.deepcopy(SIGN_IN) | {"name": "Sign in, frames on failures", "frames": "failures"}
        workflow_id = publish_workflow(client, quiet)
        run_id = trigger(client, workflow_id, bridge.device_id)
        claimed = bridge.worker.api.claim()
        assert claimed is not None
        assert (claimed.run_id, claimed.frames) == (run_id, "failures")
        result = bridge.worker.execute(claimed)
        assert result is not None
        assert result.status.value == "success"
        # No step failed: no frame (the phone's own recording, video.mp4, follows "off" only).
        assert [
            a.name for a in bridge.outbox.artifacts() if a.run_id == run_id and a.name != "video.mp4"
        ] == []

        every = copy.deepcopy(SIGN_IN) | {"name": "Sign in, every frame", "frames": "every"}
        every_id = publish_workflow(client, every)
        run_id = bridge.run(client, every_id)
        kept = sorted(a.name for a in bridge.outbox.artifacts() if a.run_id == run_id)
        assert kept == [*FRAMES, "video.mp4"]

        bridge.worker.settings = bridge.settings.model_copy(update={"frames": "off"})
        run_id = bridge.run(client, every_id)  # the bridge's "off" wins over the workflow's "every"
        assert [a.name for a in bridge.outbox.artifacts() if a.run_id == run_id] == []
