"""Chinese working days: official holidays and adjusted workdays (调休).

Statutory time limits count working days. A year counts only once its official calendar
(published each winter by the State Council) is loaded; the calendar never guesses a year
from weekends alone.

The bundled years come from the ``chinese_calendar`` package. An admin loads a year the
package does not know yet from a small CSV file with ``onewindow load-holidays FILE``::

    # comment lines start with #; blank lines are ignored
    year,2027
    2027-01-01,holiday,元旦
    2027-02-06,holiday,春节
    2027-02-07,workday,春节调休

Rules: exactly one ``year,YYYY`` line, before any entry; then one ``DATE,KIND,NAME`` line per
date, where DATE is ``YYYY-MM-DD`` inside the declared year, KIND is ``holiday`` (a day off,
weekend days of a holiday period may be listed too) or ``workday`` (a Saturday or Sunday that
is worked), and NAME is not empty. Each date is listed once and the year has at least one
holiday.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar

HOLIDAY = "holiday"
WORKDAY = "workday"
KINDS = (HOLIDAY, WORKDAY)

Entry = tuple[date, str, str]
"""One calendar entry: (day, kind, name), kind being ``HOLIDAY`` or ``WORKDAY``."""

HOLIDAY_NAMES_ZH: dict[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}

_ONE_DAY = timedelta(days=1)
_DATE_FORM = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_FORM = re.compile(r"[1-9]\d{3}")


class CalendarUnknownError(Exception):
    """A working-day computation needs a year whose official calendar is not loaded."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"No official holiday calendar is loaded for {year}, so working days in {year} "
            f"cannot be counted; an administrator should load it with "
            f"`onewindow load-holidays FILE`."
        )


@dataclass(frozen=True, repr=False)
class WorkingCalendar:
    """Immutable. Built from known years plus explicit holidays (days off that would be
    weekdays, or any day) and adjusted workdays (调休: weekend days that are working days)."""

    known_years: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __init__(
        self, *, known_years: Iterable[int], holidays: Iterable[date], workdays: Iterable[date]
    ) -> None:
        object.__setattr__(self, "known_years", frozenset(known_years))
        object.__setattr__(self, "holidays", frozenset(holidays))
        object.__setattr__(self, "workdays", frozenset(workdays))
        both = self.holidays & self.workdays
        if both:
            raise ValueError(
                f"{min(both)} is listed both as a holiday and as a workday; keep only one."
            )

    def __repr__(self) -> str:
        years = sorted(self.known_years)
        span = f"{years[0]}..{years[-1]}" if years else "none"
        return f"<WorkingCalendar years={span} ({len(years)} known)>"

    def knows(self, year: int) -> bool:
        return year in self.known_years

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.known_years:
            raise CalendarUnknownError(day.year)
        if day.weekday() >= 5:
            return day in self.workdays
        return day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The date of the ``days``-th working day after ``start`` (``start`` never counts)."""
        if days < 0:
            raise ValueError(f"days must be zero or more, got {days}.")
        day = start
        while days:
            day += _ONE_DAY
            if self.is_working_day(day):
                days -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days d with ``start < d <= end``; 0 if ``end <= start``."""
        count = 0
        day = start + _ONE_DAY
        while day <= end:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count


def build_calendar(*, known_years: Iterable[int], entries: Iterable[Entry]) -> WorkingCalendar:
    """A calendar from known years and (day, kind, name) entries."""
    entries = list(entries)
    return WorkingCalendar(
        known_years=known_years,
        holidays=(day for day, kind, _ in entries if kind == HOLIDAY),
        workdays=(day for day, kind, _ in entries if kind == WORKDAY),
    )


def package_known_years() -> list[int]:
    """The years ``chinese_calendar`` covers (the same range it accepts)."""
    days = chinese_calendar.holidays.keys()
    return list(range(min(days).year, max(days).year + 1))


def package_calendar_entries() -> list[Entry]:
    """Every (day, kind, name) the ``chinese_calendar`` package knows, sorted by date."""
    entries = [(day, HOLIDAY, name) for day, name in chinese_calendar.holidays.items()]
    entries += [(day, WORKDAY, name) for day, name in chinese_calendar.workdays.items()]
    return sorted(entries)


def package_calendar() -> WorkingCalendar:
    """A calendar of every year the ``chinese_calendar`` package knows."""
    return build_calendar(known_years=package_known_years(), entries=package_calendar_entries())


def parse_holiday_file(text: str) -> tuple[int, list[Entry]]:
    """Parse an admin's one-year holiday CSV (format in the module docstring).

    Returns (year, entries sorted by date); raises ValueError naming the line and the fix.
    """
    year: int | None = None
    year_line = 0
    seen: dict[date, int] = {}
    entries: list[Entry] = []

    def refuse(number: int, reason: str) -> ValueError:
        return ValueError(f"Holiday file line {number}: {reason}")

    lines = text.removeprefix("\ufeff").splitlines()  # spreadsheet exports may start with a BOM
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [field.strip() for field in next(csv.reader([line]))]
        if fields[0].lower() == "year":
            if year is not None:
                raise refuse(
                    number,
                    f"a second `year` line (the first is line {year_line}); "
                    "a file holds one year, keep a single `year,YYYY` line.",
                )
            if len(fields) != 2 or not _YEAR_FORM.fullmatch(fields[1]):
                raise refuse(number, "the year line must read `year,YYYY`, e.g. `year,2027`.")
            year, year_line = int(fields[1]), number
            continue
        if year is None:
            raise refuse(
                number, "entries must come after the `year,YYYY` line; put e.g. `year,2027` first."
            )
        if len(fields) != 3:
            raise refuse(
                number, f"expected `YYYY-MM-DD,KIND,NAME` (3 fields), got {len(fields)} field(s)."
            )
        text_day, kind, name = fields
        try:
            if not _DATE_FORM.fullmatch(text_day):
                raise ValueError
            day = date.fromisoformat(text_day)
        except ValueError:
            raise refuse(
                number,
                f"{text_day!r} is not a valid date; write it as YYYY-MM-DD, e.g. {year}-01-01.",
            ) from None
        if day.year != year:
            raise refuse(
                number,
                f"{day} is outside the declared year {year}; move it to the "
                f"file for {day.year} or fix the date.",
            )
        kind = kind.lower()
        if kind not in KINDS:
            raise refuse(number, f"kind {fields[1]!r} is unknown; use `holiday` or `workday`.")
        if kind == WORKDAY and day.weekday() < 5:
            raise refuse(
                number,
                f"{day} is a {day:%A}, already a working day; a `workday` "
                "entry must be a Saturday or Sunday that is worked (调休).",
            )
        if day in seen:
            raise refuse(
                number, f"{day} is already listed on line {seen[day]}; list each date once."
            )
        if not name:
            raise refuse(number, "the name is empty; give the holiday name, e.g. 春节.")
        seen[day] = number
        entries.append((day, kind, name))

    if year is None:
        raise refuse(1, "no `year,YYYY` line found; start the file with e.g. `year,2027`.")
    if not any(kind == HOLIDAY for _, kind, _ in entries):
        raise refuse(
            year_line,
            f"{year} has no `holiday` entries, but every Chinese year has "
            "official holidays; add a `YYYY-MM-DD,holiday,NAME` line for each day off.",
        )
    return year, sorted(entries)
