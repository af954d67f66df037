"""The quick scan before a body is parsed (`safe_json.needs_check`): it may send a harmless body to the
full check, never wave a refusable one through."""

from __future__ import annotations

import json
import uuid

import pytest

from interpreter import safe_json


@pytest.mark.parametrize(
    "text",
    [
        '{"k": 1e400}',
        '{"k": 1.5E+309, "j": 1}',
        '{"k": [2E400]}',
        '{"k": [1e0400], "j": 2}',
        '{"k": -1E+400 }',
        "1e400",
        '{"k": 1e400\n}',
        '{"k": 92233720368547758070}',
        '{"k": "\\u0000"}',
        '{"k": "\\ud800"}',
        '{"k": NaN}',
        '{"k": -Infinity}',
        "[" * 80 + "]" * 80,
    ],
)
def test_refusable_bodies_are_always_checked(text: str) -> None:
    assert safe_json.needs_check(text.encode())
    with pytest.raises(ValueError, match="."):
        safe_json.loads(text)


def test_ids_whose_hex_reads_like_an_exponent_skip_the_parse() -> None:
    # "3e123" inside a UUID is no number: before the exponent rule looked at what surrounds it,
    # about half of the runs.report bodies were parsed and walked a second time for nothing.
    ids = ["0b9d2a3e-1234-4c5d-9e87-2f3e456a7b8c", "aa3e123f-0000-4000-8000-00000000e999"]
    body = json.dumps({"runs": [{"id": i, "trace": [{"seq": 1, "ms": 84}]} for i in ids]}).encode()
    assert not safe_json.needs_check(body)
    misses = sum(
        safe_json.needs_check(json.dumps({"id": str(uuid.UUID(int=n * 7919 * 10**30 + n))}).encode())
        for n in range(1, 300)
    )
    assert misses == 0
