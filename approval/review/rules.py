"""The rules of parallel review (分散审核、同步审批) that do not depend on what is reviewed.

Also the arithmetic of a stopped clock: the deadline moves by the working days it stood.

A case (a construction stage, a company setup) hands one task to each department at once;
each task has a working-day deadline; a task is open until decided; when the last one is
decided the case takes the most severe decision of all (fan-in), and it passes when that
decision is an approval. Construction stages and company setups both decide with these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import TypeVar

from approval.core.calendar import calendar_for
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from storage.enums import Decision, TaskStatus

K = TypeVar("K")

OPEN = (TaskStatus.PENDING, TaskStatus.SUPPLEMENT_REQUESTED)
PASSING = (Decision.APPROVED, Decision.APPROVED_WITH_CONDITIONS)
SEVERITY = {
    Decision.APPROVED: 0,
    Decision.APPROVED_WITH_CONDITIONS: 1,
    Decision.SUPPLEMENT_REQUIRED: 2,
    Decision.REJECTED: 3,
}
DEFAULT_OPINION = "超时默认通过"


def most_severe(decisions: Iterable[Decision]) -> Decision:
    """The fan-in: rejected > supplement required > with conditions > approved."""
    return max(decisions, key=SEVERITY.__getitem__)


async def deadlines(
    *, today: date, working_days: Mapping[K, int], field: str | None = None
) -> dict[K, date]:
    """The deadline of each key for work starting ``today``, ``working_days[key]`` later.

    Raises CALENDAR_UNKNOWN (naming ``field``) when a deadline needs a year whose official
    calendar is not loaded: never a guess from weekends alone.
    """
    try:
        calendar = await calendar_for(today)
        return {key: calendar.add_working_days(today, days) for key, days in working_days.items()}
    except CalendarUnknownError as exc:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field=field) from None


def resumed_deadline(
    *, deadline: date, stopped: datetime, resumed: datetime, calendar: WorkingCalendar
) -> tuple[date, int]:
    """A clock stopped (行政许可法 Art. 45) from ``stopped`` to ``resumed``: the deadline moves
    later by the working days it stood still; returns the new deadline and those days. May
    raise CalendarUnknownError."""
    days = calendar.working_days_between(local_day(stopped), local_day(resumed))
    return calendar.add_working_days(deadline, days), days
