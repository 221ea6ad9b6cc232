"""同步审批: each department decides its permits of a setup in parallel; the last decision
closes the setup with the most severe one.

A thin layer on the review engine (:mod:`approval.review.engine`), which holds the lock order
(the setup row, then the task), the guards, clock stops (行政许可法 Art. 45), 超时默认 and the
fan-in, the same code construction stages run on. What is the setup's own: a site check
(现场踏勘) is recorded before a permit can be approved, opinions are bounded, and a passing
setup becomes ready for 统一发证 (``approval.company.issuing``).
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, require_task_scope
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.review.engine import (
    CaseReview,
    Verdict,
    written_opinion,
)
from approval.review.rules import DEFAULT_OPINION, PASSING
from storage.enums import Decision, Role, SetupStatus
from storage.models import CompanySetup, SetupTask

OPINION_MAX = 4000


class SetupReview(CaseReview[CompanySetup, SetupTask]):
    """A company setup under the review engine: one round of permits; the last decision
    makes the setup ready for 统一发证 when it passes, refused otherwise. A stopped clock's
    reason is kept on the task (``pause_reason``)."""

    entity = "setup_task"
    label = "setup task"

    async def lock(self, task: SetupTask) -> tuple[CompanySetup, SetupTask]:
        setup = await CompanySetup.select_for_update().get(id=task.setup_id)
        current = await SetupTask.select_for_update().get(id=task.id)
        return setup, current

    def in_review(self, case: CompanySetup) -> bool:
        return case.status is SetupStatus.IN_REVIEW

    async def round_rows(self, case: CompanySetup) -> list[tuple[str, str | None]]:
        rows = await SetupTask.filter(setup_id=case.id).values_list("status", "decision")
        return [(status, decision) for status, decision in rows]

    async def clock_stopped(
        self, task: SetupTask, *, reason: str, note: str, now: datetime
    ) -> None:
        task.pause_reason = reason
        await task.save(update_fields=["pause_reason"])

    async def open_stop(self, task: SetupTask) -> tuple[datetime, str | None]:
        assert task.paused_at is not None
        return task.paused_at, task.pause_reason

    async def clock_restarted(self, task: SetupTask, *, now: datetime, working_days: int) -> None:
        task.pause_reason = ""
        await task.save(update_fields=["pause_reason"])

    async def before_decision(
        self, case: CompanySetup, task: SetupTask, decision: Decision
    ) -> None:
        """A permit with a site check (现场踏勘) is approved only after the check."""
        if (
            decision in PASSING
            and task.site_check_due is not None
            and task.site_check_done_at is None
        ):
            permit = await task.permit
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"{permit.name} needs a site check (现场踏勘) first; record it with "
                "recordSetupSiteCheck, then decide",
                field="taskId",
            )

    async def close(
        self, *, case: CompanySetup, outcome: Decision, now: datetime, actor_id: int | None
    ) -> None:
        case.outcome = outcome
        case.status = SetupStatus.READY if outcome in PASSING else SetupStatus.REFUSED
        case.completed_at = now
        await case.save(update_fields=["outcome", "status", "completed_at"])
        await audit.record(
            actor_id=actor_id,
            action="setup.complete",
            entity_type="setup",
            entity_id=case.id,
            project_id=case.project_id,
            before={"status": SetupStatus.IN_REVIEW.value},
            after={"status": case.status.value, "outcome": outcome.value},
        )


SETUPS = SetupReview()


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


async def stop_setup_clock(
    *, viewer: Viewer, task_id: int, reason: str, note: str, now: datetime
) -> SetupTask:
    """Stop the clock of an open permit, with a reason the law allows; audited."""
    task = await _own_task(viewer, task_id)
    if not note.strip():
        raise invalid("say what the clock waits for", field="note")
    return await SETUPS.pause(task=task, reason=reason, note=note, now=now, actor_id=viewer.user_id)


async def resume_setup_clock(*, viewer: Viewer, task_id: int, now: datetime) -> SetupTask:
    """Restart a stopped clock: the deadline moves by the working days it stood; audited."""
    task = await _own_task(viewer, task_id)
    return await SETUPS.resume(task=task, now=now, actor_id=viewer.user_id)


async def decide_setup_task(
    *, viewer: Viewer, task_id: int, decision: Decision, opinion: str, now: datetime
) -> SetupTask:
    """A department decides one permit of a setup; the last decision closes the setup."""
    task = await _own_task(viewer, task_id)
    text = written_opinion(decision, opinion, max_length=OPINION_MAX)
    verdict = Verdict(
        decision=decision, opinion=text, actor_id=viewer.user_id, action="setup_task.decide"
    )
    return await SETUPS.decide(task=task, verdict=verdict, now=now)


async def record_site_check(*, viewer: Viewer, task_id: int, note: str, now: datetime) -> SetupTask:
    """The department records that its site check of this permit is done (with a note)."""
    task = await _own_task(viewer, task_id)
    async with in_transaction():
        setup, current = await SETUPS.lock(task)
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
        await SETUPS.audit_change(
            current,
            verb="site_check",
            actor_id=viewer.user_id,
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
        setup, current = await SETUPS.lock(task)
        if not SETUPS.default_due(setup, current, local_day(now)):
            return None
        await SETUPS.record(
            case=setup,
            task=current,
            verdict=Verdict(
                decision=Decision.APPROVED,
                opinion=DEFAULT_OPINION,
                actor_id=None,
                action="setup_task.default_approve",
                default_approved=True,
            ),
            now=now,
            calendar=None,
        )
    return current
