"""What the center's supervisors watch (电子监察, 每月一调度): warnings and overdue items, the
figures of each department, stage durations across projects, and the ledger (台账) in Excel.

Everything here reads; nothing writes. Working days come from the stored holiday calendar
(:func:`approval.core.calendar.working_calendar`); a year it does not know is refused, never
guessed.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from statistics import fmean
from typing import Any, Protocol

from tortoise.expressions import Q, Subquery

from approval.core import audit
from approval.core.access import Viewer, project_scope, require_role
from approval.core.calendar import calendar_for, working_calendar
from approval.core.dates import CHINA, local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.labels import label
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.review.rules import OPEN
from storage.enums import Role, StageStatus, WarningLevel
from storage.models import (
    Department,
    Enterprise,
    Project,
    Region,
    Stage,
    StageDefinition,
    SupervisionEvent,
    Task,
)

DEFAULT_WARNING_DAYS = 1  # as the supervisor's yellow warning (Settings.warn_working_days)
MAX_EVENTS = 200
Progress = Callable[[str], None]
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII)


# --- periods and the calendar ----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A calendar month in China time: ``start <= t < end``."""

    month: str
    start: datetime
    end: datetime


def parse_month(month: str, *, field: str = "month") -> Period:
    text = month.strip()
    try:
        if not _MONTH.fullmatch(text):
            raise ValueError
        year, number = int(text[:4]), int(text[5:])
        start = datetime(year, number, 1, tzinfo=CHINA)
    except ValueError:
        raise invalid(
            f"month {month!r} is not YYYY-MM; write it as e.g. 2026-03", field=field
        ) from None
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=CHINA)
    return Period(month=text, start=start, end=end)


def _unknown(error: CalendarUnknownError, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.CALENDAR_UNKNOWN, str(error), field=field)


def _scoped_tasks(viewer: Viewer) -> Any:
    visible = Project.filter(project_scope(viewer)).values("id")
    return Task.filter(stage__project_id__in=Subquery(visible))


def _task_start(task: Task) -> date:
    """When the task's clock started: its stage's acceptance for the current round; for an
    earlier round (the stage row keeps only the latest acceptance) the task's creation."""
    stage = task.stage
    if stage.accepted_at is not None and task.round == stage.round:
        return local_day(stage.accepted_at)
    return local_day(task.created_at)


# --- warnings and overdue --------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAlert:
    """An open task near (yellow) or past (red) its deadline, counted in working days."""

    task_id: int
    project_id: int
    project_code: str
    project_name: str
    stage_code: str
    stage_name: str
    item_code: str
    item_name: str
    department_code: str
    department_name: str
    deadline: date
    working_days_left: int  # 0 on the deadline day; negative: working days overdue
    level: WarningLevel

    @property
    def level_label(self) -> str:
        return "黄色预警" if self.level is WarningLevel.YELLOW else "红色预警"


@dataclass(frozen=True)
class Alerts:
    tasks: list[TaskAlert]
    events: list[SupervisionEvent]  # as the scheduler stored them, newest first


async def _open_tasks(viewer: Viewer) -> list[Task]:
    return list(
        await _scoped_tasks(viewer)
        .filter(
            status__in=list(OPEN),
            decided_at__isnull=True,
            paused_at__isnull=True,  # a stopped clock neither warns nor runs late
            stage__status=StageStatus.IN_REVIEW,
        )
        .select_related("stage__definition", "stage__project", "item", "department")
        .order_by("deadline", "id")
    )


def _current(tasks: Iterable[Task]) -> list[Task]:
    return [t for t in tasks if t.round == t.stage.round]


def _alert(task: Task, days_left: int, level: WarningLevel) -> TaskAlert:
    return TaskAlert(
        task_id=task.id,
        project_id=task.stage.project.id,
        project_code=task.stage.project.code,
        project_name=task.stage.project.name,
        stage_code=task.stage.definition.code,
        stage_name=task.stage.definition.name,
        item_code=task.item.code,
        item_name=task.item.name,
        department_code=task.department.code,
        department_name=task.department.name,
        deadline=task.deadline,
        working_days_left=days_left,
        level=level,
    )


ALERT_VIEWERS = (Role.SUPERVISOR, Role.AGENT)


async def _events(viewer: Viewer, level: WarningLevel) -> list[SupervisionEvent]:
    query = SupervisionEvent.filter(level=level)
    if viewer.role is Role.AGENT:  # only the events of their own projects
        mine = Project.filter(project_scope(viewer)).values("id")
        query = query.filter(project_id__in=Subquery(mine))
    elif viewer.region_ids is not None:  # city-wide events (no project) concern every region
        visible = Project.filter(project_scope(viewer)).values("id")
        query = query.filter(Q(project_id__isnull=True) | Q(project_id__in=Subquery(visible)))
    return list(await query.order_by("-at", "-id").limit(MAX_EVENTS))


async def warnings(
    *, viewer: Viewer, now: datetime, within_days: int = DEFAULT_WARNING_DAYS
) -> Alerts:
    """临期预警: open tasks due within ``within_days`` working days (today included), and the
    yellow events the scheduler recorded; an agent gets those of their own projects."""
    require_role(viewer, *ALERT_VIEWERS)
    if not 0 <= within_days <= 30:
        raise invalid(
            f"withinDays must be between 0 and 30 working days, got {within_days}",
            field="withinDays",
        )
    today = local_day(now)
    tasks = [t for t in _current(await _open_tasks(viewer)) if t.deadline >= today]
    try:
        calendar = await calendar_for(today, *(t.deadline for t in tasks))
        alerts = [
            _alert(t, left, WarningLevel.YELLOW)
            for t in tasks
            if (left := calendar.working_days_between(today, t.deadline)) <= within_days
        ]
    except CalendarUnknownError as error:
        raise _unknown(error) from None
    return Alerts(tasks=alerts, events=await _events(viewer, WarningLevel.YELLOW))


async def overdue(*, viewer: Viewer, now: datetime) -> Alerts:
    """超期: open tasks past their deadline (most overdue first), and the red events; an
    agent gets those of their own projects."""
    require_role(viewer, *ALERT_VIEWERS)
    today = local_day(now)
    tasks = [t for t in _current(await _open_tasks(viewer)) if t.deadline < today]
    try:
        calendar = await calendar_for(today, *(t.deadline for t in tasks))
        alerts = [
            _alert(t, -calendar.working_days_between(t.deadline, today), WarningLevel.RED)
            for t in tasks
        ]
    except CalendarUnknownError as error:
        raise _unknown(error) from None
    return Alerts(tasks=alerts, events=await _events(viewer, WarningLevel.RED))


# --- per department --------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentFigures:
    department_code: str
    department_name: str
    decided: int  # tasks decided (in the period)
    on_time: int  # decided by the deadline, by the department itself
    default_approved: int  # 超时默认: approved by the system at the deadline
    average_working_days: float | None  # from the stage's acceptance to the decision
    open_now: int
    overdue_now: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.decided if self.decided else None


async def department_figures(
    *, viewer: Viewer, now: datetime, month: str | None = None
) -> list[DepartmentFigures]:
    """Per department: tasks decided (in ``month`` when given), on-time rate, average
    working days per decided item, default approvals; and tasks open and overdue now."""
    require_role(viewer, Role.SUPERVISOR)
    today = local_day(now)
    decided_q = _scoped_tasks(viewer).filter(decided_at__isnull=False)
    if month is not None:
        period = parse_month(month)
        decided_q = decided_q.filter(decided_at__gte=period.start, decided_at__lt=period.end)
    decided = await decided_q.select_related("stage").order_by("id")
    open_rows = await _scoped_tasks(viewer).filter(status__in=list(OPEN), decided_at__isnull=True)
    spans = [(_task_start(t), local_day(t.decided_at)) for t in decided if t.decided_at]
    try:
        calendar = await calendar_for(today, *(d for span in spans for d in span))
        elapsed: dict[int, list[int]] = defaultdict(list)
        for task, (start, end) in zip(decided, spans, strict=True):
            elapsed[task.department_id].append(calendar.working_days_between(start, end))
    except CalendarUnknownError as error:
        raise _unknown(error, "month") from None
    by_department: dict[int, list[Task]] = defaultdict(list)
    for task in decided:
        by_department[task.department_id].append(task)
    open_by: dict[int, list[Task]] = defaultdict(list)
    for task in open_rows:
        open_by[task.department_id].append(task)
    ids = sorted(set(by_department) | set(open_by))
    departments = {d.id: d for d in await Department.filter(id__in=ids)}
    figures = []
    for department_id in ids:
        rows = by_department.get(department_id, [])
        days = elapsed.get(department_id, [])
        figures.append(
            DepartmentFigures(
                department_code=departments[department_id].code,
                department_name=departments[department_id].name,
                decided=len(rows),
                on_time=sum(
                    1
                    for t in rows
                    if t.decided_at is not None
                    and not t.default_approved
                    and local_day(t.decided_at) <= t.deadline
                ),
                default_approved=sum(1 for t in rows if t.default_approved),
                average_working_days=round(fmean(days), 2) if days else None,
                open_now=len(open_by.get(department_id, [])),
                overdue_now=sum(1 for t in open_by.get(department_id, []) if t.deadline < today),
            )
        )
    return sorted(figures, key=lambda f: f.department_code)


# --- per stage (每月一调度) -------------------------------------------------------------------


@dataclass(frozen=True)
class StageDurations:
    stage_code: str
    stage_name: str
    order: int
    time_limit_days: int
    completed: int  # stages completed (in the period) with a known acceptance
    average_working_days: float | None
    max_working_days: int | None
    open_now: int  # in review now
    overdue_now: int  # in review past the stage deadline


async def stage_durations(
    *, viewer: Viewer, now: datetime, month: str | None = None
) -> list[StageDurations]:
    """Per stage across projects: how many completed (in ``month`` when given), average and
    longest working days from acceptance to completion, and how many are in review now."""
    require_role(viewer, Role.SUPERVISOR)
    today = local_day(now)
    visible = Project.filter(project_scope(viewer)).values("id")
    stages = Stage.filter(project_id__in=Subquery(visible))
    done_q = stages.filter(
        status=StageStatus.COMPLETED, accepted_at__isnull=False, completed_at__isnull=False
    )
    if month is not None:
        period = parse_month(month)
        done_q = done_q.filter(completed_at__gte=period.start, completed_at__lt=period.end)
    done = await done_q
    in_review = await Stage.filter(
        project_id__in=Subquery(Project.filter(project_scope(viewer)).values("id")),
        status=StageStatus.IN_REVIEW,
    )
    spans = [(local_day(s.accepted_at), local_day(s.completed_at)) for s in done]  # type: ignore[arg-type]
    try:
        calendar = await calendar_for(today, *(d for span in spans for d in span))
        durations: dict[int, list[int]] = defaultdict(list)
        for stage, (start, end) in zip(done, spans, strict=True):
            durations[stage.definition_id].append(calendar.working_days_between(start, end))
    except CalendarUnknownError as error:
        raise _unknown(error, "month") from None
    result = []
    for definition in await StageDefinition.all().order_by("order"):
        days = durations.get(definition.id, [])
        current = [s for s in in_review if s.definition_id == definition.id]
        result.append(
            StageDurations(
                stage_code=definition.code,
                stage_name=definition.name,
                order=definition.order,
                time_limit_days=definition.time_limit_days,
                completed=len(days),
                average_working_days=round(fmean(days), 2) if days else None,
                max_working_days=max(days) if days else None,
                open_now=len(current),
                overdue_now=sum(1 for s in current if s.deadline and s.deadline < today),
            )
        )
    return result


# --- the ledger (台账) ------------------------------------------------------------------------

LEDGER_HEADERS = (
    "项目代码",
    "项目名称",
    "建设单位",
    "所属区域",
    "阶段",
    "阶段状态",
    "受理日期",
    "阶段期限",
    "办结日期",
    "轮次",
    "审批部门",
    "审批事项",
    "任务状态",
    "审批决定",
    "承诺期限",
    "决定日期",
    "用时(工作日)",
    "按期办结",
    "超时默认",
    "当前超期",
)


@dataclass(frozen=True)
class LedgerRow:
    """One row per project, stage and task; a stage without tasks yields one row."""

    project_code: str
    project_name: str
    enterprise_name: str
    region_name: str
    stage_name: str
    stage_status: str
    accepted_on: date | None
    stage_deadline: date | None
    completed_on: date | None
    round: int | None
    department_name: str
    item_name: str
    task_status: str
    decision: str
    task_deadline: date | None
    decided_on: date | None
    working_days: int | None
    on_time: str  # 是 / 否 / ""
    default_approved: str
    overdue_now: str

    def cells(self) -> tuple[object, ...]:
        return (
            self.project_code,
            self.project_name,
            self.enterprise_name,
            self.region_name,
            self.stage_name,
            self.stage_status,
            self.accepted_on,
            self.stage_deadline,
            self.completed_on,
            self.round,
            self.department_name,
            self.item_name,
            self.task_status,
            self.decision,
            self.task_deadline,
            self.decided_on,
            self.working_days,
            self.on_time,
            self.default_approved,
            self.overdue_now,
        )


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def _between(calendar: WorkingCalendar, start: date, end: date) -> int | None:
    try:
        return calendar.working_days_between(start, end)
    except CalendarUnknownError:
        return None  # the ledger leaves the cell empty rather than guess


async def ledger_rows(
    *,
    viewer: Viewer,
    now: datetime,
    month: str | None = None,
    progress: Progress | None = None,
) -> list[LedgerRow]:
    """The ledger: every project, stage and task the viewer may see. With ``month``, only the
    stages active in that month (accepted before its end, not completed before its start)."""
    require_role(viewer, Role.SUPERVISOR)
    say = progress or (lambda _line: None)
    today = local_day(now)
    projects = list(await Project.filter(project_scope(viewer)).order_by("code"))
    stage_q = Stage.filter(project_id__in=[p.id for p in projects])
    if month is not None:
        period = parse_month(month)
        stage_q = stage_q.filter(accepted_at__lt=period.end).filter(
            Q(completed_at__isnull=True) | Q(completed_at__gte=period.start)
        )
    stages = list(await stage_q.select_related("definition").order_by("project_id", "id"))
    tasks = list(
        await Task.filter(stage_id__in=[s.id for s in stages])
        .select_related("item", "department")
        .order_by("stage_id", "round", "id")
    )
    say(f"read {len(projects)} project(s), {len(stages)} stage(s), {len(tasks)} task(s)")
    enterprises = {
        e.id: e for e in await Enterprise.filter(id__in={p.enterprise_id for p in projects})
    }
    regions = {r.id: r for r in await Region.filter(id__in={p.region_id for p in projects})}
    calendar = await working_calendar()
    by_stage: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        by_stage[task.stage_id].append(task)
    by_project: dict[int, list[Stage]] = defaultdict(list)
    for stage in stages:
        by_project[stage.project_id].append(stage)
    rows: list[LedgerRow] = []
    for project in projects:
        for stage in sorted(by_project.get(project.id, []), key=lambda s: s.definition.order):
            base: dict[str, Any] = {
                "project_code": project.code,
                "project_name": project.name,
                "enterprise_name": enterprises[project.enterprise_id].name,
                "region_name": regions[project.region_id].name,
                "stage_name": stage.definition.name,
                "stage_status": label(stage.status),
                "accepted_on": local_day(stage.accepted_at) if stage.accepted_at else None,
                "stage_deadline": stage.deadline,
                "completed_on": local_day(stage.completed_at) if stage.completed_at else None,
            }
            stage_tasks = by_stage.get(stage.id, [])
            if not stage_tasks:
                rows.append(
                    LedgerRow(
                        **base,
                        round=None,
                        department_name="",
                        item_name="",
                        task_status="",
                        decision="",
                        task_deadline=None,
                        decided_on=None,
                        working_days=None,
                        on_time="",
                        default_approved="",
                        overdue_now="",
                    )
                )
                continue
            for task in stage_tasks:
                task.stage = stage
                decided_on = local_day(task.decided_at) if task.decided_at else None
                is_open = task.decided_at is None and task.status in OPEN
                rows.append(
                    LedgerRow(
                        **base,
                        round=task.round,
                        department_name=task.department.name,
                        item_name=task.item.name,
                        task_status=label(task.status),
                        decision=label(task.decision) if task.decision else "",
                        task_deadline=task.deadline,
                        decided_on=decided_on,
                        working_days=_between(calendar, _task_start(task), decided_on or today),
                        on_time=""
                        if decided_on is None
                        else _yes(not task.default_approved and decided_on <= task.deadline),
                        default_approved=_yes(task.default_approved),
                        overdue_now=_yes(is_open and task.deadline < today),
                    )
                )
    say(f"{len(rows)} ledger row(s)")
    return rows


# What a spreadsheet reads as the start of a formula (or of a cell it may turn into one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A value safe to put in a spreadsheet or CSV cell: text that a spreadsheet would read as
    a formula (``=HYPERLINK(...)`` as a project name) gets a leading apostrophe, so it stays
    text; numbers and dates are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def record_ledger_export(*, viewer: Viewer, month: str | None, rows: int) -> None:
    """Every export of the ledger is audited: who (0: the command line), which month, how much."""
    await audit.record(
        actor_id=viewer.user_id or None,
        action="ledger.export",
        entity_type="ledger",
        entity_id=0,
        after={"month": month, "rows": rows, "by": viewer.username},
    )


def ledger_xlsx(
    rows: list[LedgerRow], *, title: str = "台账", setups: Sequence[SheetRow] | None = None
) -> bytes:
    """The ledger as an Excel workbook: Chinese headers, frozen header row; company setups,
    when given, on a sheet of their own (counted apart from projects)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    widths = [26, 30, 24, 16, 18, 10, 12, 12, 12, 6, 24, 36, 10, 12, 12, 12, 12, 10, 10, 10]
    _fill_sheet(sheet, title, LEDGER_HEADERS, rows, widths, (7, 8, 9, 15, 16))
    if setups is not None:
        _fill_sheet(
            workbook.create_sheet(), "企业设立台账", SETUP_LEDGER_HEADERS, setups,
            [14, 30, 14, 24, 10, 12, 12, 12, 12, 12, 8, 8, 8, 8], (6, 7, 8, 9),
        )  # fmt: skip
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


class SheetRow(Protocol):
    def cells(self) -> Sequence[object]: ...


def _fill_sheet(
    sheet: Any,
    title: str,
    headers: Sequence[str],
    rows: Sequence[SheetRow],
    widths: list[int],
    date_columns: tuple[int, ...],
) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet.title = title
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for row in rows:
        sheet.append([spreadsheet_cell(value) for value in row.cells()])
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever openpyxl guessed
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for column in date_columns:
        for cells in sheet.iter_cols(min_col=column, max_col=column, min_row=2):
            for cell in cells:
                cell.number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions


SETUP_LEDGER_HEADERS = (
    "受理编号",
    "企业名称",
    "经营类型",
    "流程",
    "区域",
    "受理日期",
    "一照三证时限",
    "许可时限",
    "统一发证日期",
    "状态",
    "许可数",
    "已决定",
    "超时默认",
    "超期未决",
)


# --- supervision events for dashboards -------------------------------------------------------

WATCHERS = (Role.SUPERVISOR, Role.REVIEWER)


def require_watcher(viewer: Viewer) -> None:
    """Who may follow supervision events live, as they may list them: the center's
    supervisors (every event of their region) and reviewers (their department's)."""
    require_role(viewer, *WATCHERS)


async def event_visible(viewer: Viewer, event: SupervisionEvent) -> bool:
    if viewer.role is Role.REVIEWER:
        return event.department_id is not None and event.department_id == viewer.department_id
    if viewer.role is not Role.SUPERVISOR:
        return False
    if viewer.region_ids is None or event.project_id is None:
        return True
    return await Project.filter(project_scope(viewer), id=event.project_id).exists()
