"""What the window sees before it accepts a stage application (一窗受理): the items that would
become tasks with their deadlines if accepted today, and the project's one set of materials
against them: held, promised (容缺), or missing (core ones block the acceptance; a missing
non-core one needs a signed commitment due no later than the date given here).

It reads only; :func:`approval.projects.stages.accept_stage` applies the same rules when the
window accepts, so what this says is what the acceptance will say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from approval.core.access import Viewer, visible_project
from approval.core.dates import local_day
from approval.core.errors import invalid
from approval.projects.stages import (
    application_deadlines,
    commitment_limit,
    stage_readiness,
)
from storage.models import Department, ItemMaterial, Material, MaterialType, ServiceItem, Stage


class Holding(StrEnum):
    HELD = "held"  # submitted or accepted
    COMMITTED = "committed"  # a signed 容缺 commitment
    MISSING = "missing"


@dataclass(frozen=True)
class ApplicationItem:
    item: ServiceItem
    department: Department
    deadline: date  # if accepted today


@dataclass(frozen=True)
class ApplicationMaterial:
    material_type: MaterialType
    core: bool
    holding: Holding
    material: Material | None  # the project's row, when there is one
    latest_commitment_due: date | None  # for a missing non-core material
    set_by: ServiceItem | None  # the item whose deadline sets that date (None: the stage's)
    item_names: list[str]  # the items of this stage that need it


@dataclass(frozen=True)
class StageApplication:
    stage: Stage
    stage_deadline: date  # if accepted today
    items: list[ApplicationItem]
    materials: list[ApplicationMaterial]  # core first, then by code

    @property
    def missing_core(self) -> list[ApplicationMaterial]:
        return [m for m in self.materials if m.core and m.holding is Holding.MISSING]

    @property
    def missing_non_core(self) -> list[ApplicationMaterial]:
        return [m for m in self.materials if not m.core and m.holding is Holding.MISSING]


async def stage_application(
    *, viewer: Viewer, project_id: int, stage_code: str, now: datetime
) -> StageApplication:
    """The application for ``stage_code`` of a project the viewer may see, as of ``now``."""
    project = await visible_project(viewer, project_id)
    stage = (
        await Stage.filter(project_id=project.id, definition__code=stage_code.strip())
        .select_related("definition")
        .first()
    )
    if stage is None:
        raise invalid(f"stage {stage_code!r} is not a stage of this project", field="stage")
    readiness = await stage_readiness(project=project, stage=stage)
    today = local_day(now)
    stage_deadline, deadlines = await application_deadlines(
        today=today, definition=stage.definition, items=readiness.items
    )
    departments = {
        d.id: d for d in await Department.filter(id__in={i.department_id for i in readiness.items})
    }
    links = await ItemMaterial.filter(item_id__in=[i.id for i in readiness.items]).select_related(
        "material_type"
    )
    names = {i.id: i.name for i in readiness.items}
    core: dict[int, bool] = {}
    types: dict[int, MaterialType] = {}
    needed_by: dict[int, list[str]] = {}
    for link in links:
        types[link.material_type_id] = link.material_type
        core[link.material_type_id] = core.get(link.material_type_id, False) or link.core
        needed_by.setdefault(link.material_type_id, []).append(names[link.item_id])
    held = {m.material_type_id: m for m in await Material.filter(project_id=project.id)}
    missing = {t.id for t in (*readiness.missing_core, *readiness.missing_non_core)}
    committed = {t.id for t in readiness.committed}
    materials = []
    for type_id, material_type in types.items():
        holding = (
            Holding.MISSING
            if type_id in missing
            else Holding.COMMITTED
            if type_id in committed
            else Holding.HELD
        )
        latest, by = None, None
        if holding is Holding.MISSING and not core[type_id]:
            latest, by = await commitment_limit(
                readiness.items, material_type, deadlines, stage_deadline
            )
        materials.append(
            ApplicationMaterial(
                material_type=material_type,
                core=core[type_id],
                holding=holding,
                material=held.get(type_id),
                latest_commitment_due=latest,
                set_by=by,
                item_names=sorted(set(needed_by[type_id])),
            )
        )
    materials.sort(key=lambda m: (not m.core, m.material_type.code))
    return StageApplication(
        stage=stage,
        stage_deadline=stage_deadline,
        items=[
            ApplicationItem(
                item=i, department=departments[i.department_id], deadline=deadlines[i.id]
            )
            for i in sorted(readiness.items, key=lambda i: (deadlines[i.id], i.code))
        ],
        materials=materials,
    )
