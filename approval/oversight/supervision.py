"""电子监察 (electronic supervision): warnings before deadlines, flags after, 超时默认.

:func:`supervise` scans every open task, every stage in review and every 容缺 commitment:

- YELLOW (黄色预警) when the deadline is at most ``warn_working_days`` working days away;
- RED (红色预警) once the deadline has passed (a deadline day itself is still in time);
- 超时默认: a task undecided after its deadline whose item allows it is approved by the system
  (:func:`approval.projects.tasks.default_approve`); items the law excludes stay with the department
  and get a RED flag; the late department owes a formal opinion within one working day, and
  a missing one is flagged RED;
- a commitment past its due date suspends (中止) the stages that need the material.

Each event has a unique ``key`` (``task:12:yellow``, ``stage:3:red``,
``commitment:7:2026-03-05:red`` …); it is inserted once, and a unique violation means another
scan fired it already. System actions (default approvals, suspensions) are conditional
updates under the stage lock. So two supervisors running at once fire and act exactly once,
whatever lease they think they hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from approval.company.review import default_approve_setup_task
from approval.core import audit
from approval.core.calendar import next_year_warning, working_calendar
from approval.core.dates import local_day
from approval.core.errors import DomainError
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.projects.tasks import (
    STAGE_SUSPENDED,
    default_approve,
    stop_clocks,
)
from approval.review.rules import OPEN
from storage.enums import (
    InspectionKind,
    InspectionStatus,
    MaterialStatus,
    SetupStatus,
    StageStatus,
    WarningLevel,
)
from storage.models import (
    Inspection,
    ItemMaterial,
    Material,
    SetupMaterial,
    SetupTask,
    Stage,
    SupervisionEvent,
    Task,
)

log = logging.getLogger("onewindow.supervision")

KIND_TASK = "task"  # a department task near or past its deadline
KIND_STAGE = "stage"  # a stage near or past its deadline
KIND_COMMITMENT = "commitment"  # a 容缺 commitment near or past its due date
KIND_FORMAL_OPINION = "formal_opinion"  # the formal opinion after 超时默认 is overdue
KIND_DEFAULT_APPROVAL = "default_approval"  # the system approved a late task (超时默认)
KIND_CALENDAR = "calendar"  # a deadline needs a year whose holidays are not loaded
KIND_CALENDAR_AHEAD = "calendar_ahead"  # the year ends soon and next year's is not loaded
KIND_SETUP_TASK = "setup_task"  # a department's permit of a company setup near or past due
KIND_SITE_CHECK = "site_check"  # a site check (现场踏勘) near or past its 3 working days
KINDS = (
    KIND_TASK,
    KIND_STAGE,
    KIND_COMMITMENT,
    KIND_FORMAL_OPINION,
    KIND_DEFAULT_APPROVAL,
    KIND_CALENDAR,
    KIND_CALENDAR_AHEAD,
    KIND_SETUP_TASK,
    KIND_SITE_CHECK,
)
LEVEL_TAGS = {WarningLevel.YELLOW: "【黄色预警】", WarningLevel.RED: "【红色预警】"}


@dataclass(frozen=True)
class SupervisionSettings:
    warn_working_days: int = 1  # YELLOW when the deadline is at most this many working days away

    def __post_init__(self) -> None:
        if self.warn_working_days < 0:
            raise ValueError(f"warn_working_days must be 0 or more, got {self.warn_working_days}")


@dataclass
class _Candidate:
    key: str
    kind: str
    level: WarningLevel | None
    entity_type: str
    entity_id: int
    project_id: int | None
    department_id: int | None
    message: str


@dataclass
class _Scan:
    now: datetime
    settings: SupervisionSettings
    calendar: WorkingCalendar
    fired: list[SupervisionEvent] = field(default_factory=list)

    @property
    def today(self) -> date:
        return local_day(self.now)

    @property
    def horizon(self) -> date:
        """No deadline after this day can be within the warning window (holidays included)."""
        return self.today + timedelta(days=7 * self.settings.warn_working_days + 14)

    def level_of(self, deadline: date) -> WarningLevel | None:
        """RED after the deadline, YELLOW within the warning window; may raise
        CalendarUnknownError."""
        if deadline < self.today:
            return WarningLevel.RED
        if self.calendar.working_days_between(self.today, deadline) <= (
            self.settings.warn_working_days
        ):
            return WarningLevel.YELLOW
        return None

    async def fire(self, candidates: list[_Candidate]) -> None:
        """Insert each event not fired yet; a unique violation means someone else fired it."""
        if not candidates:
            return
        keys = [c.key for c in candidates]
        stored = await SupervisionEvent.filter(key__in=keys).values_list("key", flat=True)
        known = {str(key) for key in stored}
        for c in candidates:
            if c.key in known:
                continue
            known.add(c.key)
            try:
                async with in_transaction():
                    event = await SupervisionEvent.create(
                        key=c.key,
                        kind=c.kind,
                        level=c.level,
                        entity_type=c.entity_type,
                        entity_id=c.entity_id,
                        project_id=c.project_id,
                        department_id=c.department_id,
                        message=c.message,
                        at=self.now,
                    )
            except IntegrityError:
                continue
            self.fired.append(event)

    async def calendar_unknown(self, year: int) -> None:
        await self.fire(
            [
                _Candidate(
                    key=f"calendar:{year}:red",
                    kind=KIND_CALENDAR,
                    level=WarningLevel.RED,
                    entity_type="calendar",
                    entity_id=year,
                    project_id=None,
                    department_id=None,
                    message=(
                        f"【红色预警】{year} 年法定节假日安排尚未载入, 期限在 {year} 年的工作日"
                        "无法计算, 相关预警与超时默认暂停; 请管理员执行 onewindow load-holidays "
                        "载入该年节假日"
                    ),
                )
            ]
        )

    async def next_year(self) -> None:
        """Before the year ends: warn the supervisors once that next year is not loaded."""
        warning = await next_year_warning(today=self.today)
        if warning is None:
            return
        year = self.today.year + 1
        before = len(self.fired)
        await self.fire(
            [
                _Candidate(
                    key=f"calendar:{year}:ahead",
                    kind=KIND_CALENDAR_AHEAD,
                    level=WarningLevel.YELLOW,
                    entity_type="calendar",
                    entity_id=year,
                    project_id=None,
                    department_id=None,
                    message=(
                        f"【黄色预警】{year} 年法定节假日安排尚未载入, 期限跨入 {year} 年的受理和"
                        f"审批将被拒绝; 请管理员在年底前执行 onewindow load-holidays 载入 {year} "
                        "年节假日"
                    ),
                )
            ]
        )
        if len(self.fired) > before:
            log.warning("%s", warning)

    async def warn(
        self, rows: list[tuple[date, str, str, str, int, int | None, int | None, str]]
    ) -> None:
        """Fire a warning per (deadline, key prefix, kind, entity type, entity id, project,
        department, what) whose deadline is near (yellow) or past (red)."""
        candidates: list[_Candidate] = []
        for deadline, prefix, kind, entity_type, entity_id, project_id, department_id, what in rows:
            try:
                level = self.level_of(deadline)
            except CalendarUnknownError as exc:
                await self.calendar_unknown(exc.year)
                continue
            if level is None:
                continue
            state = "将于 {} 到期" if level is WarningLevel.YELLOW else "已于 {} 到期, 仍未完成"
            candidates.append(
                _Candidate(
                    key=f"{prefix}:{entity_id}:{level.value}",
                    kind=kind,
                    level=level,
                    entity_type=entity_type,
                    entity_id=entity_id,
                    project_id=project_id,
                    department_id=department_id,
                    message=f"{LEVEL_TAGS[level]}{what} {state.format(deadline)}",
                )
            )
        await self.fire(candidates)

    async def setup_tasks(self) -> None:
        """Company setups: 超时默认 where the permit allows it, then warnings of open tasks."""
        due = await SetupTask.filter(
            status__in=OPEN,
            paused_at__isnull=True,
            deadline__lt=self.today,
            setup__status=SetupStatus.IN_REVIEW,
            permit__default_approval=True,
        ).values_list("id", flat=True)
        for task_id in sorted(int(i) for i in due):  # type: ignore[call-overload]
            task = await default_approve_setup_task(task_id=task_id, now=self.now)
            if task is None:
                continue
            await task.fetch_related("permit", "department", "setup")
            await self.fire(
                [
                    _Candidate(
                        key=f"setup_task:{task.id}:default_approved",
                        kind=KIND_DEFAULT_APPROVAL,
                        level=None,
                        entity_type="setup_task",
                        entity_id=task.id,
                        project_id=task.setup.project_id,
                        department_id=task.department_id,
                        message=(
                            f"【超时默认】企业设立 {task.setup.company_name}({task.setup.code}) 的 "
                            f"{task.permit.name} ({task.department.short_name}) 于 "
                            f"{task.deadline} 到期未作决定, 已按超时默认通过"
                        ),
                    )
                ]
            )
        rows = await SetupTask.filter(
            status__in=OPEN,
            paused_at__isnull=True,  # a stopped clock neither warns nor runs late
            setup__status=SetupStatus.IN_REVIEW,
            deadline__lte=self.horizon,
        ).select_related("permit", "department", "setup")
        await self.warn(
            [
                (
                    t.deadline,
                    # A round after 补正 warns again: its keys name the round (the first's
                    # keep their shape).
                    "setup_task" if t.round == 1 else f"setup_task:r{t.round}",
                    KIND_SETUP_TASK,
                    "setup_task",
                    t.id,
                    t.setup.project_id,
                    t.department_id,
                    f"企业设立 {t.setup.company_name}({t.setup.code}) 的 {t.permit.name} "
                    f"({t.department.short_name})",
                )
                for t in rows
            ]
        )

    async def setup_commitments(self) -> None:
        """容缺 of company setups: a promised material near or past its due date."""
        rows = await SetupMaterial.filter(
            status=MaterialStatus.COMMITTED,
            commitment_due__lte=self.horizon,
            setup__status=SetupStatus.IN_REVIEW,
        ).select_related("material_type", "setup")
        await self.warn(
            [
                (
                    m.commitment_due,
                    "setup_commitment",
                    KIND_COMMITMENT,
                    "setup_material",
                    m.id,
                    m.setup.project_id,
                    None,
                    f"企业设立 {m.setup.company_name}({m.setup.code}) 容缺承诺补交的"
                    f"{m.material_type.name} (承诺人 {m.commitment_signed_by})",
                )
                for m in rows
                if m.commitment_due is not None
            ]
        )

    async def site_checks(self) -> None:
        """Site checks (现场踏勘) are due within their working days of the request: every
        site-check inspection not yet closed, of a construction project or of a company
        setup's permit. A setup's check warns under the key it had before its checks became
        inspections (``setup_site_check:<task id>``, nothing fires twice), and a later round
        under a key naming the round, as a re-accepted permit's warnings do."""
        inspections = await Inspection.filter(
            kind=InspectionKind.SITE_CHECK,
            status__in=(InspectionStatus.SCHEDULED, InspectionStatus.IN_PROGRESS),
            due__lte=self.horizon,
        ).select_related("project", "setup_task__permit", "setup_task__department", "setup")
        rows: list[tuple[date, str, str, str, int, int | None, int | None, str]] = []
        for i in inspections:
            if i.project is not None:
                rows.append(
                    (
                        i.due,
                        "site_check",
                        KIND_SITE_CHECK,
                        "inspection",
                        i.id,
                        i.project_id,
                        None,
                        f"{i.project.name} 的现场踏勘(第 {i.round} 轮)",
                    )
                )
                continue
            task, setup = i.setup_task, i.setup
            if task is None or setup is None or setup.status is not SetupStatus.IN_REVIEW:
                continue
            rows.append(
                (
                    i.due,
                    "setup_site_check" if i.round == 1 else f"setup_site_check:r{i.round}",
                    KIND_SITE_CHECK,
                    "setup_task",
                    task.id,
                    setup.project_id,
                    task.department_id,
                    f"企业设立 {setup.company_name}({setup.code}) 的 {task.permit.name} 现场踏勘 "
                    f"({task.department.short_name})",
                )
            )
        await self.warn(rows)

    # --- 超时默认 ----------------------------------------------------------------------------

    async def default_approvals(self) -> None:
        due_ids = await Task.filter(
            status__in=OPEN,
            paused_at__isnull=True,
            deadline__lt=self.today,
            stage__status=StageStatus.IN_REVIEW,
            item__default_approval=True,
        ).values_list("id", flat=True)
        if not due_ids:
            return
        try:  # the formal opinion is due one working day later: that day must be countable
            self.calendar.add_working_days(self.today, 1)
        except CalendarUnknownError as exc:
            await self.calendar_unknown(exc.year)
            return
        for task_id in sorted(int(i) for i in due_ids):  # type: ignore[call-overload]
            try:
                task = await default_approve(task_id=task_id, now=self.now)
            except DomainError as error:
                log.warning("default approval of task %s failed: %s", task_id, error.message)
                continue
            if task is None:  # another supervisor did it, or it is no longer due
                continue
            task = await Task.get(id=task.id).select_related("item", "department", "stage__project")
            project = task.stage.project
            await self.fire(
                [
                    _Candidate(
                        key=f"task:{task.id}:default_approved",
                        kind=KIND_DEFAULT_APPROVAL,
                        level=None,
                        entity_type="task",
                        entity_id=task.id,
                        project_id=project.id,
                        department_id=task.department_id,
                        message=(
                            f"【超时默认】{project.name} 的 {task.item.name} "
                            f"({task.department.short_name}) 于 {task.deadline} 到期未作决定, "
                            f"已按超时默认通过; 部门须于 {task.formal_opinion_due} 前补交正式意见"
                        ),
                    )
                ]
            )

    # --- warnings ----------------------------------------------------------------------------

    async def tasks(self) -> None:
        rows = await Task.filter(
            status__in=OPEN,
            paused_at__isnull=True,
            stage__status=StageStatus.IN_REVIEW,
            deadline__lte=self.horizon,
        ).select_related("item", "department", "stage__project")
        candidates: list[_Candidate] = []
        for task in rows:
            if task.round != task.stage.round:
                continue
            try:
                level = self.level_of(task.deadline)
            except CalendarUnknownError as exc:
                await self.calendar_unknown(exc.year)
                continue
            if level is None:
                continue
            project = task.stage.project
            what = f"{project.name} 的 {task.item.name} ({task.department.short_name})"
            if level is WarningLevel.YELLOW:
                message = f"{LEVEL_TAGS[level]}{what} 将于 {task.deadline} 到期"
            else:
                message = f"{LEVEL_TAGS[level]}{what} 已于 {task.deadline} 到期, 仍未作出决定"
                if not task.item.default_approval:
                    message += "; 该事项依法不适用超时默认, 须部门立即作出决定"
            candidates.append(
                _Candidate(
                    key=f"task:{task.id}:{level.value}",
                    kind=KIND_TASK,
                    level=level,
                    entity_type="task",
                    entity_id=task.id,
                    project_id=project.id,
                    department_id=task.department_id,
                    message=message,
                )
            )
        await self.fire(candidates)

    async def formal_opinions(self) -> None:
        rows = await Task.filter(
            default_approved=True,
            formal_opinion_at__isnull=True,
            formal_opinion_due__lt=self.today,
        ).select_related("item", "department", "stage__project")
        await self.fire(
            [
                _Candidate(
                    key=f"formal_opinion:{task.id}:red",
                    kind=KIND_FORMAL_OPINION,
                    level=WarningLevel.RED,
                    entity_type="task",
                    entity_id=task.id,
                    project_id=task.stage.project.id,
                    department_id=task.department_id,
                    message=(
                        f"【红色预警】{task.stage.project.name} 的 {task.item.name} "
                        f"({task.department.short_name}) 已超时默认通过, 正式意见应于 "
                        f"{task.formal_opinion_due} 前补交, 至今未交"
                    ),
                )
                for task in rows
            ]
        )

    async def stages(self) -> None:
        rows = await Stage.filter(
            status=StageStatus.IN_REVIEW, deadline__isnull=False, deadline__lte=self.horizon
        ).select_related("definition", "project")
        candidates: list[_Candidate] = []
        for stage in rows:
            assert stage.deadline is not None
            try:
                level = self.level_of(stage.deadline)
            except CalendarUnknownError as exc:
                await self.calendar_unknown(exc.year)
                continue
            if level is None:
                continue
            what = f"{stage.project.name} 的 {stage.definition.name} 阶段"
            state = "将于 {} 到期" if level is WarningLevel.YELLOW else "已于 {} 到期, 仍未办结"
            candidates.append(
                _Candidate(
                    key=f"stage:{stage.id}:{stage.round}:{level.value}"
                    if stage.round > 1
                    else f"stage:{stage.id}:{level.value}",
                    kind=KIND_STAGE,
                    level=level,
                    entity_type="stage",
                    entity_id=stage.id,
                    project_id=stage.project_id,
                    department_id=stage.definition.lead_department_id,
                    message=f"{LEVEL_TAGS[level]}{what} {state.format(stage.deadline)}",
                )
            )
        await self.fire(candidates)

    # --- 容缺 commitments --------------------------------------------------------------------

    async def commitments(self) -> None:
        rows = await Material.filter(
            status=MaterialStatus.COMMITTED,
            commitment_due__isnull=False,
            commitment_due__lte=self.horizon,
        ).select_related("material_type", "project")
        candidates: list[_Candidate] = []
        for material in rows:
            due = material.commitment_due
            assert due is not None
            try:
                level = self.level_of(due)
            except CalendarUnknownError as exc:
                await self.calendar_unknown(exc.year)
                continue
            if level is None:
                continue
            stages = await _stages_needing(material)
            if level is WarningLevel.RED:
                for stage in stages:
                    if stage.status is StageStatus.IN_REVIEW:
                        await _suspend(stage_id=stage.id, material_id=material.id, now=self.now)
                stages = [await Stage.get(id=s.id).select_related("definition") for s in stages]
            what = (
                f"{material.project.name} 的容缺材料 {material.material_type.name}"
                f"(承诺人 {material.commitment_signed_by})"
            )
            if level is WarningLevel.YELLOW:
                message = f"{LEVEL_TAGS[level]}{what} 承诺于 {due} 前补交"
            else:
                message = f"{LEVEL_TAGS[level]}{what} 承诺于 {due} 前补交, 逾期未交"
                suspended = [s.definition.name for s in stages if s.status is StageStatus.SUSPENDED]
                if suspended:
                    message += f", {'、'.join(suspended)} 阶段已中止, 材料补齐后恢复"
            candidates.append(
                _Candidate(
                    key=f"commitment:{material.id}:{due.isoformat()}:{level.value}",
                    kind=KIND_COMMITMENT,
                    level=level,
                    entity_type="material",
                    entity_id=material.id,
                    project_id=material.project_id,
                    department_id=stages[0].definition.lead_department_id if stages else None,
                    message=message,
                )
            )
        await self.fire(candidates)


async def _stages_needing(material: Material) -> list[Stage]:
    """The project's stages in review (or suspended) whose current tasks need the material."""
    stages = await Stage.filter(
        project_id=material.project_id,
        status__in=(StageStatus.IN_REVIEW, StageStatus.SUSPENDED),
    ).select_related("definition")
    needing: list[Stage] = []
    for stage in stages:
        items = await Task.filter(stage_id=stage.id, round=stage.round).values_list(
            "item_id", flat=True
        )
        if await ItemMaterial.filter(
            item_id__in=list(items), material_type_id=material.material_type_id
        ).exists():
            needing.append(stage)
    return needing


async def _suspend(*, stage_id: int, material_id: int, now: datetime) -> bool:
    """中止: the stage waits for an overdue 容缺 material; its running clocks stop.

    Conditional and under the locks (material, then stage, as submit_material takes them),
    so it happens once, and never after the material arrived. True when this call did it.
    """
    today = local_day(now)
    async with in_transaction():
        material = await Material.select_for_update().get(id=material_id)
        if (
            material.status is not MaterialStatus.COMMITTED
            or material.commitment_due is None
            or material.commitment_due >= today
        ):
            return False
        stage = await Stage.select_for_update().get(id=stage_id)
        if stage.status is not StageStatus.IN_REVIEW:
            return False
        stage.status = StageStatus.SUSPENDED
        await stage.save(update_fields=["status"])
        open_tasks = await Task.select_for_update().filter(
            stage_id=stage.id, round=stage.round, status__in=OPEN
        )
        material_type = await material.material_type
        stopped = await stop_clocks(
            tasks=list(open_tasks),
            reason=STAGE_SUSPENDED,
            note=f"容缺材料 {material_type.name} 逾期未交, 阶段中止",
            now=now,
            actor_id=None,
            project_id=stage.project_id,
        )
        await audit.record(
            actor_id=None,
            action="stage.suspend",
            entity_type="stage",
            entity_id=stage.id,
            project_id=stage.project_id,
            before={"status": StageStatus.IN_REVIEW.value},
            after={
                "status": StageStatus.SUSPENDED.value,
                "materialType": material_type.code,
                "commitmentDue": material.commitment_due.isoformat(),
                "stoppedClocks": sorted(stopped),
            },
        )
    return True


async def supervise(*, now: datetime, settings: SupervisionSettings) -> list[SupervisionEvent]:
    """One scan of everything with a deadline; returns the events this scan fired."""
    scan = _Scan(now=now, settings=settings, calendar=await working_calendar())
    await scan.next_year()
    await scan.default_approvals()
    await scan.tasks()
    await scan.formal_opinions()
    await scan.stages()
    await scan.commitments()
    await scan.setup_tasks()
    await scan.setup_commitments()
    await scan.site_checks()
    return scan.fired
