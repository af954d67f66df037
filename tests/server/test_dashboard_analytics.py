"""The Analytics page's charts and figures (the browser test shows them drawn): axes with whole-number
ticks, bars proportional to their counts, trend lines broken by days without ended runs, periods."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from server.dashboard import charts
from server.db import utcnow
from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.test_dashboard_support import report, sign_in


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (450, 500), (0.37, 0.5)]
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == ceiling


def test_bars_are_proportional_and_the_count_axis_has_whole_numbers() -> None:
    first = date(2026, 11, 1)
    per_day = [
        {"day": "2026-11-01", "counts": {"success": 3, "failed": 1}},
        {"day": "2026-11-03", "counts": {"success": 1, "running": 1}},
    ]
    chart = charts.runs_per_day(per_day, first, 3)
    assert [bar["total"] for bar in chart["bars"]] == [4, 0, 2]
    assert [tick.label for tick in chart["y_ticks"]] == ["0", "1", "2", "3", "4", "5"]
    first_bar = {s["class"]: s["h"] for s in chart["bars"][0]["segments"]}
    assert first_bar["ok"] == pytest.approx(3 * first_bar["bad"])
    assert chart["bars"][1]["segments"] == []
    assert [label for _, label in chart["legend"]] == [
        "succeeded",
        "failed or timed out",
        "cancelled or not ended",
    ]

    rates = [{"day": "2026-11-01", "successRate": 0.75}, {"day": "2026-11-03", "successRate": 0.5}]
    trend = charts.line(rates, first, 3, "successRate", percent=True)
    assert len(trend["paths"]) == 2  # the day without ended runs breaks the line
    assert [p["text"] for p in trend["points"]] == ["75%", "50%"]
    assert trend["y_ticks"][-1].label == "100%"


def test_the_page_shows_the_period(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id, name="Till 1")
    workflow = create_workflow(db, account.id, name="Capture order")
    now = utcnow()
    for days_ago in (0, 3, 20):
        report(
            client,
            device,
            workflow,
            str(uuid.uuid4()),
            status="success",
            steps=3,
            started=now - timedelta(days=days_ago),
        )
    sign_in(client, account.token)
    page = client.get("/analytics")  # 14 days by default
    assert page.status_code == 200
    assert re.search(r'id="total-runs">2<', page.text)
    assert page.text.count('class="bar"') == 14
    assert "Till 1" in page.text
    assert "Capture order" in page.text
    month = client.get("/analytics", params={"days": 30}).text
    assert re.search(r'id="total-runs">3<', month)
    refused = client.get("/analytics", params={"days": 10})
    assert refused.status_code == 422
    assert "choose 7, 14, 30 or 90" in refused.text
