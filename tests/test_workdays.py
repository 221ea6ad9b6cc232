from datetime import date, timedelta

import chinese_calendar
import pytest

from approval.core.workdays import (
    HOLIDAY_NAMES_ZH,
    CalendarUnknownError,
    WorkingCalendar,
    build_calendar,
    package_calendar,
    package_calendar_entries,
    package_known_years,
    parse_holiday_file,
)

FILE_2027 = """\
# 2027 official calendar (test data)
year,2027

2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,workday,春节调休
"""


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return package_calendar()


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def refusal(body: str) -> str:
    with pytest.raises(ValueError) as info:
        parse_holiday_file(body)
    return str(info.value)


# --- package data ----------------------------------------------------------------------


def test_package_known_years_match_package_range() -> None:
    years = package_known_years()
    assert years[0] == 2004
    assert years == list(range(2004, years[-1] + 1))
    assert years[-1] >= 2026
    chinese_calendar.is_workday(date(years[-1], 12, 31))
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(years[-1] + 1, 1, 1))


def test_package_entries_sorted_and_named() -> None:
    entries = package_calendar_entries()
    assert entries == sorted(entries)
    assert (date(2025, 10, 1), "holiday", "National Day") in entries
    assert (date(2025, 9, 28), "workday", "National Day") in entries
    assert {kind for _, kind, _ in entries} == {"holiday", "workday"}
    assert {name for _, _, name in entries} <= HOLIDAY_NAMES_ZH.keys()
    assert HOLIDAY_NAMES_ZH["Mid-autumn Festival"] == "中秋节"


def test_calendar_agrees_with_package(calendar: WorkingCalendar) -> None:
    for day in days(date(2024, 12, 1), date(2026, 12, 31)):
        assert calendar.is_working_day(day) == chinese_calendar.is_workday(day), day


# --- National Day 2025 -----------------------------------------------------------------


def test_national_day_2025(calendar: WorkingCalendar) -> None:
    assert not any(calendar.is_working_day(d) for d in days(date(2025, 10, 1), date(2025, 10, 8)))
    assert calendar.is_working_day(date(2025, 9, 28))  # Sunday, adjusted workday
    assert calendar.is_working_day(date(2025, 10, 11))  # Saturday, adjusted workday
    assert not calendar.is_working_day(date(2025, 10, 12))  # plain Sunday
    assert calendar.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    # Thu 10-09, Fri 10-10, Sat 10-11 (adjusted), Mon 10-13
    assert calendar.add_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)
    assert calendar.add_working_days(date(2025, 9, 30), 4) == date(2025, 10, 13)
    # Fri 9-26 -> Sun 9-28 (adjusted), Mon 9-29, Tue 9-30, then the holiday
    assert calendar.add_working_days(date(2025, 9, 26), 1) == date(2025, 9, 28)
    assert calendar.add_working_days(date(2025, 9, 26), 4) == date(2025, 10, 9)


# --- Spring Festival 2026 --------------------------------------------------------------


def test_spring_festival_2026(calendar: WorkingCalendar) -> None:
    # 2026-02-15 (Sun) .. 02-23 (Mon) off; Sat 02-14 and Sat 02-28 worked.
    assert not any(calendar.is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert calendar.is_working_day(date(2026, 2, 14))
    assert calendar.is_working_day(date(2026, 2, 28))
    assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert calendar.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    # Tue 02-24 .. Fri 02-27 are 4, Sat 02-28 is the 5th
    assert calendar.add_working_days(date(2026, 2, 23), 5) == date(2026, 2, 28)
    assert calendar.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6


# --- basics ----------------------------------------------------------------------------


def test_weekends_and_weekdays(calendar: WorkingCalendar) -> None:
    assert calendar.is_working_day(date(2025, 3, 12))  # Wednesday
    assert not calendar.is_working_day(date(2025, 3, 15))  # Saturday
    assert not calendar.is_working_day(date(2025, 3, 16))  # Sunday
    assert calendar.knows(2004) and calendar.knows(2026)
    assert not calendar.knows(2003)


def test_zero_days_returns_start(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_days(date(2025, 10, 1), 0) == date(2025, 10, 1)
    with pytest.raises(ValueError):
        calendar.add_working_days(date(2025, 10, 1), -1)


def test_working_days_between(calendar: WorkingCalendar) -> None:
    start = date(2025, 9, 30)
    assert calendar.working_days_between(start, start) == 0
    assert calendar.working_days_between(start, date(2025, 9, 1)) == 0
    assert calendar.working_days_between(start, date(2025, 10, 8)) == 0
    assert calendar.working_days_between(start, date(2025, 10, 9)) == 1
    assert calendar.working_days_between(date(2025, 3, 10), date(2025, 3, 17)) == 5
    for n in (0, 1, 5, 20, 60):
        end = calendar.add_working_days(start, n)
        assert calendar.working_days_between(start, end) == n


def test_calendar_is_immutable(calendar: WorkingCalendar) -> None:
    with pytest.raises(AttributeError):
        calendar.holidays = frozenset()  # type: ignore[misc]
    with pytest.raises(ValueError, match="both"):
        WorkingCalendar(
            known_years=[2025], holidays=[date(2025, 1, 1)], workdays=[date(2025, 1, 1)]
        )


# --- unknown years ---------------------------------------------------------------------


def test_unknown_year_is_never_guessed() -> None:
    calendar = build_calendar(known_years=[2026], entries=package_calendar_entries())
    with pytest.raises(CalendarUnknownError) as info:
        calendar.is_working_day(date(2025, 6, 3))
    assert info.value.year == 2025
    assert "onewindow load-holidays" in str(info.value)
    with pytest.raises(CalendarUnknownError):
        calendar.working_days_between(date(2026, 12, 30), date(2027, 1, 5))


def test_deadline_into_2027_needs_the_2027_calendar() -> None:
    entries = package_calendar_entries()
    calendar = build_calendar(known_years=package_known_years(), entries=entries)
    start = date(2026, 12, 24)  # Thursday
    assert calendar.add_working_days(start, 4) == date(2026, 12, 30)
    with pytest.raises(CalendarUnknownError, match="2027") as info:
        calendar.add_working_days(start, 10)
    assert info.value.year == 2027

    year, extra = parse_holiday_file(FILE_2027)
    calendar = build_calendar(known_years=[*package_known_years(), year], entries=entries + extra)
    # 12-25, 12-28..12-31 = 5; 2027-01-01 holiday; 01-04..01-08 = 10
    assert calendar.add_working_days(start, 10) == date(2027, 1, 8)
    assert calendar.working_days_between(start, date(2027, 1, 8)) == 10


# --- holiday file ----------------------------------------------------------------------


def test_parse_holiday_file() -> None:
    year, entries = parse_holiday_file(FILE_2027)
    assert year == 2027
    assert entries == [
        (date(2027, 1, 1), "holiday", "元旦"),
        (date(2027, 2, 6), "holiday", "春节"),
        (date(2027, 2, 7), "workday", "春节调休"),
    ]
    calendar = build_calendar(known_years=[year], entries=entries)
    assert calendar.is_working_day(date(2027, 2, 7))  # Sunday, adjusted
    assert not calendar.is_working_day(date(2027, 1, 1))
    assert parse_holiday_file("\ufeff" + FILE_2027.replace("\n", "\r\n")) == (year, entries)


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("", 1, "no `year,YYYY` line"),
        ("# only a comment\n", 1, "no `year,YYYY` line"),
        ("2027-01-01,holiday,元旦\nyear,2027\n", 1, "after the `year,YYYY` line"),
        ("year,2027\n2027-01-01,holiday,元旦\nyear,2027\n", 3, "second `year` line"),
        ("year,27\n", 1, "`year,YYYY`"),
        ("year,2027\n", 1, "no `holiday` entries"),
        ("# c\nyear,2027\n2027-02-07,workday,调休\n", 2, "no `holiday` entries"),
        ("year,2027\n2028-01-01,holiday,元旦\n", 2, "outside the declared year 2027"),
        ("year,2027\n2027-13-01,holiday,元旦\n", 2, "not a valid date"),
        ("year,2027\n2027/01/01,holiday,元旦\n", 2, "not a valid date"),
        ("year,2027\n20270101,holiday,元旦\n", 2, "not a valid date"),
        ("year,2027\n2027-01-01,vacation,元旦\n", 2, "use `holiday` or `workday`"),
        ("year,2027\n2027-01-01,holiday\n", 2, "3 fields"),
        ("year,2027\n2027-01-01,holiday,元旦\n2027-01-04,workday,x\n", 3, "Saturday or Sunday"),
        ("year,2027\n2027-01-01,holiday,元旦\n\n2027-01-01,holiday,元旦\n", 4, "on line 2"),
        ("year,2027\n2027-02-06,holiday,春节\n2027-02-06,workday,春节\n", 3, "on line 2"),
        ("year,2027\n2027-01-01,holiday,  \n", 2, "name is empty"),
    ],
)
def test_parse_holiday_file_refusals(body: str, line: int, reason: str) -> None:
    message = refusal(body)
    assert f"line {line}:" in message
    assert reason in message
