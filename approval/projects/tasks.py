"""Department tasks of construction stages: reviewed in parallel (分散审核、同步审批); the stage
closes on the last one.

A thin layer on the review engine (:mod:`approval.review.engine`), which holds the one path of
every change to a task: lock the stage row first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
serialises writers), then the task, then check, write, audit and fan in, so decisions, 超时默认,
clock stops and supplement requests all queue up and the stage closes exactly once. What is
construction's own (:class:`StageReview`): a stage suspended (中止) for an overdue 容缺
commitment holds every action, only the stage's current round counts, :class:`TaskPause` rows
keep a stopped clock's history, a passed stage 4 (联合验收) completes the project, and the late
department files a formal opinion after 超时默认.
"""

from __future__ import annotations

from datetime import date, datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, require_task_scope
from approval.core.calendar import calendar_for
from approval.core.dates import CHINA, local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.review.engine import (
    CaseReview,
    PauseReason,
    Verdict,
    calendar_error,
    supplement_material,
    supplement_reason,
    written_opinion,
)
from approval.review.rules import DEFAULT_OPINION, OPEN, PASSING
from storage.enums import Decision, MaterialStatus, ProjectStatus, Role, StageStatus
from storage.models import (
    Material,
    Project,
    Stage,
    SupplementRequest,
    Task,
    TaskPause,
)

FORMAL_OPINION_DAYS = 1  # working days the late department has to file its formal opinion

# The system stops every open clock of a stage suspended (中止) for an overdue 容缺 commitment.
STAGE_SUSPENDED = "stage_suspended"


class StageReview(CaseReview[Stage, Task]):
    """A construction stage's current round under the review engine: a stage suspended for
    an overdue 容缺 commitment holds every action; the last decision completes the stage, and
    a passed stage 4 (joint acceptance) completes the project."""

    entity = "task"
    label = "task"

    async def lock(self, task: Task) -> tuple[Stage, Task]:
        stage = await Stage.select_for_update().get(id=task.stage_id)
        current = await Task.select_for_update().get(id=task.id)
        return stage, current

    def in_review(self, case: Stage) -> bool:
        return case.status is StageStatus.IN_REVIEW

    def refuse_held(self, case: Stage, task_id: int) -> None:
        if case.status is StageStatus.SUSPENDED:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the stage of task {task_id} is suspended (中止) because a 容缺 commitment "
                "passed its due date without the material; it resumes when the applicant "
                "delivers the material, act on the task after that",
                field="taskId",
            )

    def default_due(self, case: Stage, task: Task, today: date) -> bool:
        return super().default_due(case, task, today) and task.round == case.round

    async def round_rows(self, case: Stage) -> list[tuple[str, str | None]]:
        rows = await Task.filter(stage_id=case.id, round=case.round).values_list(
            "status", "decision"
        )
        return [(status, decision) for status, decision in rows]

    async def clock_stopped(self, task: Task, *, reason: str, note: str, now: datetime) -> None:
        await TaskPause.create(
            task_id=task.id, reason=reason, note=note, started_at=now, ended_at=None
        )

    async def _open_pause(self, task: Task) -> TaskPause | None:
        stops = TaskPause.filter(task_id=task.id, ended_at__isnull=True)
        return await stops.order_by("-id").first()

    async def open_stop(self, task: Task) -> tuple[datetime, str | None]:
        pause = await self._open_pause(task)
        if pause is None:
            assert task.paused_at is not None
            return task.paused_at, None
        return pause.started_at, pause.reason

    async def clock_restarted(self, task: Task, *, now: datetime, working_days: int) -> None:
        pause = await self._open_pause(task)
        if pause is not None:
            pause.ended_at = now
            pause.working_days = working_days
            await pause.save(update_fields=["ended_at", "working_days"])

    async def resolve_supplements(self, task: Task, *, now: datetime) -> None:
        await SupplementRequest.filter(task_id=task.id, resolved_at__isnull=True).update(
            resolved_at=now
        )

    async def close(
        self, *, case: Stage, outcome: Decision, now: datetime, actor_id: int | None
    ) -> None:
        case.status = StageStatus.COMPLETED
        case.outcome = outcome
        case.completed_at = now
        await case.save(update_fields=["status", "outcome", "completed_at"])
        await audit.record(
            actor_id=actor_id,
            action="stage.complete",
            entity_type="stage",
            entity_id=case.id,
            project_id=case.project_id,
            before={"status": StageStatus.IN_REVIEW.value},
            after={"status": case.status.value, "outcome": outcome.value},
        )
        definition = await case.definition
        if definition.order == 4 and outcome in PASSING:
            project_id = case.project_id
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


STAGES = StageReview()


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


# --- the clock -------------------------------------------------------------------------------


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

    The caller holds the locks. Audited as ``task.resume``; returns the ids of the tasks
    whose clock restarted.
    """
    return await STAGES.resume_clocks(
        tasks=tasks,
        reasons=reasons,
        now=now,
        calendar=calendar,
        actor_id=actor_id,
        project_id=project_id,
    )


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
        await STAGES.stop_clock(
            task=task, reason=reason, note=note, now=now, actor_id=actor_id, project_id=project_id
        )
        stopped.append(task.id)
    return stopped


# --- decisions -------------------------------------------------------------------------------


async def decide_task(
    *, viewer: Viewer, task_id: int, decision: Decision, opinion: str, now: datetime
) -> Task:
    task = await _own_task(viewer, task_id)
    text = written_opinion(decision, opinion)
    verdict = Verdict(
        decision=decision, opinion=text, actor_id=viewer.user_id, action="task.decide"
    )
    return await STAGES.decide(task=task, verdict=verdict, now=now)


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
        stage, current = await STAGES.lock(task)
        if not STAGES.default_due(stage, current, today):
            return None
        current.formal_opinion_due = formal_due
        await STAGES.record(
            case=stage,
            task=current,
            verdict=Verdict(
                decision=Decision.APPROVED,
                opinion=DEFAULT_OPINION,
                actor_id=None,
                action="task.default_approve",
                default_approved=True,
                after={
                    "defaultApproved": True,
                    "department": task.department.name,
                    "deadline": current.deadline.isoformat(),
                    "formalOpinionDue": formal_due.isoformat(),
                },
            ),
            now=now,
            calendar=calendar,
        )
    return current


async def file_formal_opinion(*, viewer: Viewer, task_id: int, opinion: str, now: datetime) -> Task:
    """The late department files its formal opinion on a task approved by 超时默认."""
    task = await _own_task(viewer, task_id)
    text = opinion.strip()
    if not text:
        raise invalid("write the department's formal opinion on the item", field="opinion")
    async with in_transaction():
        _, current = await STAGES.lock(task)
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
    return await STAGES.pause(task=task, reason=reason, note=note, now=now, actor_id=viewer.user_id)


async def resume_task(*, viewer: Viewer, task_id: int, now: datetime) -> Task:
    """Restart the task's clock; the deadline moves later by the paused working days.

    Resuming a clock stopped for a supplement declares the supplement received: the task
    is pending again and its open supplement requests are resolved.
    """
    task = await _own_task(viewer, task_id)
    return await STAGES.resume(task=task, now=now, actor_id=viewer.user_id)


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
    text = supplement_reason(reason)
    material_type = await supplement_material(material_type_code)
    project_id = task.stage.project.id
    async with in_transaction():
        stage, current = await STAGES.lock(task)
        STAGES.refuse_held(stage, task_id)
        STAGES.require_pending(current, task_id)
        stopped = await STAGES.supplement_requested(task=current, reason=text, now=now)
        request = await SupplementRequest.create(
            task_id=current.id,
            material_type=material_type,
            reason=text,
            requested_by_id=viewer.user_id,
        )
        if material_type is not None:
            await Material.filter(project_id=project_id, material_type_id=material_type.id).update(
                status=MaterialStatus.REJECTED, rejection_reason=text
            )
        await STAGES.audit_supplement(
            task=current,
            reason=text,
            material_type_code=material_type_code,
            clock_stopped=stopped,
            actor_id=viewer.user_id,
            project_id=project_id,
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
            await STAGES.record(
                case=stage,
                task=task,
                verdict=Verdict(
                    decision=Decision.APPROVED,
                    opinion=opinion,
                    actor_id=actor_id,
                    action="task.inspection_approve",
                    after={"inspection": inspection_id},
                ),
                now=now,
                calendar=None,
            )
            approved.append(task)
    return approved
