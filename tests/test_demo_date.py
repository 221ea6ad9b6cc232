"""The demo is dated inside the known holiday calendar, never beyond it."""

from datetime import datetime
from zoneinfo import ZoneInfo

from approval.demo import demo_date

CHINA = ZoneInfo("Asia/Shanghai")


async def test_demo_is_dated_today_when_the_calendar_covers_its_deadlines(catalog):
    now = datetime(2026, 3, 2, 9, tzinfo=CHINA)
    assert await demo_date(now) == now


async def test_demo_is_dated_back_near_an_unknown_year(catalog):
    late = datetime(2026, 11, 28, 9, tzinfo=CHINA)
    assert await demo_date(late) == datetime(2026, 10, 15, 10, tzinfo=CHINA)
    next_year = datetime(2027, 5, 1, 9, tzinfo=CHINA)
    assert await demo_date(next_year) == datetime(2026, 10, 15, 10, tzinfo=CHINA)
