"""A trace event's stored JSON text (`TraceEventIn.stored_json`) is its `stored_form()`: the same
keys in the same order, the same values, compact; text the serializer cannot encode takes the
slow way instead of failing the report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.runs.schemas import RunReportIn, TraceEventIn

EVENT: dict[str, Any] = {
    "seq": 3,
    "nodeId": "tap-buy",
    "kind": "action.tapByText",
    "outcome": "failed",
    "startedAt": "2026-11-23T10:00:00.100Z",
    "durationMs": 84,
    "attempts": 2,
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"message": 'no such text: Kaufen ✓ 😀 \u2028 "q" \\ <>&', "nodeId": "é"},
        {"startedAt": "2026-11-23T12:00:00+02:00"},
        {"output": {"items": [1, 2.5, None, True, {"deep": "x"}], "big": 10**30, "tab": "\t\n"}},
    ],
)
def test_stored_json_is_the_stored_form(changes: dict[str, Any]) -> None:
    event = TraceEventIn.model_validate({**EVENT, **changes})
    text = event.stored_json()
    assert json.loads(text) == event.stored_form()
    assert text == json.dumps(event.stored_form(), separators=(",", ":"), ensure_ascii=False)


def test_a_lone_surrogate_takes_the_slow_way() -> None:
    event = TraceEventIn.model_validate({**EVENT, "output": {"text": "half \ud800 a pair"}})
    text = event.stored_json()
    assert text == json.dumps(event.stored_form(), separators=(",", ":"))
    assert "\\ud800" in text


@pytest.mark.parametrize(
    ("started_at", "kept"),
    [
        ("2026-11-23T10:00:00.100Z", "2026-11-23T10:00:00.100Z"),  # the engine's form, kept as sent
        ("2026-11-23T12:00:00+02:00", "2026-11-23T10:00:00.000Z"),  # another form: made canonical
        ("2026-11-23T10:00:00.1Z", "2026-11-23T10:00:00.100Z"),
        # Any Unicode digit fits the canonical pattern's \d: such a time is kept as sent, as it always was.
        ("٢٠٢٦-11-23T10:00:00.100Z", "٢٠٢٦-11-23T10:00:00.100Z"),
    ],
)
def test_the_start_time_is_kept_in_its_canonical_text(started_at: str, kept: str) -> None:
    assert TraceEventIn.model_validate({**EVENT, "startedAt": started_at}).started_at == kept


def _run_with(events: list[dict[str, Any]]) -> RunReportIn:
    return RunReportIn.model_validate(
        {
            "id": "0b9d2a3e-1234-4c5d-9e87-2f3e456a7b8c",
            "workflowId": "w",
            "workflowVersionId": "v",
            "status": "running",
            "trace": [{**EVENT, "seq": seq, **event} for seq, event in enumerate(events, start=1)],
        }
    )


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{}],
        [{}, {"message": 'Kaufen ✓ 😀 \u2028 "q" \\ <>&'}, {"output": {"rows": [{"seq": 1}, {"seq": 2}]}}],
        [{}, {"output": {"text": "half \ud800 a pair"}}],  # the serializer refuses it: the slow way
    ],
)
def test_the_trace_pairs_are_each_events_seq_and_stored_json(events: list[dict[str, Any]]) -> None:
    run = _run_with(events)
    expected = "[" + ",".join(f"[{event.seq},{event.stored_json()}]" for event in run.trace) + "]"
    assert run.trace_pairs_json() == expected
    assert [seq for seq, _ in json.loads(expected)] == list(range(1, len(events) + 1))
