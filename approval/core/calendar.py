"""The database side of working days: the stored holiday table and the calendar built from it.

A year counts only once a :class:`~storage.models.CalendarYear` row says its official calendar
is loaded, either from the ``chinese_calendar`` package (source ``"chinese-calendar"``) or by
an administrator from a holiday file (source ``"admin"``). An admin year is never overwritten
by the package.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import reduce
from operator import or_

from tortoise.expressions import Q
from tortoise.timezone import now
from tortoise.transactions import in_transaction

from approval.core.workdays import (
    HOLIDAY_NAMES_ZH,
    Entry,
    WorkingCalendar,
    build_calendar,
    package_calendar_entries,
    package_known_years,
    parse_holiday_file,
)
from storage.enums import DayKind
from storage.models import CalendarDay, CalendarYear

PACKAGE_SOURCE = "chinese-calendar"
ADMIN_SOURCE = "admin"


def _year_ranges(years: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs of years, e.g. [2004, 2005, 2007] -> [(2004, 2005), (2007, 2007)]."""
    ranges: list[tuple[int, int]] = []
    for year in sorted(set(years)):
        if ranges and ranges[-1][1] == year - 1:
            ranges[-1] = (ranges[-1][0], year)
        else:
            ranges.append((year, year))
    return ranges


def _days_of(years: Iterable[int]) -> Q | None:
    """A filter on CalendarDay for the given years, one date range per run of years."""
    ranges = [
        Q(day__gte=date(first, 1, 1), day__lte=date(last, 12, 31))
        for first, last in _year_ranges(years)
    ]
    return reduce(or_, ranges) if ranges else None


def _row(entry: Entry) -> CalendarDay:
    day, kind, name = entry
    return CalendarDay(day=day, kind=DayKind(kind), name=HOLIDAY_NAMES_ZH.get(name, name))


async def load_package_calendar() -> int:
    """Store every year ``chinese_calendar`` knows, except years an admin loaded.

    Idempotent: only days that differ are rewritten. Returns the number of years now
    stored from the package.
    """
    async with in_transaction():
        sources = dict(await CalendarYear.all().values_list("year", "source"))
        years = [y for y in package_known_years() if sources.get(y) != ADMIN_SOURCE]
        if not years:
            return 0
        year_set = set(years)
        wanted = {
            row.day: row
            for row in map(_row, package_calendar_entries())
            if row.day.year in year_set
        }
        where = _days_of(years)
        stored = await CalendarDay.filter(where).all() if where is not None else []
        stale = [
            row.day
            for row in stored
            if (new := wanted.get(row.day)) is None or (new.kind, new.name) != (row.kind, row.name)
        ]
        kept = {row.day for row in stored} - set(stale)
        if stale:
            await CalendarDay.filter(day__in=stale).delete()
        new_rows = [row for day, row in sorted(wanted.items()) if day not in kept]
        if new_rows:
            await CalendarDay.bulk_create(new_rows)
        missing = [CalendarYear(year=y, source=PACKAGE_SOURCE) for y in years if y not in sources]
        if missing:
            await CalendarYear.bulk_create(missing)
        refreshed = {day.year for day in stale} | {row.day.year for row in new_rows}
        refreshed -= {row.year for row in missing}
        if refreshed:  # touch loaded_at of the years whose days changed
            await CalendarYear.filter(year__in=sorted(refreshed)).update(loaded_at=now())
    return len(years)


async def load_holiday_year(text: str) -> int:
    """Store an admin's holiday file (format in :mod:`approval.core.workdays`); returns the year.

    Replaces that year's days and marks it ``"admin"``. A ValueError from the parser is
    raised before anything is stored.
    """
    year, entries = parse_holiday_file(text)
    async with in_transaction():
        await CalendarDay.filter(day__gte=date(year, 1, 1), day__lte=date(year, 12, 31)).delete()
        await CalendarDay.bulk_create([_row(entry) for entry in entries])
        stored = await CalendarYear.get_or_none(year=year)
        if stored is None:
            await CalendarYear.create(year=year, source=ADMIN_SOURCE)
        else:
            stored.source = ADMIN_SOURCE
            await stored.save(update_fields=["source", "loaded_at"])
    return year


async def working_calendar(*, years: Iterable[int] | None = None) -> WorkingCalendar:
    """The working calendar of the stored years.

    With ``years``, only those years and the year after each (a deadline may cross a year
    end) are read; a year not stored stays unknown and computations in it raise
    :class:`~approval.core.workdays.CalendarUnknownError`.
    """
    if years is None:
        known = await CalendarYear.all().values_list("year", flat=True)
    else:
        wanted = {y for year in years for y in (year, year + 1)}
        known = (
            await CalendarYear.filter(year__in=sorted(wanted)).values_list("year", flat=True)
            if wanted
            else []
        )
    known_years = [int(y) for y in known]  # type: ignore[call-overload]
    where = _days_of(known_years)
    rows = (
        await CalendarDay.filter(where).values_list("day", "kind", "name")
        if where is not None
        else []
    )
    entries: list[Entry] = [(day, DayKind(kind).value, name) for day, kind, name in rows]
    return build_calendar(known_years=known_years, entries=entries)


async def calendar_years() -> list[tuple[int, str]]:
    """Every stored year with its source, sorted by year."""
    rows = await CalendarYear.all().order_by("year").values_list("year", "source")
    return [(int(year), str(source)) for year, source in rows]


async def calendar_for(*days: date) -> WorkingCalendar:
    """The working calendar covering the years of ``days`` (each with the year after it)."""
    return await working_calendar(years=sorted({d.year for d in days}))


NEXT_YEAR_WARNING_FROM = (11, 1)  # (month, day): the State Council publishes in autumn


async def next_year_warning(*, today: date) -> str | None:
    """From 1 November on, the warning that next year's official calendar is not loaded yet
    (deadlines into it will be refused), naming the command that loads it; else None."""
    month, day = NEXT_YEAR_WARNING_FROM
    if today < date(today.year, month, day):
        return None
    year = today.year + 1
    if await CalendarYear.exists(year=year):
        return None
    return (
        f"the official holiday calendar of {year} is not loaded: deadlines reaching into {year} "
        f"are refused (CALENDAR_UNKNOWN) from now on; load it with "
        f"`onewindow load-holidays FILE` (CSV: year,{year} then one line per holiday or "
        "adjusted working day)"
    )
