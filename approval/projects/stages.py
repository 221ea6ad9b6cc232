"""Stages: the window accepts an application (一窗受理) and it fans out into parallel tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, visible_project
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.review import rules
from approval.review.rules import PASSING
from storage.enums import MaterialStatus, Role, StageStatus
from storage.models import (
    ItemMaterial,
    Material,
    MaterialType,
    Project,
    Region,
    ServiceItem,
    Stage,
    StageDefinition,
    Task,
)

HELD = (MaterialStatus.SUBMITTED, MaterialStatus.ACCEPTED)


@dataclass(frozen=True)
class Commitment:
    """容缺: the applicant's signed promise to deliver a non-core material by a date."""

    material_type_code: str
    due: date
    signed_by: str


@dataclass
class Readiness:
    """What a stage application still lacks, per material type."""

    items: list[ServiceItem]
    missing_core: list[MaterialType] = field(default_factory=list)
    missing_non_core: list[MaterialType] = field(default_factory=list)
    committed: list[MaterialType] = field(default_factory=list)


def exempt_by_regional_assessment(item: ServiceItem, project: Project, region: Region) -> bool:
    """区域评估: a park's area-wide assessment replaces the project's own report, within limits."""
    if item.regional_assessment is None or item.regional_assessment not in region.assessments:
        return False
    if region.max_land_area_m2 is not None and project.land_area_m2 > region.max_land_area_m2:
        return False
    return not (
        region.max_investment_10k_yuan is not None
        and project.investment_10k_yuan > region.max_investment_10k_yuan
    )


async def stage_readiness(*, project: Project, stage: Stage) -> Readiness:
    region = await Region.get(id=project.region_id)
    items = [
        item
        for item in await ServiceItem.filter(stage_id=stage.definition_id, active=True)
        if project.project_type.value in item.project_types
        and not exempt_by_regional_assessment(item, project, region)
    ]
    links = await ItemMaterial.filter(item_id__in=[i.id for i in items]).select_related(
        "material_type"
    )
    core: dict[int, bool] = {}
    types: dict[int, MaterialType] = {}
    for link in links:
        types[link.material_type.id] = link.material_type
        core[link.material_type.id] = core.get(link.material_type.id, False) or link.core
    held = {m.material_type_id: m.status for m in await Material.filter(project_id=project.id)}
    readiness = Readiness(items=items)
    for type_id, material_type in sorted(types.items()):
        status = held.get(type_id)
        if status in HELD:
            continue
        if status is MaterialStatus.COMMITTED:
            readiness.committed.append(material_type)
        elif core[type_id]:
            readiness.missing_core.append(material_type)
        else:
            readiness.missing_non_core.append(material_type)
    return readiness


def _names(types: list[MaterialType]) -> str:
    return "、".join(f"{t.name}({t.code})" for t in types)


async def accept_stage(
    *,
    viewer: Viewer,
    project_id: int,
    stage_code: str,
    now: datetime,
    commitments: list[Commitment] | None = None,
) -> Stage:
    """The window accepts one stage application; every applicable item becomes a task at once."""
    require_role(viewer, Role.WINDOW_CLERK)
    project = await visible_project(viewer, project_id)
    stages = {
        s.definition.code: s
        for s in await Stage.filter(project_id=project.id).select_related("definition")
    }
    stage = stages.get(stage_code)
    if stage is None:
        raise invalid(f"stage {stage_code!r} is not one of {', '.join(stages)}", field="stage")
    _check_can_accept(stage, stages)
    readiness = await stage_readiness(project=project, stage=stage)
    if not readiness.items:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"no item of stage {stage.definition.name} applies to this project; nothing to accept",
            field="stage",
        )
    today = local_day(now)
    stage_deadline, deadlines = await application_deadlines(
        today=today, definition=stage.definition, items=readiness.items
    )
    promised = {c.material_type_code: c for c in commitments or []}
    missing_non_core = {t.code: t for t in readiness.missing_non_core}
    for code, commitment in promised.items():
        if code not in missing_non_core:
            raise invalid(
                f"a commitment (容缺) is only for a missing non-core material of this "
                f"stage; {code!r} is not one",
                field="commitments",
            )
        latest, item = await commitment_limit(
            readiness.items, missing_non_core[code], deadlines, stage_deadline
        )
        needed_by = f"the deadline of {item.name}" if item else "the stage deadline"
        if not today < commitment.due <= latest:
            raise invalid(
                f"the commitment for {code!r} is due {commitment.due}; it must fall "
                f"after today and no later than the stage deadline and the deadline of every "
                f"item that needs it: {latest} ({needed_by}); promise an earlier date",
                field="commitments",
            )
        if not commitment.signed_by.strip():
            raise invalid(f"the commitment for {code!r} has no signatory", field="commitments")
    if readiness.missing_core:
        raise DomainError(
            ErrorCode.MISSING_CORE_MATERIALS,
            "core materials are missing, the "
            f"application cannot be accepted: {_names(readiness.missing_core)}; "
            "submit them first",
            field="materials",
        )
    uncommitted = [t for code, t in missing_non_core.items() if code not in promised]
    if uncommitted:
        raise DomainError(
            ErrorCode.MISSING_CORE_MATERIALS,
            "non-core materials are missing "
            f"without a signed commitment (容缺): {_names(uncommitted)}; submit "
            "them or add a commitment for each",
            field="commitments",
        )
    async with in_transaction():
        locked = await Stage.select_for_update().get(id=stage.id)
        if locked.status is StageStatus.IN_REVIEW or locked.round != stage.round:
            raise DomainError(
                ErrorCode.CONFLICT,
                "this stage was accepted meanwhile by someone else; reload it",
                field="stage",
            )
        before = {"status": locked.status.value, "round": locked.round}
        locked.status = StageStatus.IN_REVIEW
        locked.round += 1
        locked.outcome = None  # type: ignore[assignment]
        locked.accepted_at = now
        locked.accepted_by_id = viewer.user_id
        locked.deadline = stage_deadline
        locked.completed_at = None
        await locked.save()
        for code, commitment in promised.items():
            await Material.update_or_create(
                project_id=project.id,
                material_type_id=missing_non_core[code].id,
                defaults={
                    "status": MaterialStatus.COMMITTED,
                    "commitment_due": commitment.due,
                    "commitment_signed_by": commitment.signed_by.strip(),
                },
            )
        await Task.bulk_create(
            [
                Task(
                    stage_id=locked.id,
                    item_id=item.id,
                    department_id=item.department_id,
                    round=locked.round,
                    deadline=deadlines[item.id],
                )
                for item in readiness.items
            ]
        )
        await audit.record(
            actor_id=viewer.user_id,
            action="stage.accept",
            entity_type="stage",
            entity_id=locked.id,
            project_id=project.id,
            before=before,
            after={
                "status": locked.status.value,
                "round": locked.round,
                "deadline": stage_deadline.isoformat(),
                "tasks": len(readiness.items),
                "commitments": sorted(promised),
            },
        )
    return locked


async def application_deadlines(
    *, today: date, definition: StageDefinition, items: list[ServiceItem]
) -> tuple[date, dict[int, date]]:
    """The stage deadline and each item's (by id) for an application accepted ``today``."""
    working_days = {i.id: i.promised_days for i in items}
    working_days[0] = definition.time_limit_days  # ids start at 1: 0 is the stage's own
    found = await rules.deadlines(today=today, working_days=working_days, field="stage")
    return found.pop(0), found


async def commitment_limit(
    items: list[ServiceItem],
    material_type: MaterialType,
    deadlines: dict[int, date],
    stage_deadline: date,
) -> tuple[date, ServiceItem | None]:
    """The latest due date a 容缺 commitment may promise: the earliest deadline of the items
    that need the material (and never after the stage deadline), with the item that sets it
    (None: the stage deadline does)."""
    needing = set(
        await ItemMaterial.filter(
            item_id__in=[i.id for i in items], material_type_id=material_type.id
        ).values_list("item_id", flat=True)
    )
    latest: date = stage_deadline
    by: ServiceItem | None = None
    for item in items:
        if item.id in needing and deadlines[item.id] < latest:
            latest, by = deadlines[item.id], item
    return latest, by


def _check_can_accept(stage: Stage, stages: dict[str, Stage]) -> None:
    if stage.status is StageStatus.IN_REVIEW:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"stage {stage.definition.name} is already in review",
            field="stage",
        )
    if stage.status is StageStatus.COMPLETED and stage.outcome in PASSING:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"stage {stage.definition.name} is already approved",
            field="stage",
        )
    for other in stages.values():
        if other.definition.order < stage.definition.order and not (
            other.status is StageStatus.COMPLETED and other.outcome in PASSING
        ):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"stage {other.definition.name} must be "
                f"approved before {stage.definition.name} can be accepted",
                field="stage",
            )
