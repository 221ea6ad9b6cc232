"""同步审批: each department decides its permits of a setup in parallel; the last decision
closes the setup with the most severe one.

A thin layer on the review engine (:mod:`approval.review.engine`), which holds the lock order
(the setup row, then the task), the guards, clock stops (行政许可法 Art. 45), 超时默认 and the
fan-in, the same code construction stages run on. What is the setup's own: a permit with a
site check (现场踏勘) is approved only after its check passed (an inspection recorded in the
field app: ``approval.fieldwork.inspections.open_setup_site_check``), opinions are bounded,
and a passing setup becomes ready for 统一发证 (``approval.company.issuing``).
"""

from __future__ import annotations

from datetime import date, datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, require_task_scope
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.fieldwork.inspections import cancel_setup_site_checks, open_setup_site_check
from approval.review.engine import (
    CaseReview,
    PauseReason,
    Verdict,
    supplement_material,
    supplement_reason,
    written_opinion,
)
from approval.review.rules import DEFAULT_OPINION, PASSING
from storage.enums import Decision, MaterialStatus, Role, SetupStatus, TaskStatus
from storage.models import (
    CompanySetup,
    SetupMaterial,
    SetupSupplementRequest,
    SetupTask,
    SetupTaskRound,
)

OPINION_MAX = 4000


class SetupReview(CaseReview[CompanySetup, SetupTask]):
    """A company setup under the review engine: a round of permits; the last decision
    makes the setup ready for 统一发证 when it passes, waiting for the applicant when the
    most severe decision is 需补正 (the window re-accepts it: :func:`reopen_round`), refused
    otherwise. A stopped clock's reason is kept on the task (``pause_reason``)."""

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

    async def resolve_supplements(self, task: SetupTask, *, now: datetime) -> None:
        await SetupSupplementRequest.filter(task_id=task.id, resolved_at__isnull=True).update(
            resolved_at=now
        )

    async def round_ended(self, task: SetupTask, *, now: datetime, actor_id: int | None) -> None:
        """The permit's round becomes a :class:`SetupTaskRound` (its decision, who and when,
        its deadline, the materials its department returned in it) and ``round`` counts on;
        a round kept already is INVALID_STATE, never a second row."""
        assert task.decision is not None, "only a decided task is reopened"
        if await SetupTaskRound.exists(task_id=task.id, round=task.round):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"round {task.round} of setup task {task.id} is kept already",
                field="taskId",
            )
        previous = await SetupTaskRound.filter(task_id=task.id).order_by("-round").first()
        asked = SetupSupplementRequest.filter(task_id=task.id, material_type_id__not_isnull=True)
        if previous is not None:  # this round's requests only
            asked = asked.filter(requested_at__gt=previous.reopened_at)
        returned = [
            {"code": r.material_type.code, "name": r.material_type.name, "reason": r.reason}
            for r in await asked.select_related("material_type").order_by("id")
            if r.material_type is not None
        ]
        await SetupTaskRound.create(
            task_id=task.id,
            round=task.round,
            decision=task.decision,
            opinion=task.opinion,
            deadline=task.deadline,
            decided_at=task.decided_at,
            decided_by_id=task.decided_by_id,
            default_approved=task.default_approved,
            returned_materials=returned,
            reopened_at=now,
            reopened_by_id=actor_id,
        )
        task.round += 1  # saved with the reopened task

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
                f"{permit.name} needs a passed site check (现场踏勘) first: the department's "
                "inspectors record it in the field app (现场踏勘 App) and sign the conclusion; "
                "then decide",
                field="taskId",
            )

    async def close(
        self, *, case: CompanySetup, outcome: Decision, now: datetime, actor_id: int | None
    ) -> None:
        case.outcome = outcome
        if outcome in PASSING:
            case.status = SetupStatus.READY
        elif outcome is Decision.SUPPLEMENT_REQUIRED:
            case.status = SetupStatus.SUPPLEMENT_REQUIRED  # waits for the window's re-acceptance
        else:
            case.status = SetupStatus.REFUSED
            await cancel_setup_site_checks(setup_id=case.id, now=now, actor_id=actor_id)
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


async def request_setup_supplement(
    *,
    viewer: Viewer,
    task_id: int,
    reason: str,
    material_type_code: str | None,
    now: datetime,
) -> SetupTask:
    """补正: the department asks for a material of the setup again (or for something it
    states); the permit waits, its clock stopped for ``supplement``, until the window receives
    the material (:func:`answer_supplements`) or the department resumes the clock."""
    task = await _own_task(viewer, task_id)
    text = supplement_reason(reason)
    material_type = await supplement_material(material_type_code)
    if material_type is not None and not await SetupMaterial.exists(
        setup_id=task.setup_id, material_type_id=material_type.id
    ):
        raise invalid(
            f"setup {task.setup.code} holds no material {material_type.code!r}; ask again "
            "only for one of its materials, or name none and say what is needed",
            field="materialType",
        )
    async with in_transaction():
        setup, current = await SETUPS.lock(task)
        SETUPS.require_open(setup, current, task_id)
        SETUPS.require_pending(current, task_id)
        stopped = await SETUPS.supplement_requested(task=current, reason=text, now=now)
        await SetupSupplementRequest.create(
            task_id=current.id,
            material_type=material_type,
            reason=text,
            requested_by_id=viewer.user_id,
            requested_at=now,
        )
        if material_type is not None:
            # A material held is returned; one still promised under 容缺 stays promised.
            await SetupMaterial.filter(
                setup_id=setup.id,
                material_type_id=material_type.id,
                status__in=[MaterialStatus.SUBMITTED, MaterialStatus.ACCEPTED],
            ).update(status=MaterialStatus.REJECTED)
        await SETUPS.audit_supplement(
            task=current,
            reason=text,
            material_type_code=material_type.code if material_type else None,
            clock_stopped=stopped,
            actor_id=viewer.user_id,
            project_id=setup.project_id,
        )
    return current


async def answer_supplements(
    *, setup: CompanySetup, material_type_id: int, now: datetime, actor_id: int
) -> list[int]:
    """The window received a material departments asked for again (the setup row locked):
    their open requests for it are resolved; a permit with no request left open is pending
    again and its clock, stopped for the supplement, restarts (the deadline moves by the
    working days it stood). Returns those tasks' ids. Raises CalendarUnknownError."""
    asked = SetupSupplementRequest.filter(
        task__setup_id=setup.id, material_type_id=material_type_id, resolved_at__isnull=True
    )
    task_ids = sorted(set(await asked.values_list("task_id", flat=True)))
    await SetupSupplementRequest.filter(
        id__in=list(await asked.values_list("id", flat=True))
    ).update(resolved_at=now)
    waiting = set(
        await SetupSupplementRequest.filter(
            task_id__in=task_ids, resolved_at__isnull=True
        ).values_list("task_id", flat=True)
    )
    answered = [
        task
        for task in await SetupTask.select_for_update()
        .filter(id__in=task_ids, status=TaskStatus.SUPPLEMENT_REQUESTED)
        .order_by("id")
        if task.id not in waiting
    ]
    for task in answered:
        task.status = TaskStatus.PENDING
        await task.save(update_fields=["status"])
    await SETUPS.resume_clocks(
        tasks=answered,
        reasons=(PauseReason.SUPPLEMENT.value,),
        now=now,
        calendar=None,
        actor_id=actor_id,
        project_id=setup.project_id,
    )
    return [task.id for task in answered]


async def reopen_round(
    *,
    setup: CompanySetup,
    deadlines: dict[str, date],
    now: datetime,
    actor_id: int,
) -> list[int]:
    """A new round of a setup waiting for 补正 (the setup row locked): every permit whose
    department decided 需补正 is pending again with a new deadline (``deadlines["core"]`` or
    ``["x"]``) through the engine (:meth:`CaseReview.reopen`), the round it ended kept as a
    :class:`SetupTaskRound`, and a permit with a site check gets a new one, due
    ``deadlines["site_check"]`` (a new inspection, the earlier round's cancelled if still
    open); the other permits keep their decisions. Returns the reopened
    tasks' ids."""
    tasks = (
        await SetupTask.select_for_update()
        .filter(setup_id=setup.id, decision=Decision.SUPPLEMENT_REQUIRED)
        .order_by("id")
    )
    for task in tasks:
        task.pause_reason = ""
        if task.site_check_due is not None:  # the permit's site check is made again
            task.site_check_requested_at = now
            task.site_check_due = deadlines["site_check"]
            task.site_check_done_at = None
        await SETUPS.reopen(
            task=task,
            deadline=deadlines["core"] if task.core else deadlines["x"],
            now=now,
            actor_id=actor_id,
            project_id=setup.project_id,
        )
        if task.site_check_due is not None:
            await open_setup_site_check(task=task, actor_id=actor_id, now=now)
    return [task.id for task in tasks]


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
