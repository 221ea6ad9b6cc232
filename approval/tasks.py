"""Department tasks: reviewed in parallel (分散审核、同步审批); the stage closes on the last one."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from approval import audit
from approval.access import Viewer, require_role
from approval.errors import DomainError, ErrorCode, invalid, not_found
from storage.enums import Decision, MaterialStatus, ProjectStatus, Role, StageStatus, TaskStatus
from storage.models import Material, MaterialType, Project, Stage, SupplementRequest, Task

SEVERITY = {
    Decision.APPROVED: 0,
    Decision.APPROVED_WITH_CONDITIONS: 1,
    Decision.SUPPLEMENT_REQUIRED: 2,
    Decision.REJECTED: 3,
}
OPEN = (TaskStatus.PENDING, TaskStatus.SUPPLEMENT_REQUESTED)


def stage_outcome(decisions: list[Decision]) -> Decision:
    """The most severe decision: rejected > supplement required > with conditions > approved."""
    return max(decisions, key=SEVERITY.__getitem__)


async def _own_task(viewer: Viewer, task_id: int) -> Task:
    require_role(viewer, Role.REVIEWER)
    task = await Task.get_or_none(id=task_id).select_related("department", "stage__project")
    if task is None:
        raise not_found("task", task_id, field="taskId")
    if task.department_id != viewer.department_id:
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            f"task {task_id} belongs to {task.department.name}, not to your department; "
            "only its own department may act on it",
            field="taskId",
        )
    return task


async def decide_task(
    *, viewer: Viewer, task_id: int, decision: Decision, opinion: str, now: datetime
) -> Task:
    task = await _own_task(viewer, task_id)
    if decision is not Decision.APPROVED and not opinion.strip():
        raise invalid(
            "a decision other than approved needs a written opinion stating why", field="opinion"
        )
    async with in_transaction():
        # Lock the stage first: decisions on one stage queue up here, so the fan-in below
        # always sees every other committed decision.
        stage = await Stage.select_for_update().get(id=task.stage_id)
        current = await Task.get(id=task.id)
        if current.status not in OPEN or stage.status is not StageStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.ALREADY_DECIDED,
                f"task {task_id} was already decided "
                f"({current.decision.value if current.decision else 'closed'}); "
                "a decision cannot be changed",
                field="taskId",
            )
        before = {"status": current.status.value}
        current.status = TaskStatus.DECIDED
        current.decision = decision
        current.opinion = opinion.strip()
        current.decided_at = now
        current.decided_by_id = viewer.user_id
        await current.save()
        await audit.record(
            actor_id=viewer.user_id,
            action="task.decide",
            entity_type="task",
            entity_id=current.id,
            project_id=task.stage.project.id,
            before=before,
            after={
                "status": current.status.value,
                "decision": decision.value,
                "opinion": current.opinion,
            },
        )
        await _close_stage_if_done(stage=stage, now=now, actor_id=viewer.user_id)
    return current


async def _close_stage_if_done(*, stage: Stage, now: datetime, actor_id: int) -> None:
    rows = await Task.filter(stage_id=stage.id, round=stage.round).values_list("status", "decision")
    if any(TaskStatus(status) in OPEN for status, _ in rows):
        return
    outcome = stage_outcome([Decision(d) for _, d in rows])
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


async def request_supplement(
    *,
    viewer: Viewer,
    task_id: int,
    reason: str,
    material_type_code: str | None,
    now: datetime,
) -> SupplementRequest:
    """补正: the department asks for a material again; the task waits until it arrives."""
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
        current = await Task.select_for_update().get(id=task.id)
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
            },
        )
    return request
