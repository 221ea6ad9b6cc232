"""Department tasks: reviewed in parallel (分散审核、同步审批); the stage closes on the last one.

Every change to a task takes the same path: lock the stage row first (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite serialises writers), then the task, then check and write. Decisions by a
reviewer, 超时默认 by the system, clock stops and supplement requests all queue up on that lock,
so the fan-in that closes the stage always sees every other committed change, exactly once.

Clock stops (行政许可法 Art. 45): expert review, hearing, testing and supplement requests stop a
task's clock. When it restarts, the working days it stood still move the deadline later by as
many working days; :class:`~storage.models.TaskPause` rows keep the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, require_task_scope
from approval.core.calendar import calendar_for
from approval.core.dates import CHINA, local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.review.rules import DEFAULT_OPINION, OPEN, most_severe, resumed_deadline
from storage.enums import Decision, MaterialStatus, ProjectStatus, Role, StageStatus, TaskStatus
from storage.models import (
    Material,
    MaterialType,
    Project,
    Stage,
    SupplementRequest,
    Task,
    TaskPause,
)

FORMAL_OPINION_DAYS = 1  # working days the late department has to file its formal opinion


class PauseReason(StrEnum):
    """Why a reviewer stops a task's clock (行政许可法 Art. 45)."""

    EXPERT_REVIEW = "expert_review"  # 专家评审
    HEARING = "hearing"  # 听证
    TESTING = "testing"  # 检验、检测、检疫
    SUPPLEMENT = "supplement"  # 补正材料


# The system stops every open clock of a stage suspended (中止) for an overdue 容缺 commitment.
STAGE_SUSPENDED = "stage_suspended"


def calendar_error(exc: CalendarUnknownError, *, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field=field)


async def _own_task(viewer: Viewer, task_id: int) -> Task:
    require_role(viewer, Role.REVIEWER)
    task = await Task.get_or_none(id=task_id).select_related("department", "stage__project")
    if task is None:
        raise not_found("task", task_id, field="taskId")
    require_task_scope(
        viewer,
        what="task",
        task_id=task_id,
        department_id=task.department_id,
        department_name=task.department.name,
        region_id=task.stage.project.region_id,
    )
    return task


async def _lock(task: Task) -> tuple[Stage, Task]:
    """Inside a transaction: the stage row, then the task row, locked in that order."""
    stage = await Stage.select_for_update().get(id=task.stage_id)
    current = await Task.select_for_update().get(id=task.id)
    return stage, current


def _refuse_suspended(stage: Stage, task_id: int) -> None:
    if stage.status is StageStatus.SUSPENDED:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"the stage of task {task_id} is suspended (中止) because a 容缺 commitment passed "
            "its due date without the material; it resumes when the applicant delivers the "
            "material, act on the task after that",
            field="taskId",
        )


# --- the clock -------------------------------------------------------------------------------


async def _stop_clock(*, task: Task, reason: str, note: str, now: datetime) -> TaskPause:
    """Stop a running clock (the caller holds the locks and checked ``paused_at is None``)."""
    task.paused_at = now
    await task.save(update_fields=["paused_at"])
    return await TaskPause.create(
        task_id=task.id, reason=reason, note=note, started_at=now, ended_at=None
    )


async def _restart_clock(
    *, task: Task, now: datetime, calendar: WorkingCalendar
) -> tuple[TaskPause | None, date]:
    """Restart a stopped clock: the deadline moves later by the working days it stood still.

    Returns the closed pause (None if the clock was running) and the deadline before.
    """
    before = task.deadline
    if task.paused_at is None:
        return None, before
    pause = await TaskPause.filter(task_id=task.id, ended_at__isnull=True).order_by("-id").first()
    started = pause.started_at if pause is not None else task.paused_at
    task.deadline, days = resumed_deadline(
        deadline=task.deadline, stopped=started, resumed=now, calendar=calendar
    )
    task.paused_at = None
    await task.save(update_fields=["deadline", "paused_at"])
    if pause is not None:
        pause.ended_at = now
        pause.working_days = days
        await pause.save(update_fields=["ended_at", "working_days"])
    return pause, before


async def _open_pause_reason(task: Task) -> str | None:
    if task.paused_at is None:
        return None
    pause = await TaskPause.filter(task_id=task.id, ended_at__isnull=True).order_by("-id").first()
    return pause.reason if pause is not None else None


async def restart_clocks(
    *,
    tasks: list[Task],
    reasons: tuple[str, ...] | None,
    now: datetime,
    calendar: WorkingCalendar,
    actor_id: int | None,
    project_id: int,
) -> list[int]:
    """Restart the clocks of ``tasks`` stopped for one of ``reasons`` (None: any reason).

    The caller holds the locks.

    Audited as ``task.resume``; returns the ids of the tasks whose clock restarted.
    """
    restarted: list[int] = []
    for task in tasks:
        reason = await _open_pause_reason(task)
        if task.paused_at is None or (reasons is not None and reason not in reasons):
            continue
        pause, before = await _restart_clock(task=task, now=now, calendar=calendar)
        await audit.record(
            actor_id=actor_id,
            action="task.resume",
            entity_type="task",
            entity_id=task.id,
            project_id=project_id,
            before={"paused": True, "reason": reason, "deadline": before.isoformat()},
            after={
                "paused": False,
                "deadline": task.deadline.isoformat(),
                "pausedWorkingDays": pause.working_days if pause else 0,
            },
        )
        restarted.append(task.id)
    return restarted


async def stop_clocks(
    *,
    tasks: list[Task],
    reason: str,
    note: str,
    now: datetime,
    actor_id: int | None,
    project_id: int,
) -> list[int]:
    """Stop the running clocks of the open ``tasks`` (locks already held); audited."""
    stopped: list[int] = []
    for task in tasks:
        if task.paused_at is not None or task.status not in OPEN:
            continue
        await _stop_clock(task=task, reason=reason, note=note, now=now)
        await audit.record(
            actor_id=actor_id,
            action="task.pause",
            entity_type="task",
            entity_id=task.id,
            project_id=project_id,
            before={"paused": False},
            after={"paused": True, "reason": reason, "note": note},
        )
        stopped.append(task.id)
    return stopped


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    decision: Decision
    opinion: str
    actor_id: int | None
    action: str
    default_approved: bool = False
    formal_opinion_due: date | None = None


async def _record_decision(
    *,
    stage: Stage,
    task: Task,
    project_id: int,
    what: _Decision,
    now: datetime,
    calendar: WorkingCalendar | None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a decision on a locked task and close the stage when it was the last one."""
    before = {"status": task.status.value}
    if task.paused_at is not None:  # a decision ends a stopped clock; the history keeps it
        if calendar is None:
            calendar = await calendar_for(local_day(task.paused_at), local_day(now))
        await _restart_clock(task=task, now=now, calendar=calendar)
    task.status = TaskStatus.DECIDED
    task.decision = what.decision
    task.opinion = what.opinion
    task.decided_at = now
    task.decided_by_id = what.actor_id
    task.default_approved = what.default_approved
    task.formal_opinion_due = what.formal_opinion_due
    await task.save()
    await audit.record(
        actor_id=what.actor_id,
        action=what.action,
        entity_type="task",
        entity_id=task.id,
        project_id=project_id,
        before=before,
        after={
            "status": task.status.value,
            "decision": what.decision.value,
            "opinion": task.opinion,
            **(after or {}),
        },
    )
    await _close_stage_if_done(stage=stage, now=now, actor_id=what.actor_id)


async def decide_task(
    *, viewer: Viewer, task_id: int, decision: Decision, opinion: str, now: datetime
) -> Task:
    task = await _own_task(viewer, task_id)
    if decision is not Decision.APPROVED and not opinion.strip():
        raise invalid(
            "a decision other than approved needs a written opinion stating why", field="opinion"
        )
    calendar = None
    if task.paused_at is not None:
        try:
            calendar = await calendar_for(local_day(task.paused_at), local_day(now), task.deadline)
        except CalendarUnknownError as exc:
            raise calendar_error(exc, field="taskId") from None
    async with in_transaction():
        # Lock the stage first: decisions on one stage queue up here, so the fan-in below
        # always sees every other committed decision.
        stage, current = await _lock(task)
        _refuse_suspended(stage, task_id)
        if current.status not in OPEN or stage.status is not StageStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.ALREADY_DECIDED,
                f"task {task_id} was already decided "
                f"({current.decision.value if current.decision else 'closed'}); "
                "a decision cannot be changed",
                field="taskId",
            )
        try:
            await _record_decision(
                stage=stage,
                task=current,
                project_id=task.stage.project.id,
                what=_Decision(
                    decision=decision,
                    opinion=opinion.strip(),
                    actor_id=viewer.user_id,
                    action="task.decide",
                ),
                now=now,
                calendar=calendar,
            )
        except CalendarUnknownError as exc:
            raise calendar_error(exc, field="taskId") from None
    return current


async def default_approve(*, task_id: int, now: datetime) -> Task | None:
    """超时默认: a task still undecided after its deadline counts as approved.

    Only while its clock runs, its stage is in review and its item allows it. Done by the
    system (no actor) on the same lock and fan-in path as :func:`decide_task`, so two
    supervisors running at once approve it once. Returns the task when this call approved
    it, None when it is not (or no longer) due. Raises CALENDAR_UNKNOWN when the formal
    opinion's due date falls in a year whose calendar is not loaded.
    """
    task = await Task.get_or_none(id=task_id).select_related("item", "department", "stage")
    if task is None or not task.item.default_approval:
        return None
    today = local_day(now)
    try:
        calendar = await calendar_for(today)
        formal_due = calendar.add_working_days(today, FORMAL_OPINION_DAYS)
    except CalendarUnknownError as exc:
        raise calendar_error(exc, field="taskId") from None
    async with in_transaction():
        stage, current = await _lock(task)
        if (
            current.status not in OPEN
            or current.paused_at is not None
            or current.deadline >= today
            or stage.status is not StageStatus.IN_REVIEW
            or current.round != stage.round
        ):
            return None
        await _record_decision(
            stage=stage,
            task=current,
            project_id=stage.project_id,
            what=_Decision(
                decision=Decision.APPROVED,
                opinion=DEFAULT_OPINION,
                actor_id=None,
                action="task.default_approve",
                default_approved=True,
                formal_opinion_due=formal_due,
            ),
            now=now,
            calendar=calendar,
            after={
                "defaultApproved": True,
                "department": task.department.name,
                "deadline": current.deadline.isoformat(),
                "formalOpinionDue": formal_due.isoformat(),
            },
        )
    return current


async def _close_stage_if_done(*, stage: Stage, now: datetime, actor_id: int | None) -> None:
    rows = await Task.filter(stage_id=stage.id, round=stage.round).values_list("status", "decision")
    if any(TaskStatus(status) in OPEN for status, _ in rows):
        return
    outcome = most_severe([Decision(d) for _, d in rows])
    stage.status = StageStatus.COMPLETED
    stage.outcome = outcome
    stage.completed_at = now
    await stage.save(update_fields=["status", "outcome", "completed_at"])
    await audit.record(
        actor_id=actor_id,
        action="stage.complete",
        entity_type="stage",
        entity_id=stage.id,
        project_id=stage.project_id,
        before={"status": StageStatus.IN_REVIEW.value},
        after={"status": stage.status.value, "outcome": outcome.value},
    )
    definition = await stage.definition
    if definition.order == 4 and outcome in (Decision.APPROVED, Decision.APPROVED_WITH_CONDITIONS):
        project_id = stage.project_id
        await Project.filter(id=project_id).update(status=ProjectStatus.COMPLETED)
        await audit.record(
            actor_id=actor_id,
            action="project.complete",
            entity_type="project",
            entity_id=project_id,
            project_id=project_id,
            before={"status": ProjectStatus.ACTIVE.value},
            after={"status": ProjectStatus.COMPLETED.value},
        )


async def file_formal_opinion(*, viewer: Viewer, task_id: int, opinion: str, now: datetime) -> Task:
    """The late department files its formal opinion on a task approved by 超时默认."""
    task = await _own_task(viewer, task_id)
    text = opinion.strip()
    if not text:
        raise invalid("write the department's formal opinion on the item", field="opinion")
    async with in_transaction():
        _, current = await _lock(task)
        if not current.default_approved:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"task {task_id} was not approved by 超时默认; a formal opinion is only filed "
                "after a default approval (decide the task instead)",
                field="taskId",
            )
        if current.formal_opinion_at is not None:
            raise DomainError(
                ErrorCode.ALREADY_DECIDED,
                f"the formal opinion of task {task_id} was already filed at "
                f"{current.formal_opinion_at.astimezone(CHINA):%Y-%m-%d %H:%M}; it cannot be "
                "changed",
                field="taskId",
            )
        before = {"opinion": current.opinion, "formalOpinionAt": None}
        current.opinion = f"{DEFAULT_OPINION}。正式意见: {text}"
        current.formal_opinion_at = now
        await current.save(update_fields=["opinion", "formal_opinion_at"])
        await audit.record(
            actor_id=viewer.user_id,
            action="task.file_formal_opinion",
            entity_type="task",
            entity_id=current.id,
            project_id=task.stage.project.id,
            before=before,
            after={
                "opinion": current.opinion,
                "formalOpinionAt": now.isoformat(),
                "late": current.formal_opinion_due is not None
                and local_day(now) > current.formal_opinion_due,
            },
        )
    return current


# --- clock stops -----------------------------------------------------------------------------


async def pause_task(
    *, viewer: Viewer, task_id: int, reason: PauseReason, note: str, now: datetime
) -> Task:
    """Stop the task's clock: expert review, hearing, testing or a supplement (Art. 45)."""
    task = await _own_task(viewer, task_id)
    try:
        reason = PauseReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in PauseReason)
        raise invalid(f"reason {reason!r} is not one of {allowed}", field="reason") from None
    async with in_transaction():
        stage, current = await _lock(task)
        _refuse_suspended(stage, task_id)
        if current.status not in OPEN or stage.status is not StageStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"task {task_id} is already decided; only an open task's clock can be stopped",
                field="taskId",
            )
        if current.paused_at is not None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of task {task_id} is already stopped since "
                f"{local_day(current.paused_at)}; resume it before stopping it for another "
                "reason",
                field="taskId",
            )
        await _stop_clock(task=current, reason=reason.value, note=note.strip(), now=now)
        await audit.record(
            actor_id=viewer.user_id,
            action="task.pause",
            entity_type="task",
            entity_id=current.id,
            project_id=task.stage.project.id,
            before={"paused": False},
            after={"paused": True, "reason": reason.value, "note": note.strip()},
        )
    return current


async def resume_task(*, viewer: Viewer, task_id: int, now: datetime) -> Task:
    """Restart the task's clock; the deadline moves later by the paused working days.

    Resuming a clock stopped for a supplement declares the supplement received: the task
    is pending again and its open supplement requests are resolved.
    """
    task = await _own_task(viewer, task_id)
    if task.paused_at is None:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"the clock of task {task_id} is running; there is nothing to resume",
            field="taskId",
        )
    try:
        calendar = await calendar_for(local_day(task.paused_at), local_day(now), task.deadline)
    except CalendarUnknownError as exc:
        raise calendar_error(exc, field="taskId") from None
    async with in_transaction():
        stage, current = await _lock(task)
        if current.paused_at is None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of task {task_id} is running; there is nothing to resume",
                field="taskId",
            )
        _refuse_suspended(stage, task_id)
        try:
            await restart_clocks(
                tasks=[current],
                reasons=None,
                now=now,
                calendar=calendar,
                actor_id=viewer.user_id,
                project_id=stage.project_id,
            )
        except CalendarUnknownError as exc:
            raise calendar_error(exc, field="taskId") from None
        if current.status is TaskStatus.SUPPLEMENT_REQUESTED:
            current.status = TaskStatus.PENDING
            await current.save(update_fields=["status"])
            await SupplementRequest.filter(task_id=current.id, resolved_at__isnull=True).update(
                resolved_at=now
            )
    return current


async def request_supplement(
    *,
    viewer: Viewer,
    task_id: int,
    reason: str,
    material_type_code: str | None,
    now: datetime,
) -> SupplementRequest:
    """补正: the department asks for a material again; the task waits until it arrives.

    The clock stops (reason ``supplement``) until the material arrives.
    """
    task = await _own_task(viewer, task_id)
    if not reason.strip():
        raise invalid("say what must be supplied and why", field="reason")
    material_type = None
    if material_type_code is not None:
        material_type = await MaterialType.get_or_none(code=material_type_code)
        if material_type is None:
            raise invalid(
                f"material type {material_type_code!r} is not in the catalog", field="materialType"
            )
    project_id = task.stage.project.id
    async with in_transaction():
        stage, current = await _lock(task)
        _refuse_suspended(stage, task_id)
        if current.status is not TaskStatus.PENDING:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"task {task_id} is "
                f"{current.status.value}; a supplement can only be requested "
                "while it is pending",
                field="taskId",
            )
        current.status = TaskStatus.SUPPLEMENT_REQUESTED
        await current.save(update_fields=["status"])
        paused = current.paused_at is None
        if paused:
            await _stop_clock(
                task=current, reason=PauseReason.SUPPLEMENT.value, note=reason.strip(), now=now
            )
        request = await SupplementRequest.create(
            task_id=current.id,
            material_type=material_type,
            reason=reason.strip(),
            requested_by_id=viewer.user_id,
        )
        if material_type is not None:
            await Material.filter(project_id=project_id, material_type_id=material_type.id).update(
                status=MaterialStatus.REJECTED, rejection_reason=reason.strip()
            )
        await audit.record(
            actor_id=viewer.user_id,
            action="task.request_supplement",
            entity_type="task",
            entity_id=current.id,
            project_id=project_id,
            before={"status": TaskStatus.PENDING.value},
            after={
                "status": current.status.value,
                "reason": reason.strip(),
                "materialType": material_type_code,
                "clockStopped": paused,
            },
        )
    return request


async def approve_after_inspection(
    *,
    stage_id: int,
    department_ids: list[int],
    inspection_id: int,
    opinion: str,
    actor_id: int | None,
    now: datetime,
) -> list[Task]:
    """联合验收 passed: approve the open tasks of ``department_ids`` in the stage's current
    round, on the same lock, record and fan-in path as :func:`decide_task` (the stage and the
    project complete when these were the last ones). Returns the tasks approved here.
    Raises CalendarUnknownError if a stopped clock must be restarted in an unknown year."""
    approved: list[Task] = []
    async with in_transaction():
        stage = await Stage.select_for_update().get(id=stage_id)
        if stage.status is not StageStatus.IN_REVIEW:
            return approved
        tasks = (
            await Task.select_for_update()
            .filter(
                stage_id=stage.id,
                round=stage.round,
                department_id__in=department_ids,
                status__in=list(OPEN),
            )
            .order_by("id")
        )
        for task in tasks:
            await _record_decision(
                stage=stage,
                task=task,
                project_id=stage.project_id,
                what=_Decision(
                    decision=Decision.APPROVED,
                    opinion=opinion,
                    actor_id=actor_id,
                    action="task.inspection_approve",
                ),
                now=now,
                calendar=None,
                after={"inspection": inspection_id},
            )
            approved.append(task)
    return approved
