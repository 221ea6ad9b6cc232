"""联合告知: the one-time joint notice a project gets before it applies.

For a project (its type, region or park, land area and investment) the notice lists, stage by
stage, every approval item that applies and the items a park's area-wide assessment (区域评估)
exempts; every material once across departments (一套材料); the design requirements of the
departments' joint-acceptance checklists (设计要求); and the working days each stage is
expected to take. It works for a stored project and for a prospective one (before it exists).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from approval.core import audit
from approval.core.access import Viewer, project_scope, visible_project
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.labels import label
from approval.projects.stages import exempt_by_regional_assessment
from storage.enums import ProjectType
from storage.models import (
    ChecklistTemplate,
    Department,
    ItemMaterial,
    MaterialType,
    Project,
    Region,
    ServiceItem,
    StageDefinition,
)

ASSESSMENT_LABELS = {
    "energy": "区域节能评价",
    "environment": "区域环境影响评价",
    "water": "区域水资源论证",
    "seismic": "区域地震安全性评价",
}


@dataclass(frozen=True)
class NoticeItem:
    """An approval item the project must go through."""

    code: str
    name: str
    department_code: str
    department_name: str
    statutory_days: int
    promised_days: int
    site_check: bool


@dataclass(frozen=True)
class ExemptItem:
    """An item a park's area-wide assessment replaces (区域评估), with the reason."""

    code: str
    name: str
    department_code: str
    department_name: str
    assessment: str
    reason: str


@dataclass(frozen=True)
class NoticeStage:
    code: str
    name: str
    order: int
    lead_department_name: str
    time_limit_days: int  # the stage's time limit (阶段时限), working days
    longest_promised_days: int  # the slowest applicable item's promised days; 0 if none
    items: tuple[NoticeItem, ...]
    exempted: tuple[ExemptItem, ...]


@dataclass(frozen=True)
class MaterialNeed:
    """One item that needs a material, and whether it needs it as core (核心材料)."""

    stage_code: str
    item_code: str
    item_name: str
    department_code: str
    department_name: str
    core: bool


@dataclass(frozen=True)
class NoticeMaterial:
    """One material of the project's one set, listed once whoever needs it."""

    code: str
    name: str
    description: str
    core: bool  # some item needs it as a core material
    needs: tuple[MaterialNeed, ...]

    @property
    def department_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.department_name for n in self.needs))


@dataclass(frozen=True)
class DesignRequirement:
    """The checks a department will make at joint acceptance: design for them now."""

    department_code: str
    department_name: str
    checklist_code: str
    checklist_name: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class JointNotice:
    project_code: str | None
    project_name: str | None
    region_code: str
    region_name: str
    project_type: ProjectType
    land_area_m2: Decimal
    investment_10k_yuan: Decimal
    stages: tuple[NoticeStage, ...]
    materials: tuple[NoticeMaterial, ...]
    design_requirements: tuple[DesignRequirement, ...]
    notes: tuple[str, ...]  # e.g. why a park's assessment does not apply to this project

    @property
    def project_type_label(self) -> str:
        return label(self.project_type)

    @property
    def total_time_limit_days(self) -> int:
        return sum(s.time_limit_days for s in self.stages)

    @property
    def total_longest_promised_days(self) -> int:
        return sum(s.longest_promised_days for s in self.stages)


def _positive(value: Decimal, field: str, what: str) -> Decimal:
    try:
        ok = value.is_finite() and value > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise invalid(f"{what} must be a positive number, got {value}", field=field)
    return value


def _limit_notes(project: Project, region: Region) -> list[str]:
    """Why a park's area-wide assessments do not cover this project (empty when they do)."""
    if not region.assessments:
        return []
    notes = []
    if region.max_land_area_m2 is not None and project.land_area_m2 > region.max_land_area_m2:
        notes.append(
            f"用地面积 {project.land_area_m2} 平方米超过{region.name}区域评估限额 "
            f"{region.max_land_area_m2:g} 平方米"
        )
    if (
        region.max_investment_10k_yuan is not None
        and project.investment_10k_yuan > region.max_investment_10k_yuan
    ):
        notes.append(
            f"总投资 {project.investment_10k_yuan} 万元超过{region.name}区域评估限额 "
            f"{region.max_investment_10k_yuan:g} 万元"
        )
    if notes:
        notes.append("区域评估成果不适用, 须单独编制相关评估报告")
    return notes


def _exemption_reason(item: ServiceItem, region: Region) -> str:
    assessment = item.regional_assessment or ""
    limits = []
    if region.max_land_area_m2 is not None:
        limits.append(f"用地面积不超过 {region.max_land_area_m2:g} 平方米")
    if region.max_investment_10k_yuan is not None:
        limits.append(f"总投资不超过 {region.max_investment_10k_yuan:g} 万元")
    within = f", 项目在园区限额内({'、'.join(limits)})" if limits else ""
    return (
        f"{region.name}已完成{ASSESSMENT_LABELS.get(assessment, assessment)}{within}, "
        f"免于单独办理本事项"
    )


async def _build(
    *, project: Project, region: Region, code: str | None, name: str | None
) -> JointNotice:
    definitions = await StageDefinition.all().order_by("order")
    if not definitions:
        raise DomainError(
            ErrorCode.INVALID_STATE, "the catalog is not loaded; run `onewindow load-catalog` first"
        )
    departments = {d.id: d for d in await Department.all()}
    all_items = await ServiceItem.filter(active=True).order_by("id")
    applicable = [i for i in all_items if project.project_type.value in i.project_types]
    required = [i for i in applicable if not exempt_by_regional_assessment(i, project, region)]
    exempt = [i for i in applicable if exempt_by_regional_assessment(i, project, region)]
    stage_code = {d.id: d.code for d in definitions}

    stages = []
    for definition in definitions:
        items = [i for i in required if i.stage_id == definition.id]
        stages.append(
            NoticeStage(
                code=definition.code,
                name=definition.name,
                order=definition.order,
                lead_department_name=departments[definition.lead_department_id].name,
                time_limit_days=definition.time_limit_days,
                longest_promised_days=max((i.promised_days for i in items), default=0),
                items=tuple(
                    NoticeItem(
                        code=i.code,
                        name=i.name,
                        department_code=departments[i.department_id].code,
                        department_name=departments[i.department_id].name,
                        statutory_days=i.statutory_days,
                        promised_days=i.promised_days,
                        site_check=i.site_check,
                    )
                    for i in items
                ),
                exempted=tuple(
                    ExemptItem(
                        code=i.code,
                        name=i.name,
                        department_code=departments[i.department_id].code,
                        department_name=departments[i.department_id].name,
                        assessment=i.regional_assessment or "",
                        reason=_exemption_reason(i, region),
                    )
                    for i in exempt
                    if i.stage_id == definition.id
                ),
            )
        )

    # One set of materials: each material type once, with every item that needs it.
    by_item = {i.id: i for i in required}
    links = await ItemMaterial.filter(item_id__in=list(by_item)).order_by("id")
    needs: dict[int, list[MaterialNeed]] = defaultdict(list)
    for link in links:
        item = by_item[link.item_id]
        department = departments[item.department_id]
        needs[link.material_type_id].append(
            MaterialNeed(
                stage_code=stage_code[item.stage_id],
                item_code=item.code,
                item_name=item.name,
                department_code=department.code,
                department_name=department.name,
                core=link.core,
            )
        )
    types = {t.id: t for t in await MaterialType.filter(id__in=list(needs))}
    order = {d.code: d.order for d in definitions}
    materials = sorted(
        (
            NoticeMaterial(
                code=types[type_id].code,
                name=types[type_id].name,
                description=types[type_id].description,
                core=any(n.core for n in type_needs),
                needs=tuple(type_needs),
            )
            for type_id, type_needs in needs.items()
        ),
        # first the stage that first needs it, then core before non-core, then the code
        key=lambda m: (min(order[n.stage_code] for n in m.needs), not m.core, m.code),
    )

    # Design requirements: the joint-acceptance checklists of the departments involved.
    involved = {i.department_id for i in required}
    checklists = await ChecklistTemplate.filter(department_id__in=sorted(involved)).order_by("id")
    design = tuple(
        DesignRequirement(
            department_code=departments[c.department_id].code,
            department_name=departments[c.department_id].name,
            checklist_code=c.code,
            checklist_name=c.name,
            requirements=tuple(str(check.get("label", "")) for check in c.checks),
        )
        for c in checklists
    )
    return JointNotice(
        project_code=code,
        project_name=name,
        region_code=region.code,
        region_name=region.name,
        project_type=project.project_type,
        land_area_m2=Decimal(project.land_area_m2),
        investment_10k_yuan=Decimal(project.investment_10k_yuan),
        stages=tuple(stages),
        materials=tuple(materials),
        design_requirements=design,
        notes=tuple(_limit_notes(project, region)),
    )


async def joint_notice(
    *,
    region_code: str,
    project_type: ProjectType,
    land_area_m2: Decimal,
    investment_10k_yuan: Decimal,
) -> JointNotice:
    """The joint notice for a prospective project, before it has applied."""
    land = _positive(land_area_m2, "landArea", "land area")
    investment = _positive(investment_10k_yuan, "investment", "investment")
    region = await Region.get_or_none(code=region_code.strip())
    if region is None:
        raise invalid(
            f"region {region_code!r} is not in the catalog; pick one listed by the regions query",
            field="regionCode",
        )
    # An unsaved project: the exemption rule reads only its type, area and investment.
    prospective = Project(
        project_type=ProjectType(project_type),
        land_area_m2=land,
        investment_10k_yuan=investment,
        region_id=region.id,
    )
    return await _build(project=prospective, region=region, code=None, name=None)


async def project_notice(
    *, viewer: Viewer, project_id: int | None = None, project_code: str | None = None
) -> JointNotice:
    """The joint notice of a stored project the viewer may see (by id or by project code)."""
    if project_id is not None:
        project = await visible_project(viewer, project_id)
    elif project_code is not None:
        found = await Project.filter(project_scope(viewer), code=project_code.strip()).first()
        if found is None:
            raise DomainError(
                ErrorCode.NOT_FOUND,
                f"project {project_code!r} does not exist or is not visible to you; "
                "check the project code",
                field="projectCode",
            )
        project = found
    else:
        raise invalid("give a project id or a project code", field="projectId")
    await audit.record(
        actor_id=viewer.user_id,
        action="notice.view",
        entity_type="project",
        entity_id=project.id,
        project_id=project.id,
    )
    region = await Region.get(id=project.region_id)
    return await _build(project=project, region=region, code=project.code, name=project.name)
