"""挂图作战: the wall chart. Every project the supervisor may see as one row across the four
stages; each cell is the stage's state with the light of its most urgent open task and the
departments still working on it.

Built in a fixed number of statements whatever the number of projects (projects, stages,
open tasks, their warnings), so that 500 projects answer at once; a screen that already
shows the chart asks again for the rows of the projects a live event names.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from approval.core.access import Viewer, project_scope, require_role
from approval.core.calendar import working_calendar
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.workdays import CalendarUnknownError
from approval.oversight.lights import Light, rank, task_clock, warned_levels, worst
from approval.review.rules import OPEN
from storage.enums import Decision, ProjectStatus, Role, StageStatus
from storage.models import Department, Enterprise, Project, Region, Stage, StageDefinition, Task

MAX_CODES = 200  # project codes one refresh may name


@dataclass(frozen=True)
class DepartmentLight:
    code: str
    short_name: str
    light: Light
    open_tasks: int


@dataclass(frozen=True)
class BoardCell:
    stage_code: str
    stage_name: str
    order: int
    status: StageStatus
    outcome: Decision | None
    round: int
    deadline: date | None
    overdue: bool  # in review past the stage deadline
    light: Light | None  # the most urgent open task's; None when nothing is open
    open_tasks: int
    overdue_tasks: int
    departments: list[DepartmentLight]  # with open tasks, most urgent first


@dataclass(frozen=True)
class BoardRow:
    project_id: int
    code: str
    name: str
    status: ProjectStatus
    region_code: str
    region_name: str
    enterprise_name: str
    created_at: datetime
    cells: list[BoardCell]
    light: Light | None
    department_codes: list[str]  # every department with a task in a current round


async def wall_chart(
    *, viewer: Viewer, now: datetime, project_codes: list[str] | None = None
) -> list[BoardRow]:
    """The rows of every visible project (newest first), or only of ``project_codes``."""
    require_role(viewer, Role.SUPERVISOR, Role.WINDOW_CLERK)
    query = Project.filter(project_scope(viewer))
    if project_codes is not None:
        if len(project_codes) > MAX_CODES:
            raise invalid(
                f"ask for at most {MAX_CODES} projects at once, got {len(project_codes)}",
                field="projects",
            )
        query = query.filter(code__in=[c.strip() for c in project_codes])
    projects = await query.order_by("-created_at", "-id")
    if not projects:
        return []
    ids = [p.id for p in projects]
    stages = await Stage.filter(project_id__in=ids).order_by("id")
    definitions = {d.id: d for d in await StageDefinition.all()}
    tasks = await Task.filter(stage__project_id__in=ids).order_by("deadline", "id")
    departments = {d.id: d for d in await Department.all()}
    regions = {r.id: r for r in await Region.all()}
    enterprises = {
        e.id: e for e in await Enterprise.filter(id__in={p.enterprise_id for p in projects})
    }
    stage_of = {s.id: s for s in stages}
    current = [t for t in tasks if t.round == stage_of[t.stage_id].round]
    open_tasks = [
        t
        for t in current
        if t.status in OPEN
        and t.decided_at is None
        and stage_of[t.stage_id].status is StageStatus.IN_REVIEW
    ]
    today = local_day(now)
    warned = await warned_levels(t.id for t in open_tasks)
    try:
        years = sorted({today.year, *(t.deadline.year for t in open_tasks)})
        calendar = await working_calendar(years=years)
        clocks = {
            t.id: task_clock(t, today=today, calendar=calendar, warned=warned.get(t.id))
            for t in open_tasks
        }
    except CalendarUnknownError as error:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(error)) from None
    open_by_stage: dict[int, list[Task]] = defaultdict(list)
    for task in open_tasks:
        open_by_stage[task.stage_id].append(task)
    departments_by_project: dict[int, set[str]] = defaultdict(set)
    for task in current:
        departments_by_project[stage_of[task.stage_id].project_id].add(
            departments[task.department_id].code
        )
    stages_by_project: dict[int, list[Stage]] = defaultdict(list)
    for stage in stages:
        stages_by_project[stage.project_id].append(stage)

    def cell(stage: Stage) -> BoardCell:
        definition = definitions[stage.definition_id]
        mine = open_by_stage.get(stage.id, [])
        by_department: dict[int, list[Task]] = defaultdict(list)
        for task in mine:
            by_department[task.department_id].append(task)
        lights = [
            DepartmentLight(
                code=departments[d].code,
                short_name=departments[d].short_name,
                light=worst(clocks[t.id].light for t in rows) or Light.GREEN,
                open_tasks=len(rows),
            )
            for d, rows in by_department.items()
        ]
        lights.sort(key=lambda d: (-rank(d.light), d.code))
        return BoardCell(
            stage_code=definition.code,
            stage_name=definition.name,
            order=definition.order,
            status=stage.status,
            outcome=stage.outcome,
            round=stage.round,
            deadline=stage.deadline,
            overdue=stage.status is StageStatus.IN_REVIEW
            and stage.deadline is not None
            and stage.deadline < today,
            light=worst(clocks[t.id].light for t in mine),
            open_tasks=len(mine),
            overdue_tasks=sum(1 for t in mine if clocks[t.id].light is Light.RED),
            departments=lights,
        )

    rows = []
    for project in projects:
        cells = sorted(
            (cell(s) for s in stages_by_project.get(project.id, [])), key=lambda c: c.order
        )
        region = regions[project.region_id]
        rows.append(
            BoardRow(
                project_id=project.id,
                code=project.code,
                name=project.name,
                status=project.status,
                region_code=region.code,
                region_name=region.name,
                enterprise_name=enterprises[project.enterprise_id].name,
                created_at=project.created_at,
                cells=cells,
                light=worst(c.light for c in cells if c.light is not None),
                department_codes=sorted(departments_by_project.get(project.id, set())),
            )
        )
    return rows
