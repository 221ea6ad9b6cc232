"""The stored holiday table: package years, admin years, and the calendar built from them."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from approval.core.calendar import (
    calendar_years,
    load_holiday_year,
    load_package_calendar,
    working_calendar,
)
from approval.core.workdays import CalendarUnknownError, package_calendar
from storage.enums import DayKind
from storage.models import CalendarDay, CalendarYear

pytestmark = pytest.mark.usefixtures("clean_catalog")

PACKAGE_YEARS = list(range(2004, 2027))

HOLIDAYS_2027 = """\
# 2027 (an example: the State Council has not published it)
year,2027
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-13,workday,春节调休
"""

ADMIN_2025 = """\
year,2025
2025-10-01,holiday,国庆节
2025-10-02,holiday,国庆节
2025-10-03,holiday,国庆节
"""


async def test_package_load_stores_every_known_year() -> None:
    assert await load_package_calendar() == len(PACKAGE_YEARS)

    assert await calendar_years() == [(year, "chinese-calendar") for year in PACKAGE_YEARS]
    national_day = await CalendarDay.get(day=date(2025, 10, 1))
    assert (national_day.kind, national_day.name) == (DayKind.HOLIDAY, "国庆节")
    adjusted = await CalendarDay.get(day=date(2025, 9, 28))  # a Sunday worked (调休)
    assert adjusted.kind is DayKind.WORKDAY
    assert adjusted.name == "国庆节"
    assert await CalendarDay.filter(name__in=["National Day", "Spring Festival"]).count() == 0


async def test_package_load_is_idempotent() -> None:
    await load_package_calendar()
    days = await CalendarDay.all().count()
    logger = logging.getLogger("tortoise.db_client")
    writes: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage().lstrip().upper()
            if message.startswith(("INSERT", "UPDATE", "DELETE")):
                writes.append(message)

    handler, level = Handler(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        assert await load_package_calendar() == len(PACKAGE_YEARS)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert writes == []
    assert await CalendarDay.all().count() == days


async def test_package_load_repairs_a_tampered_day() -> None:
    await load_package_calendar()
    await CalendarDay.filter(day=date(2025, 10, 1)).delete()
    await CalendarDay.create(day=date(2025, 10, 13), kind=DayKind.HOLIDAY, name="bogus")

    await load_package_calendar()

    assert await CalendarDay.filter(day=date(2025, 10, 1)).exists()
    assert not await CalendarDay.filter(day=date(2025, 10, 13)).exists()


async def test_national_day_2025_deadline_matches_the_pure_calendar() -> None:
    await load_package_calendar()
    pure = package_calendar()

    for calendar in (await working_calendar(), await working_calendar(years=[2025])):
        for start, days in (
            (date(2025, 9, 30), 3),
            (date(2025, 9, 26), 10),
            (date(2025, 12, 25), 8),
        ):
            assert calendar.add_working_days(start, days) == pure.add_working_days(start, days)
        assert calendar.working_days_between(date(2025, 9, 1), date(2025, 11, 1)) == (
            pure.working_days_between(date(2025, 9, 1), date(2025, 11, 1))
        )
    # 10-01..10-08 are off, 09-28 and 10-11 are worked
    assert (await working_calendar()).add_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)


async def test_years_filter_reads_only_those_years_and_the_next() -> None:
    await load_package_calendar()

    calendar = await working_calendar(years=[2024])

    assert calendar.known_years == {2024, 2025}
    assert all(day.year in (2024, 2025) for day in calendar.holidays | calendar.workdays)
    with pytest.raises(CalendarUnknownError):
        calendar.is_working_day(date(2023, 6, 1))


async def test_2027_is_unknown_until_an_admin_loads_it() -> None:
    await load_package_calendar()
    calendar = await working_calendar()
    with pytest.raises(CalendarUnknownError) as caught:
        calendar.add_working_days(date(2026, 12, 28), 10)
    assert caught.value.year == 2027
    with pytest.raises(CalendarUnknownError):
        (await working_calendar(years=[2026])).add_working_days(date(2027, 3, 1), 1)

    assert await load_holiday_year(HOLIDAYS_2027) == 2027

    assert (2027, "admin") in await calendar_years()
    for calendar in (await working_calendar(), await working_calendar(years=[2026])):
        # 12-31 (Fri), 2027-01-01 off; 01-04 (Mon) onward: 12-29, 12-30, 12-31, 01-04, ...
        assert calendar.add_working_days(date(2026, 12, 28), 3) == date(2026, 12, 31)
        assert calendar.add_working_days(date(2026, 12, 28), 4) == date(2027, 1, 4)
        # Spring Festival 2027: 02-08..02-12 off, Saturday 02-13 worked
        assert calendar.add_working_days(date(2027, 2, 5), 1) == date(2027, 2, 13)


async def test_reloading_an_admin_year_replaces_its_days() -> None:
    await load_holiday_year(HOLIDAYS_2027)
    shorter = "year,2027\n2027-01-01,holiday,元旦\n"

    await load_holiday_year(shorter)

    days = await CalendarDay.filter(day__gte=date(2027, 1, 1)).values_list("day", flat=True)
    assert days == [date(2027, 1, 1)]
    assert await calendar_years() == [(2027, "admin")]


async def test_an_admin_year_survives_the_package_load() -> None:
    await load_package_calendar()
    assert await load_holiday_year(ADMIN_2025) == 2025

    assert await load_package_calendar() == len(PACKAGE_YEARS) - 1

    assert (2025, "admin") in await calendar_years()
    stored = await CalendarDay.filter(
        day__gte=date(2025, 1, 1), day__lte=date(2025, 12, 31)
    ).values_list("day", flat=True)
    assert sorted(stored) == [date(2025, 10, d) for d in (1, 2, 3)]
    # 2024 and 2026 still come from the package
    assert await CalendarDay.filter(day=date(2024, 10, 1)).exists()
    assert await CalendarDay.filter(day=date(2026, 10, 1)).exists()
    calendar = await working_calendar(years=[2025])
    assert calendar.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 6)


@pytest.mark.parametrize(
    "text",
    [
        "2027-01-01,holiday,元旦\n",  # no year line
        "year,2027\n2027-01-01,holiday,元旦\n2027-13-01,holiday,x\n",  # bad date
        "year,2027\n2027-01-02,workday,调休\n",  # no holiday at all
    ],
)
async def test_a_broken_holiday_file_stores_nothing(text: str) -> None:
    await load_package_calendar()
    before = await CalendarDay.all().count()

    with pytest.raises(ValueError, match="Holiday file line"):
        await load_holiday_year(text)

    assert await CalendarDay.all().count() == before
    assert await CalendarYear.filter(year=2027).count() == 0
    assert await calendar_years() == [(year, "chinese-calendar") for year in PACKAGE_YEARS]
