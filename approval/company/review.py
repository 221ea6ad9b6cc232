"""同步审批: each department decides its permits of a setup in parallel; the last decision
closes the setup with the most severe one (the review engine's fan-in).

Every change locks the setup row first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
serialises writers), then the task: two departments deciding at once close the setup once.
A site check (现场踏勘) is recorded done by its department before the permit can be decided.
A department may stop a permit's clock (行政许可法 Art. 45: expert review, hearing, testing,
supplement); when it restarts, the deadline moves by the working days it stood still (the
review engine's arithmetic, as for construction tasks).
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, require_task_scope
from approval.core.calendar import calendar_for
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.workdays import CalendarUnknownError
from approval.review.rules import (
    DEFAULT_OPINION,
    OPEN,
    PASSING,
    most_severe,
    resumed_deadline,
)
from storage.enums import Decision, Role, SetupStatus, TaskStatus
from storage.models import CompanySetup, SetupTask

OPINION_MAX = 4000


async def _own_task(viewer: Viewer, task_id: int) -> SetupTask:
    require_role(viewer, Role.REVIEWER)
    task = await SetupTask.get_or_none(id=task_id).select_related("department", "permit", "setup")
    if task is None:
        raise not_found("setup task", task_id, field="taskId")
    require_task_scope(
        viewer,
        what="setup task",
        task_id=task_id,
        department_id=task.department_id,
        department_name=task.department.name,
        region_id=task.setup.region_id,
    )
    return task


async def _lock(task: SetupTask) -> tuple[CompanySetup, SetupTask]:
    setup = await CompanySetup.select_for_update().get(id=task.setup_id)
    current = await SetupTask.select_for_update().get(id=task.id)
    return setup, current


async def _close_if_done(*, setup: CompanySetup, now: datetime, actor_id: int | None) -> None:
    rows = await SetupTask.filter(setup_id=setup.id).values_list("status", "decision")
    if any(TaskStatus(status) in OPEN for status, _ in rows):
        return
    outcome = most_severe(Decision(d) for _, d in rows)
    setup.outcome = outcome
    setup.status = SetupStatus.READY if outcome in PASSING else SetupStatus.REFUSED
    setup.completed_at = now
    await setup.save(update_fields=["outcome", "status", "completed_at"])
    await audit.record(
        actor_id=actor_id,
        action="setup.complete",
        entity_type="setup",
        entity_id=setup.id,
        project_id=setup.project_id,
        before={"status": SetupStatus.IN_REVIEW.value},
        after={"status": setup.status.value, "outcome": outcome.value},
    )


CLOCK_REASONS = ("expert_review", "hearing", "testing", "supplement")


async def _restart(task: SetupTask, now: datetime) -> int:
    """Restart a stopped clock (the caller holds the locks); the working days it stood."""
    if task.paused_at is None:
        return 0
    try:
        calendar = await calendar_for(local_day(task.paused_at), local_day(now), task.deadline)
        task.deadline, days = resumed_deadline(
            deadline=task.deadline, stopped=task.paused_at, resumed=now, calendar=calendar
        )
    except CalendarUnknownError as exc:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field="taskId") from None
    task.paused_at = None
    task.pause_reason = ""
    await task.save(update_fields=["deadline", "paused_at", "pause_reason"])
    return days


async def stop_setup_clock(
    *, viewer: Viewer, task_id: int, reason: str, note: str, now: datetime
) -> SetupTask:
    """Stop the clock of an open permit, with a reason the law allows; audited."""
    task = await _own_task(viewer, task_id)
    if reason not in CLOCK_REASONS:
        raise invalid(
            f"a clock stops only for {', '.join(CLOCK_REASONS)}, not {reason!r}", field="reason"
        )
    if not note.strip():
        raise invalid("say what the clock waits for", field="note")
    async with in_transaction():
        setup, current = await _lock(task)
        if current.status not in OPEN or setup.status is not SetupStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.INVALID_STATE, f"setup task {task_id} is decided", field="taskId"
            )
        if current.paused_at is not None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of setup task {task_id} is already stopped "
                f"({current.pause_reason}); resume it first",
                field="taskId",
            )
        current.paused_at = now
        current.pause_reason = reason
        await current.save(update_fields=["paused_at", "pause_reason"])
        await audit.record(
            actor_id=viewer.user_id,
            action="setup_task.pause",
            entity_type="setup_task",
            entity_id=current.id,
            project_id=setup.project_id,
            before={"paused": False},
            after={"paused": True, "reason": reason, "note": note.strip()},
        )
    return current


async def resume_setup_clock(*, viewer: Viewer, task_id: int, now: datetime) -> SetupTask:
    """Restart a stopped clock: the deadline moves by the working days it stood; audited."""
    task = await _own_task(viewer, task_id)
    async with in_transaction():
        setup, current = await _lock(task)
        if current.paused_at is None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of setup task {task_id} is running",
                field="taskId",
            )
        before = {"paused": True, "reason": current.pause_reason, "deadline": str(current.deadline)}
        days = await _restart(current, now)
        await audit.record(
            actor_id=viewer.user_id,
            action="setup_task.resume",
            entity_type="setup_task",
            entity_id=current.id,
            project_id=setup.project_id,
            before=before,
            after={"paused": False, "deadline": str(current.deadline), "pausedWorkingDays": days},
        )
    return current


async def _record(
    *,
    setup: CompanySetup,
    task: SetupTask,
    decision: Decision,
    opinion: str,
    actor_id: int | None,
    action: str,
    now: datetime,
) -> None:
    await _restart(task, now)  # a decision ends a stopped clock
    task.status = TaskStatus.DECIDED
    task.decision = decision
    task.opinion = opinion
    task.decided_at = now
    task.decided_by_id = actor_id
    task.default_approved = actor_id is None
    await task.save()
    await audit.record(
        actor_id=actor_id,
        action=action,
        entity_type="setup_task",
        entity_id=task.id,
        project_id=setup.project_id,
        before={"status": TaskStatus.PENDING.value},
        after={"status": task.status.value, "decision": decision.value, "opinion": opinion},
    )
    await _close_if_done(setup=setup, now=now, actor_id=actor_id)


async def decide_setup_task(
    *, viewer: Viewer, task_id: int, decision: Decision, opinion: str, now: datetime
) -> SetupTask:
    """A department decides one permit of a setup; the last decision closes the setup."""
    task = await _own_task(viewer, task_id)
    text = opinion.strip()
    if decision is not Decision.APPROVED and not text:
        raise invalid(
            "a decision other than approved needs a written opinion stating why", field="opinion"
        )
    if len(text) > OPINION_MAX:
        raise invalid(f"the opinion is longer than {OPINION_MAX} characters", field="opinion")
    async with in_transaction():
        setup, current = await _lock(task)
        if current.status not in OPEN or setup.status is not SetupStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.ALREADY_DECIDED,
                f"setup task {task_id} was already decided; a decision cannot be changed",
                field="taskId",
            )
        if (
            decision in PASSING
            and current.site_check_due is not None
            and current.site_check_done_at is None
        ):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"{task.permit.name} needs a site check (现场踏勘) first; record it with "
                "recordSetupSiteCheck, then decide",
                field="taskId",
            )
        await _record(
            setup=setup,
            task=current,
            decision=decision,
            opinion=text,
            actor_id=viewer.user_id,
            action="setup_task.decide",
            now=now,
        )
    return current


async def record_site_check(*, viewer: Viewer, task_id: int, note: str, now: datetime) -> SetupTask:
    """The department records that its site check of this permit is done (with a note)."""
    task = await _own_task(viewer, task_id)
    async with in_transaction():
        setup, current = await _lock(task)
        if current.site_check_due is None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"{task.permit.name} needs no site check",
                field="taskId",
            )
        if current.site_check_done_at is not None or setup.status is not SetupStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the site check of setup task {task_id} is already recorded",
                field="taskId",
            )
        current.site_check_done_at = now
        await current.save(update_fields=["site_check_done_at"])
        await audit.record(
            actor_id=viewer.user_id,
            action="setup_task.site_check",
            entity_type="setup_task",
            entity_id=current.id,
            project_id=setup.project_id,
            before={"siteCheckDone": False},
            after={"siteCheckDone": True, "note": note.strip()},
        )
    return current


async def default_approve_setup_task(*, task_id: int, now: datetime) -> SetupTask | None:
    """超时默认: a setup task undecided after its deadline counts as approved, where the
    permit allows it; by the system, on the same lock and fan-in as a decision. None when it
    is not (or no longer) due."""
    task = await SetupTask.get_or_none(id=task_id).select_related("permit")
    if task is None or not task.permit.default_approval:
        return None
    async with in_transaction():
        setup, current = await _lock(task)
        if (
            current.status not in OPEN
            or setup.status is not SetupStatus.IN_REVIEW
            or current.paused_at is not None
            or current.deadline >= local_day(now)
        ):
            return None
        await _record(
            setup=setup,
            task=current,
            decision=Decision.APPROVED,
            opinion=DEFAULT_OPINION,
            actor_id=None,
            action="setup_task.default_approve",
            now=now,
        )
    return current
