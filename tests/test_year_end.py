"""Before the year ends the server warns that next year's official calendar is missing: a
supervision event for the supervisors (once), a log line and the health check's detail, each
naming `onewindow load-holidays`. Today is 2026-12-05 and the package's calendar ends with 2026."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette

from approval.core.calendar import load_holiday_year, next_year_warning
from approval.oversight.supervision import SupervisionSettings, supervise
from server.health import health_routes
from storage.models import CalendarDay, CalendarYear, SupervisionEvent
from tests.supervision_support import HOLIDAYS_2027, at

pytestmark = pytest.mark.usefixtures("catalog")


async def _forget_2027() -> None:
    await CalendarDay.filter(day__gte=at("2027-01-01").date()).delete()
    await CalendarYear.filter(year__gte=2027).delete()


async def test_from_november_the_supervisors_are_warned_once(caplog) -> None:
    await _forget_2027()
    try:
        assert await next_year_warning(today=at("2026-10-31").date()) is None
        with caplog.at_level(logging.WARNING, logger="onewindow.supervision"):
            fired = await supervise(now=at("2026-12-05"), settings=SupervisionSettings())
        [event] = [e for e in fired if e.kind == "calendar_ahead"]
        assert event.key == "calendar:2027:ahead" and event.level.value == "yellow"
        assert "onewindow load-holidays" in event.message and "2027" in event.message
        assert event.department_id is None  # for the supervisors
        assert any("onewindow load-holidays FILE" in r.getMessage() for r in caplog.records)
        again = await supervise(now=at("2026-12-06"), settings=SupervisionSettings())
        assert [e for e in again if e.kind == "calendar_ahead"] == []
        await load_holiday_year(HOLIDAYS_2027)
        assert await next_year_warning(today=at("2026-12-31").date()) is None
    finally:
        await SupervisionEvent.filter(kind="calendar_ahead").delete()
        await _forget_2027()


async def test_the_health_check_details_the_warning_without_failing(database: str) -> None:
    await _forget_2027()
    app = Starlette(routes=health_routes(lambda: at("2026-12-05")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        plain = (await http.get("/healthz")).json()
        detail = (await http.get("/healthz?detail=1")).json()
    assert "warnings" not in plain
    [warning] = detail["warnings"]
    assert "2027" in warning and "onewindow load-holidays" in warning
    assert detail["database"] == "ok"  # a warning, not a reason to take the instance out
