"""A department's review queue (待办): its open tasks, the most pressing deadline first, each
with its light and working days left; then the formal opinions it still owes after a default
approval (超时默认), the earliest due first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Subquery

from approval.core.access import Viewer, project_scope, require_role
from approval.core.calendar import working_calendar
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.workdays import CalendarUnknownError
from approval.oversight.lights import Light, TaskClock, task_clock, warned_levels
from approval.review.rules import OPEN
from storage.enums import Role, StageStatus
from storage.models import Department, Project, Task

MAX_QUEUE = 1000


@dataclass(frozen=True)
class QueueEntry:
    task: Task  # with stage__definition, stage__project, item and department loaded
    clock: TaskClock | None  # None for a formal opinion owed (the task is decided)
    owes_formal_opinion: bool


async def review_queue(
    *, viewer: Viewer, now: datetime, department_code: str | None = None, first: int = 500
) -> list[QueueEntry]:
    """Reviewers see their own department's queue; supervisors and the window any one's."""
    require_role(viewer, Role.REVIEWER, Role.SUPERVISOR, Role.WINDOW_CLERK)
    if not 1 <= first <= MAX_QUEUE:
        raise invalid(f"first must be between 1 and {MAX_QUEUE}, got {first}", field="first")
    visible = Subquery(Project.filter(project_scope(viewer)).values("id"))
    query = Task.filter(stage__project_id__in=visible)
    if viewer.role is Role.REVIEWER:
        if department_code and department_code.strip():
            own = await Department.get_or_none(id=viewer.department_id or -1)
            if own is None or own.code != department_code.strip():
                raise DomainError(
                    ErrorCode.WRONG_DEPARTMENT,
                    "a reviewer sees only the queue of their own department",
                    field="department",
                )
        query = query.filter(department_id=viewer.department_id or -1)
    elif department_code and department_code.strip():
        query = query.filter(department__code=department_code.strip())
    related = ("stage__definition", "stage__project", "item", "department")
    open_rows = [
        t
        for t in await query.filter(
            status__in=list(OPEN),
            decided_at__isnull=True,
            stage__status=StageStatus.IN_REVIEW,
        )
        .select_related(*related)
        .order_by("deadline", "id")
        .limit(first)
        if t.round == t.stage.round
    ]
    owed = await (
        query.filter(default_approved=True, formal_opinion_at__isnull=True)
        .select_related(*related)
        .order_by("formal_opinion_due", "id")
        .limit(first)
    )
    today = local_day(now)
    warned = await warned_levels(t.id for t in open_rows)
    try:
        years = sorted({today.year, *(t.deadline.year for t in open_rows)})
        calendar = await working_calendar(years=years)
        entries = [
            QueueEntry(
                task=t,
                clock=task_clock(t, today=today, calendar=calendar, warned=warned.get(t.id)),
                owes_formal_opinion=False,
            )
            for t in open_rows
        ]
    except CalendarUnknownError as error:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(error)) from None
    # A stopped clock waits at the end of the open tasks: nothing runs late meanwhile.
    entries.sort(key=lambda e: (e.clock is not None and e.clock.light is Light.PAUSED,))
    entries.extend(QueueEntry(task=t, clock=None, owes_formal_opinion=True) for t in owed)
    return entries[:first]
