"""The Analytics page: a period of 7, 14, 30 or 90 days — runs a day, success rate and duration
trends, top workflows, device utilisation, the steps that fail most (data of GET /api/v1/stats)."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from server.dashboard import charts
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.session import User
from server.db import SessionDep
from server.errors import FieldProblem, ValidationFailed
from server.runs.stats import compute_stats

router = dashboard_router()
PERIODS = (7, 14, 30, 90)
HALF_WIDTH = 420  # the trend charts sit two abreast


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(request: Request, db: SessionDep, user: User, days: int = 14) -> Response:
    """The account's runs over the period, as charts and tables."""
    if days not in PERIODS:
        raise ValidationFailed(
            [FieldProblem("query:days", f"{days} days is not a period here", "choose 7, 14, 30 or 90")],
            message=f"{days} days is not a period here: choose 7, 14, 30 or 90",
        )
    stats = compute_stats(db, user.account.id, days)
    first = date.fromisoformat(stats["from"])
    return page(
        request,
        "analytics.html",
        user,
        days=days,
        periods=PERIODS,
        stats=stats,
        runs_chart=charts.runs_per_day(stats["perDay"], first, days),
        rate_chart=charts.line(stats["perDay"], first, days, "successRate", percent=True, width=HALF_WIDTH),
        duration_chart=charts.line(stats["perDay"], first, days, "averageDurationMs", width=HALF_WIDTH),
        percent=lambda rate: "—" if rate is None else f"{rate * 100:.0f}%",
    )
