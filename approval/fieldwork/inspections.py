"""Field inspections: site checks (现场踏勘) and joint acceptance (联合验收) rounds.

The window (or the center) schedules an inspection for some departments; each department's
section of the inspection document holds its checklist, taken from the catalog when the
inspection is scheduled and frozen as :class:`~storage.models.CheckResult` rows. Assigned
inspectors record on tablets (the CRDT document, :mod:`approval.fieldwork.policy`) and sign a
conclusion per department. When every department of a round has concluded, the round passes
(all pass) or requires rectification (any fail); a passed joint acceptance approves the stage-4
tasks of its departments through the fan-in of :mod:`approval.projects.tasks`, and a round that
requires rectification is followed by :func:`schedule_reinspection` for the departments that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import (
    Viewer,
    in_region,
    project_scope,
    require_role,
    setup_in_scope,
    visible_project,
)
from approval.core.auth import viewer_of
from approval.core.calendar import calendar_for
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.labels import label
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.fieldwork.documents import InspectionLayout, LayoutError, parse_doc_name
from approval.projects.tasks import approve_after_inspection
from storage.enums import Conclusion, InspectionKind, InspectionStatus, Role, StageStatus
from storage.models import (
    AgencyEntry,
    ChecklistTemplate,
    CheckResult,
    CompanySetup,
    Department,
    Inspection,
    InspectionAssignment,
    InspectionDepartment,
    Project,
    SetupTask,
    Stage,
    Task,
    User,
)

SITE_CHECK_DAYS = 3  # 现场踏勘: finished within 3 working days of the request
ACCEPTANCE_STAGE = "completion_acceptance"
OPEN_STATUSES = (InspectionStatus.SCHEDULED, InspectionStatus.IN_PROGRESS)
SCHEDULERS = (Role.WINDOW_CLERK, Role.SUPERVISOR)


@dataclass(frozen=True)
class FieldRights:
    """One person's rights on one field document (the server adapts it to the sync room)."""

    user_id: int
    username: str
    role: str
    department_code: str | None
    writable: bool


# --- helpers -----------------------------------------------------------------------------------


def _working_days_after(calendar: WorkingCalendar, start: date, days: int, field: str) -> date:
    try:
        return calendar.add_working_days(start, days)
    except CalendarUnknownError as exc:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field=field) from None


async def _scheduled_day(scheduled_for: date, now: datetime) -> date:
    today = local_day(now)
    if scheduled_for < today:
        raise invalid(
            f"the inspection is scheduled for {scheduled_for}, which is before today {today}",
            field="scheduledFor",
        )
    calendar = await calendar_for(scheduled_for)
    try:
        working = calendar.is_working_day(scheduled_for)
    except CalendarUnknownError as exc:
        raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field="scheduledFor") from None
    if not working:
        raise invalid(
            f"{scheduled_for} is not a working day (weekend or statutory holiday); "
            "choose a working day",
            field="scheduledFor",
        )
    return scheduled_for


async def _departments(codes: Sequence[str]) -> list[Department]:
    wanted = [c.strip() for c in codes]
    if not wanted:
        raise invalid("name at least one participating department", field="departments")
    duplicates = sorted({c for c in wanted if wanted.count(c) > 1})
    if duplicates:
        raise invalid(f"department(s) named twice: {', '.join(duplicates)}", field="departments")
    found = {d.code: d for d in await Department.filter(code__in=wanted)}
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise invalid(
            f"department(s) not in the catalog: {', '.join(unknown)}", field="departments"
        )
    return [found[c] for c in wanted]


async def _checklists(departments: list[Department]) -> dict[int, list[ChecklistTemplate]]:
    """Each department's checklist templates from the catalog, by template code."""
    templates = await ChecklistTemplate.filter(
        department_id__in=[d.id for d in departments]
    ).order_by("code")
    found: dict[int, list[ChecklistTemplate]] = {d.id: [] for d in departments}
    for template in templates:
        found[template.department_id].append(template)
    return found


def _check_codes(templates: list[ChecklistTemplate]) -> list[str]:
    """The checks of a department: every check of its templates, each code once."""
    codes: list[str] = []
    for template in templates:
        for check in template.checks:
            code = str(check["code"])
            if code not in codes:
                codes.append(code)
    return codes


async def _create_round(
    *,
    actor_id: int | None,
    project: Project | None,
    stage: Stage | None,
    kind: InspectionKind,
    departments: list[Department],
    due: date,
    scheduled_for: date | None,
    now: datetime,
    previous: Inspection | None = None,
    setup_task: SetupTask | None = None,
    templates: dict[int, list[ChecklistTemplate]] | None = None,
) -> Inspection:
    """Inside a transaction: the inspection, its departments and their frozen checklists.

    The case is a construction ``project`` or a company setup's ``setup_task`` (exactly one;
    the database checks it too). ``templates`` names each department's checklists where the
    case names them (a setup permit's own); otherwise every checklist of the department."""
    if templates is None:
        templates = await _checklists(departments)
    inspection = await Inspection.create(
        project_id=project.id if project else None,
        setup_id=setup_task.setup_id if setup_task else None,
        setup_task_id=setup_task.id if setup_task else None,
        stage_id=stage.id if stage else None,
        kind=kind,
        round=previous.round + 1 if previous else 1,
        previous_id=previous.id if previous else None,
        requested_at=now,
        due=due,
        scheduled_for=scheduled_for,
        created_by_id=actor_id,
    )
    for department in departments:
        own = templates[department.id]
        await InspectionDepartment.create(
            inspection_id=inspection.id,
            department_id=department.id,
            checklist_id=own[0].id if own else None,
        )
        codes = _check_codes(own)
        if codes:
            await CheckResult.bulk_create(
                [
                    CheckResult(
                        inspection_id=inspection.id, department_id=department.id, check_code=c
                    )
                    for c in codes
                ]
            )
    await audit.record(
        actor_id=actor_id,
        action="inspection.reinspect" if previous else "inspection.schedule",
        entity_type="inspection",
        entity_id=inspection.id,
        project_id=project.id if project else await _setup_project_id(inspection),
        before={"previous": previous.id} if previous else None,
        after={
            "kind": kind.value,
            "round": inspection.round,
            "departments": [d.code for d in departments],
            "due": due.isoformat(),
            "scheduledFor": scheduled_for.isoformat() if scheduled_for else None,
            "setupTask": setup_task.id if setup_task else None,
        },
    )
    return inspection


async def _setup_project_id(inspection: Inspection) -> int | None:
    """The construction project a setup's inspection is linked to through its setup (a
    foreign-capital setup's), for the audit trail; None for a project's own inspection."""
    if inspection.setup_id is None:
        return inspection.project_id
    setup = await CompanySetup.get(id=inspection.setup_id)
    return setup.project_id


async def _acceptance_stage(project: Project) -> Stage:
    stage = await Stage.get(project_id=project.id, definition__code=ACCEPTANCE_STAGE)
    if stage.status is not StageStatus.IN_REVIEW:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            "联合验收 is organised for the completion acceptance (竣工验收) stage while it is in "
            f"review; it is {stage.status.value}: the window accepts the application first",
            field="projectId",
        )
    return stage


async def _require_stage_tasks(stage: Stage, departments: list[Department]) -> None:
    with_tasks = set(
        await Task.filter(stage_id=stage.id, round=stage.round).values_list(
            "department_id", flat=True
        )
    )
    missing = [d for d in departments if d.id not in with_tasks]
    if missing:
        names = "、".join(f"{d.name}({d.code})" for d in missing)
        raise invalid(
            f"{names} have no task in this completion acceptance; only departments that "
            "approve an item of the stage take part in the joint acceptance",
            field="departments",
        )


async def _in_scope(viewer: Viewer, inspection: Inspection) -> bool:
    """Whether the viewer sees the inspection's case: its project, or its company setup."""
    if inspection.setup_id is not None:
        return await setup_in_scope(viewer, inspection.setup_id)
    return await Project.filter(project_scope(viewer), id=inspection.project_id).exists()


async def _visible_inspection(viewer: Viewer, inspection_id: int) -> Inspection:
    """The inspection if its case is in the viewer's scope or the viewer is assigned to it."""
    inspection = await Inspection.get_or_none(id=inspection_id)
    if inspection is not None:
        if await _in_scope(viewer, inspection):
            return inspection
        if await InspectionAssignment.exists(inspection_id=inspection.id, user_id=viewer.user_id):
            return inspection
    raise not_found("inspection", inspection_id, field="inspectionId")


async def visible_inspection(*, viewer: Viewer, inspection_id: int) -> Inspection:
    """The inspection, or NOT_FOUND when it is outside the viewer's scope and assignments."""
    return await _visible_inspection(viewer, inspection_id)


async def project_inspections(*, viewer: Viewer, project_id: int) -> list[Inspection]:
    """Every inspection of a visible project, oldest first."""
    project = await visible_project(viewer, project_id)
    return await Inspection.filter(project_id=project.id).order_by("id")


async def project_agency_entries(*, viewer: Viewer, project_id: int) -> list[AgencyEntry]:
    """The agent's visits, calls and to-dos on a visible project (materialised from the agency
    document): open to-dos first by due date, then the rest newest first. They are the agent's
    working notes: shown to the project's agent, window clerks and supervisors."""
    require_role(viewer, Role.AGENT, Role.WINDOW_CLERK, Role.SUPERVISOR)
    project = await visible_project(viewer, project_id)
    rows = await AgencyEntry.filter(project_id=project.id)
    far = date.max

    def order(entry: AgencyEntry) -> tuple[int, date, float, int]:
        if entry.kind == "todo" and not entry.done:
            return (0, entry.due or far, 0.0, entry.id)
        return (1, far, -(entry.at.timestamp() if entry.at else 0.0), entry.id)

    return sorted(rows, key=order)


async def assigned_inspections(*, viewer: Viewer, open_only: bool = False) -> list[Inspection]:
    """The inspections the viewer is assigned to, soonest due first."""
    query = Inspection.filter(assignments__user_id=viewer.user_id)
    if open_only:
        query = query.filter(status__in=list(OPEN_STATUSES))
    return await query.order_by("due", "id").distinct()


def _require_open(inspection: Inspection) -> None:
    if inspection.status not in OPEN_STATUSES:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"inspection {inspection.id} is {label(inspection.status)} "
            f"({inspection.status.value}); it is closed",
            field="inspectionId",
        )


# --- scheduling --------------------------------------------------------------------------------


async def schedule_site_check(
    *, viewer: Viewer, project_id: int, department_codes: Sequence[str], now: datetime
) -> Inspection:
    """现场踏勘: the departments check the site within 3 working days of the request."""
    require_role(viewer, Role.WINDOW_CLERK, Role.SUPERVISOR, Role.REVIEWER)
    project = await visible_project(viewer, project_id)
    departments = await _departments(department_codes)
    if viewer.role is Role.REVIEWER and any(d.id != viewer.department_id for d in departments):
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            "a reviewer requests a site check for their own department only; the window "
            "organises one with several departments",
            field="departments",
        )
    today = local_day(now)
    calendar = await calendar_for(today)
    due = _working_days_after(calendar, today, SITE_CHECK_DAYS, "projectId")
    stage = (
        await Stage.filter(project_id=project.id, status=StageStatus.IN_REVIEW)
        .order_by("definition__order")
        .first()
    )
    async with in_transaction():
        return await _create_round(
            actor_id=viewer.user_id,
            project=project,
            stage=stage,
            kind=InspectionKind.SITE_CHECK,
            departments=departments,
            due=due,
            scheduled_for=None,
            now=now,
        )


async def schedule_joint_acceptance(
    *,
    viewer: Viewer,
    project_id: int,
    department_codes: Sequence[str],
    scheduled_for: date,
    now: datetime,
) -> Inspection:
    """联合验收: the departments of the completion acceptance inspect the site together."""
    require_role(viewer, *SCHEDULERS)
    project = await visible_project(viewer, project_id)
    stage = await _acceptance_stage(project)
    departments = await _departments(department_codes)
    await _require_stage_tasks(stage, departments)
    day = await _scheduled_day(scheduled_for, now)
    async with in_transaction():
        await Stage.select_for_update().get(id=stage.id)
        latest = (
            await Inspection.filter(stage_id=stage.id, kind=InspectionKind.JOINT_ACCEPTANCE)
            .order_by("-id")
            .first()
        )
        if latest is not None and latest.requested_at >= (stage.accepted_at or latest.requested_at):
            if latest.status in OPEN_STATUSES:
                raise DomainError(
                    ErrorCode.CONFLICT,
                    f"joint acceptance {latest.id} of this stage is still open; "
                    "assign inspectors to it instead of scheduling another",
                    field="projectId",
                )
            if latest.status is InspectionStatus.RECTIFICATION_REQUIRED:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    f"joint acceptance {latest.id} requires rectification; schedule its "
                    "re-inspection for the departments that failed",
                    field="projectId",
                )
            if latest.status is InspectionStatus.PASSED:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    f"joint acceptance {latest.id} of this stage already passed",
                    field="projectId",
                )
        return await _create_round(
            actor_id=viewer.user_id,
            project=project,
            stage=stage,
            kind=InspectionKind.JOINT_ACCEPTANCE,
            departments=departments,
            due=day,
            scheduled_for=day,
            now=now,
        )


async def schedule_reinspection(
    *, viewer: Viewer, inspection_id: int, scheduled_for: date | None, now: datetime
) -> Inspection:
    """复验: the next round, for the departments that failed the previous one."""
    require_role(viewer, *SCHEDULERS)
    previous = await _visible_inspection(viewer, inspection_id)
    if previous.status is not InspectionStatus.RECTIFICATION_REQUIRED:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"inspection {previous.id} is {label(previous.status)}; only a round that "
            "requires rectification is re-inspected",
            field="inspectionId",
        )
    project = await Project.get(id=previous.project_id) if previous.project_id else None
    setup_task = await SetupTask.get(id=previous.setup_task_id) if previous.setup_task_id else None
    stage = await Stage.get(id=previous.stage_id) if previous.stage_id else None
    if previous.kind is InspectionKind.JOINT_ACCEPTANCE:
        if stage is None or stage.status is not StageStatus.IN_REVIEW:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                "the completion acceptance stage is no longer in review; nothing to re-inspect",
                field="inspectionId",
            )
        if scheduled_for is None:
            raise invalid("a joint acceptance re-inspection needs a date", field="scheduledFor")
        due = scheduled_for = await _scheduled_day(scheduled_for, now)
    else:
        today = local_day(now)
        calendar = await calendar_for(today)
        due = _working_days_after(calendar, today, SITE_CHECK_DAYS, "inspectionId")
    failed = (
        await InspectionDepartment.filter(inspection_id=previous.id, conclusion=Conclusion.FAIL)
        .select_related("department")
        .order_by("id")
    )
    departments = [row.department for row in failed]
    async with in_transaction():
        locked = await Inspection.select_for_update().get(id=previous.id)
        if await Inspection.exists(previous_id=locked.id):
            raise DomainError(
                ErrorCode.CONFLICT,
                f"the re-inspection of inspection {locked.id} is already scheduled",
                field="inspectionId",
            )
        if setup_task is not None:
            setup_task = await _reopen_setup_check(
                task_id=setup_task.id, due=due, now=now, actor_id=viewer.user_id
            )
        inspection = await _create_round(
            actor_id=viewer.user_id,
            project=project,
            stage=stage,
            kind=previous.kind,
            departments=departments,
            due=due,
            scheduled_for=scheduled_for,
            now=now,
            previous=locked,
            setup_task=setup_task,
            templates=await _frozen_templates(locked) if setup_task else None,
        )
        await _keep_inspectors(
            previous=locked, inspection=inspection, department_ids=[d.id for d in departments]
        )
    return inspection


async def _keep_inspectors(
    *, previous: Inspection, inspection: Inspection, department_ids: list[int]
) -> None:
    """The next round keeps the previous round's inspectors of ``department_ids``."""
    kept = await InspectionAssignment.filter(
        inspection_id=previous.id, department_id__in=department_ids
    )
    if kept:
        await InspectionAssignment.bulk_create(
            [
                InspectionAssignment(
                    inspection_id=inspection.id, user_id=a.user_id, department_id=a.department_id
                )
                for a in kept
            ]
        )


async def assign_inspectors(
    *, viewer: Viewer, inspection_id: int, usernames: Sequence[str], now: datetime
) -> Inspection:
    """Assign inspectors of the participating departments; assigning someone twice is harmless.

    The window and the center assign them; a company setup's site check is the permit
    department's own, so a reviewer of that department assigns its inspectors too. Inspectors
    of a setup's check work within the setup's region."""
    if viewer.role is Role.REVIEWER:
        # Only a setup's check in the reviewer's scope; anything else is FORBIDDEN, as before.
        found = await Inspection.get_or_none(id=inspection_id)
        if found is None or found.setup_id is None or not await _in_scope(viewer, found):
            require_role(viewer, *SCHEDULERS)
    else:
        require_role(viewer, *SCHEDULERS)
    inspection = await _visible_inspection(viewer, inspection_id)
    if viewer.role is Role.REVIEWER and not await InspectionDepartment.exists(
        inspection_id=inspection.id, department_id=viewer.department_id or -1
    ):
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            f"inspection {inspection.id} is another department's site check; a reviewer "
            "assigns the inspectors of their own department's checks",
            field="inspectionId",
        )
    _require_open(inspection)
    setup = await CompanySetup.get(id=inspection.setup_id) if inspection.setup_id else None
    names = sorted({u.strip() for u in usernames if u.strip()})
    if not names:
        raise invalid("name at least one inspector", field="usernames")
    users = {u.username: u for u in await User.filter(username__in=names, active=True)}
    unknown = [n for n in names if n not in users]
    if unknown:
        raise invalid(f"no active user named {', '.join(unknown)}", field="usernames")
    participating = set(
        await InspectionDepartment.filter(inspection_id=inspection.id).values_list(
            "department_id", flat=True
        )
    )
    for name in names:
        user = users[name]
        if user.role is not Role.INSPECTOR:
            raise DomainError(
                ErrorCode.FORBIDDEN,
                f"{name} is not a site inspector (踏勘/验收人员); only inspectors are assigned",
                field="usernames",
            )
        if user.department_id not in participating:
            raise DomainError(
                ErrorCode.WRONG_DEPARTMENT,
                f"{name}'s department does not take part in inspection {inspection.id}",
                field="usernames",
            )
        if viewer.role is Role.REVIEWER and user.department_id != viewer.department_id:
            raise DomainError(
                ErrorCode.WRONG_DEPARTMENT,
                f"{name} is not an inspector of your department",
                field="usernames",
            )
        if setup is not None and not in_region(await viewer_of(user), setup.region_id):
            raise DomainError(
                ErrorCode.FORBIDDEN,
                f"{name} works outside the region of setup {setup.code}; assign an inspector "
                "of its region",
                field="usernames",
            )
    async with in_transaction():
        assigned = set(
            await InspectionAssignment.filter(inspection_id=inspection.id).values_list(
                "user_id", flat=True
            )
        )
        new = [users[n] for n in names if users[n].id not in assigned]
        for user in new:
            assert user.department_id is not None
            await InspectionAssignment.create(
                inspection_id=inspection.id, user_id=user.id, department_id=user.department_id
            )
        if new:
            await audit.record(
                actor_id=viewer.user_id,
                action="inspection.assign",
                entity_type="inspection",
                entity_id=inspection.id,
                project_id=await _setup_project_id(inspection),
                after={"inspectors": [u.username for u in new]},
            )
    return inspection


# --- conclusions and the round -----------------------------------------------------------------


async def file_conclusion(
    *,
    viewer: Viewer,
    inspection_id: int,
    result: Conclusion,
    note: str,
    now: datetime,
) -> Inspection:
    """An assigned inspector signs their department's conclusion of this round."""
    require_role(viewer, Role.INSPECTOR)
    inspection = await _visible_inspection(viewer, inspection_id)
    assignment = await InspectionAssignment.get_or_none(
        inspection_id=inspection.id, user_id=viewer.user_id
    )
    if assignment is None:
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"you are not assigned to inspection {inspection.id}; only its inspectors conclude",
            field="inspectionId",
        )
    if result is Conclusion.FAIL and not note.strip():
        raise invalid(
            "a failing conclusion needs a note saying what must be put right", field="note"
        )
    return await record_conclusion(
        inspection_id=inspection.id,
        department_id=assignment.department_id,
        result=result,
        note=note.strip(),
        signed_by=viewer.username,
        signed_at=now,
        actor_id=viewer.user_id,
        now=now,
    )


async def record_conclusion(
    *,
    inspection_id: int,
    department_id: int,
    result: Conclusion,
    note: str,
    signed_by: str,
    signed_at: datetime,
    actor_id: int | None,
    now: datetime,
) -> Inspection:
    """Record one department's conclusion and close the round when it was the last one.

    The one path for conclusions filed through GraphQL and signed in the document. A signed
    conclusion is final: a second one for the same department raises ALREADY_DECIDED.
    """
    async with in_transaction():
        inspection = await Inspection.select_for_update().get(id=inspection_id)
        _require_open(inspection)
        row = await InspectionDepartment.select_for_update().get(
            inspection_id=inspection.id, department_id=department_id
        )
        if row.conclusion is not None:
            raise DomainError(
                ErrorCode.ALREADY_DECIDED,
                f"the conclusion of this department was already signed by {row.signed_by} "
                f"({row.conclusion.value}); a signed conclusion cannot be changed",
                field="inspectionId",
            )
        row.conclusion = result
        row.conclusion_note = note
        row.signed_by = signed_by
        row.signed_at = signed_at
        await row.save()
        await audit.record(
            actor_id=actor_id,
            action="inspection.conclude",
            entity_type="inspection",
            entity_id=inspection.id,
            project_id=await _setup_project_id(inspection),
            after={
                "departmentId": department_id,
                "conclusion": result.value,
                "note": note,
                "signedBy": signed_by,
            },
        )
        await _close_round_if_done(inspection=inspection, actor_id=actor_id, now=now)
    return inspection


async def _chain_department_ids(inspection: Inspection) -> list[int]:
    """The departments of this round and of every earlier round of the same inspection."""
    ids: set[int] = set()
    current: Inspection | None = inspection
    while current is not None:
        ids |= {
            r.department_id for r in await InspectionDepartment.filter(inspection_id=current.id)
        }
        current = (
            await Inspection.get_or_none(id=current.previous_id) if current.previous_id else None
        )
    return sorted(ids)


async def _close_round_if_done(
    *, inspection: Inspection, actor_id: int | None, now: datetime
) -> None:
    conclusions = [
        r.conclusion for r in await InspectionDepartment.filter(inspection_id=inspection.id)
    ]
    if any(c is None for c in conclusions):
        if inspection.status is InspectionStatus.SCHEDULED:
            inspection.status = InspectionStatus.IN_PROGRESS
            await inspection.save(update_fields=["status"])
        return
    passed = all(c is Conclusion.PASS for c in conclusions)
    before = inspection.status.value
    inspection.status = (
        InspectionStatus.PASSED if passed else InspectionStatus.RECTIFICATION_REQUIRED
    )
    inspection.closed_at = now
    await inspection.save(update_fields=["status", "closed_at"])
    await audit.record(
        actor_id=actor_id,
        action="inspection.pass" if passed else "inspection.rectification_required",
        entity_type="inspection",
        entity_id=inspection.id,
        project_id=await _setup_project_id(inspection),
        before={"status": before},
        after={"status": inspection.status.value, "round": inspection.round},
    )
    if passed and inspection.setup_task_id is not None:
        await _setup_check_done(inspection=inspection, actor_id=actor_id, now=now)
    if passed and inspection.kind is InspectionKind.JOINT_ACCEPTANCE and inspection.stage_id:
        try:
            await approve_after_inspection(
                stage_id=inspection.stage_id,
                department_ids=await _chain_department_ids(inspection),
                inspection_id=inspection.id,
                opinion=f"联合验收合格(第{inspection.round}轮)",
                actor_id=actor_id,
                now=now,
            )
        except CalendarUnknownError as exc:
            raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field="inspectionId") from None


async def mark_in_progress(inspection_id: int) -> None:
    """The first recorded check moves a scheduled inspection to in progress."""
    await Inspection.filter(id=inspection_id, status=InspectionStatus.SCHEDULED).update(
        status=InspectionStatus.IN_PROGRESS
    )


# --- company setups' site checks ----------------------------------------------------------------


async def _frozen_templates(inspection: Inspection) -> dict[int, list[ChecklistTemplate]]:
    """The checklist each department of ``inspection`` was given, for its next round."""
    rows = await InspectionDepartment.filter(inspection_id=inspection.id).select_related(
        "checklist"
    )
    return {r.department_id: [r.checklist] if r.checklist else [] for r in rows}


async def open_setup_site_check(
    *, task: SetupTask, actor_id: int | None, now: datetime
) -> Inspection:
    """现场踏勘 of a company setup's permit (inside the caller's transaction): an inspection of
    the setup with the permit department's checklist from the catalog, due on the task's
    ``site_check_due``. The department's reviewer (or the window) assigns its inspectors, who
    record it offline in the field app like a construction site check; a passing conclusion
    marks the task's check done. A check of an earlier round still open is cancelled: the
    new one replaces it (its inspectors stay assigned)."""
    if task.site_check_due is None:
        raise DomainError(
            ErrorCode.INVALID_STATE, f"setup task {task.id} needs no site check", field="taskId"
        )
    permit = await task.permit
    template = (
        await ChecklistTemplate.get(id=permit.site_check_id) if permit.site_check_id else None
    )
    department = await Department.get(id=task.department_id)
    previous = await Inspection.filter(setup_task_id=task.id).order_by("-id").first()
    if previous is not None and previous.status in OPEN_STATUSES:
        await _cancel(previous, reason="replaced", now=now, actor_id=actor_id)
    inspection = await _create_round(
        actor_id=actor_id,
        project=None,
        stage=None,
        kind=InspectionKind.SITE_CHECK,
        departments=[department],
        due=task.site_check_due,
        scheduled_for=None,
        now=now,
        previous=previous,
        setup_task=task,
        templates={department.id: [template] if template else []},
    )
    if previous is not None:
        await _keep_inspectors(
            previous=previous, inspection=inspection, department_ids=[department.id]
        )
    return inspection


async def _cancel(
    inspection: Inspection, *, reason: str, now: datetime, actor_id: int | None
) -> None:
    """An open setup site check that no longer has a purpose is cancelled (audited); its
    document turns read-only and it leaves the inspectors' open lists."""
    await Inspection.filter(id=inspection.id).update(
        status=InspectionStatus.CANCELLED, closed_at=now
    )
    await audit.record(
        actor_id=actor_id,
        action="inspection.cancel",
        entity_type="inspection",
        entity_id=inspection.id,
        project_id=await _setup_project_id(inspection),
        before={"status": inspection.status.value},
        after={
            "status": InspectionStatus.CANCELLED.value,
            "setupTask": inspection.setup_task_id,
            "reason": reason,
        },
    )


async def cancel_setup_site_checks(
    *, setup_id: int, now: datetime, actor_id: int | None
) -> list[int]:
    """A refused setup needs no more site checks (inside the caller's transaction): its open
    ones are cancelled. Returns their ids."""
    open_checks = (
        await Inspection.select_for_update()
        .filter(setup_id=setup_id, status__in=list(OPEN_STATUSES))
        .order_by("id")
    )
    for inspection in open_checks:
        await _cancel(inspection, reason="setup refused", now=now, actor_id=actor_id)
    return [i.id for i in open_checks]


async def _reopen_setup_check(
    *, task_id: int, due: date, now: datetime, actor_id: int | None
) -> SetupTask:
    """A re-inspection of a setup's failed check: the task's check is requested again."""
    task = await SetupTask.select_for_update().get(id=task_id)
    before = {"siteCheckDue": str(task.site_check_due)}
    task.site_check_requested_at = now
    task.site_check_due = due
    task.site_check_done_at = None
    await task.save(
        update_fields=["site_check_requested_at", "site_check_due", "site_check_done_at"]
    )
    await audit.record(
        actor_id=actor_id,
        action="setup_task.site_check_again",
        entity_type="setup_task",
        entity_id=task.id,
        project_id=(await CompanySetup.get(id=task.setup_id)).project_id,
        before=before,
        after={"siteCheckDue": due.isoformat()},
    )
    return task


async def _setup_check_done(*, inspection: Inspection, actor_id: int | None, now: datetime) -> None:
    """A setup's site check passed: its permit's check is done (the department may approve)."""
    assert inspection.setup_task_id is not None
    task = await SetupTask.select_for_update().get(id=inspection.setup_task_id)
    if task.site_check_done_at is not None:
        return
    task.site_check_done_at = now
    await task.save(update_fields=["site_check_done_at"])
    await audit.record(
        actor_id=actor_id,
        action="setup_task.site_check",
        entity_type="setup_task",
        entity_id=task.id,
        project_id=await _setup_project_id(inspection),
        before={"siteCheckDone": False},
        after={"siteCheckDone": True, "inspection": inspection.id, "round": inspection.round},
    )


# --- documents ---------------------------------------------------------------------------------


async def inspection_layout(inspection_id: int) -> InspectionLayout:
    """The frozen layout of an inspection document: departments and their check codes."""
    departments = await InspectionDepartment.filter(inspection_id=inspection_id).select_related(
        "department"
    )
    if not departments:
        raise not_found("inspection", inspection_id, field="inspectionId")
    codes = {row.department_id: row.department.code for row in departments}
    checks: dict[str, list[str]] = {code: [] for code in codes.values()}
    for department_id, check_code in await CheckResult.filter(
        inspection_id=inspection_id
    ).values_list("department_id", "check_code"):
        checks[codes[int(department_id)]].append(str(check_code))
    return InspectionLayout(departments={k: sorted(v) for k, v in checks.items()})


async def document_exists(doc_name: str) -> bool:
    """Whether ``doc_name`` names an inspection or a project that exists (whoever asks)."""
    try:
        kind, key = parse_doc_name(doc_name)
    except LayoutError:
        return False
    if kind == "inspection":
        return await Inspection.exists(id=key)
    return await Project.exists(id=key)


async def document_access(viewer: Viewer, doc_name: str) -> FieldRights | None:
    """Who may open a field document: an inspection for its assigned inspectors (writable while
    it is open) and supervisors (read-only); an agency document for the project's agent
    (writable) and supervisors (read-only). None for everyone else and for unknown names."""
    try:
        kind, key = parse_doc_name(doc_name)
    except LayoutError:
        return None

    def rights(department_code: str | None, writable: bool) -> FieldRights:
        return FieldRights(
            user_id=viewer.user_id,
            username=viewer.username,
            role=viewer.role.value,
            department_code=department_code,
            writable=writable,
        )

    if kind == "inspection":
        inspection = await Inspection.get_or_none(id=key)
        if inspection is None:
            return None
        if viewer.role is Role.INSPECTOR:
            assignment = await InspectionAssignment.get_or_none(
                inspection_id=inspection.id, user_id=viewer.user_id
            ).select_related("department")
            if assignment is None:
                return None
            return rights(assignment.department.code, inspection.status in OPEN_STATUSES)
        if viewer.role is Role.SUPERVISOR and await _in_scope(viewer, inspection):
            return rights(None, False)
        return None
    else:
        project = await Project.get_or_none(id=key)
        if project is None:
            return None
        if viewer.role is Role.AGENT:
            return rights(None, True) if project.agent_id == viewer.user_id else None
    if viewer.role is Role.SUPERVISOR and (
        await Project.filter(project_scope(viewer), id=project.id).exists()
    ):
        return rights(None, False)
    return None
