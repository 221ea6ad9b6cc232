"""Store a parsed :class:`~approval.catalog.parse.Catalog` in the database.

Every section is upserted by ``code`` in one transaction, parents before children. Loading
the same catalog twice changes nothing the second time. A load that changes anything raises
the catalog's generation in that transaction (:mod:`approval.core.generations`), so every
running instance reads the new catalog within a second. Items that left the catalog are
deactivated (``active=False``), never deleted: tasks refer to them. The material links of
each catalog item are made to match the catalog exactly.

SQL stays bounded: each table is read once into a dict by code; new rows are inserted in
bulk; only rows whose values differ are updated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.transactions import in_transaction

from approval.catalog.parse import Catalog, ChecklistSpec, RegionSpec
from approval.core import generations
from storage.enums import DepartmentLevel, RegionKind
from storage.models import (
    ChecklistTemplate,
    Department,
    ItemMaterial,
    MaterialType,
    Region,
    ServiceItem,
    StageDefinition,
)

Progress = Callable[[str], None]
_M = TypeVar("_M", bound=Model)


@dataclass(frozen=True)
class SectionCounts:
    """What a load did to the rows of one section."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # item material links no longer listed
    deactivated: int = 0  # items no longer in the catalog

    @property
    def total(self) -> int:
        """Rows of this section in the catalog."""
        return self.created + self.updated + self.unchanged

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.deactivated)

    def describe(self) -> str:
        text = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if self.deleted:
            text += f", {self.deleted} deleted"
        if self.deactivated:
            text += f", {self.deactivated} deactivated"
        return text


class SectionReport:
    """What a load did, section by section (a dataclass of SectionCounts fields)."""

    def sections(self) -> list[tuple[str, SectionCounts]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]  # type: ignore[arg-type]

    @property
    def changed(self) -> bool:
        return any(counts.changed for _, counts in self.sections())

    def summary(self) -> str:
        """One line per section, e.g. ``items: 2 created, 1 updated, 42 unchanged``."""
        return "\n".join(f"{name}: {counts.describe()}" for name, counts in self.sections())


@dataclass(frozen=True)
class LoadReport(SectionReport):
    regions: SectionCounts = field(default_factory=SectionCounts)
    departments: SectionCounts = field(default_factory=SectionCounts)
    stages: SectionCounts = field(default_factory=SectionCounts)
    material_types: SectionCounts = field(default_factory=SectionCounts)
    items: SectionCounts = field(default_factory=SectionCounts)
    item_materials: SectionCounts = field(default_factory=SectionCounts)
    checklists: SectionCounts = field(default_factory=SectionCounts)


# --- helpers -----------------------------------------------------------------------------


class Upsert:
    """Upsert rows of one model by ``code``; reads the table once."""

    def __init__(self, model: type[Model], existing: Mapping[str, Model]) -> None:
        self.model = model
        self.existing = dict(existing)
        self.created = 0
        self.updated = 0
        self.unchanged = 0

    async def apply(self, wanted: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Create or update rows; ``wanted`` gives each code with its field values.

        Returns the ids of the given codes.
        """
        new: list[Model] = []
        ids: dict[str, int] = {}
        for code, values in wanted:
            row = self.existing.get(code)
            if row is None:
                new.append(self.model(code=code, **values))
                continue
            ids[code] = row.pk
            changed = [name for name, value in values.items() if getattr(row, name) != value]
            if not changed:
                self.unchanged += 1
                continue
            for name in changed:
                setattr(row, name, values[name])
            await row.save(update_fields=changed)
            self.updated += 1
        if new:
            await self.model.bulk_create(new)
            codes = [row.code for row in new]  # type: ignore[attr-defined]
            stored = await self.model.filter(code__in=codes).values_list("code", "id")
            for code, pk in stored:
                ids[code] = pk
            self.created += len(new)
        return ids

    def counts(self, **extra: int) -> SectionCounts:
        return SectionCounts(
            created=self.created, updated=self.updated, unchanged=self.unchanged, **extra
        )


async def by_code(model: type[_M]) -> dict[str, _M]:
    return {row.code: row for row in await model.all()}  # type: ignore[attr-defined]


def _region_levels(regions: Iterable[RegionSpec]) -> list[list[RegionSpec]]:
    """Regions grouped by depth: the roots first, then their children, and so on."""
    by_code = {r.code: r for r in regions}
    depth: dict[str, int] = {}

    def depth_of(code: str) -> int:
        if code not in depth:
            parent = by_code[code].parent
            depth[code] = 0 if parent is None else depth_of(parent) + 1
        return depth[code]

    levels: list[list[RegionSpec]] = []
    for spec in by_code.values():
        level = depth_of(spec.code)
        while len(levels) <= level:
            levels.append([])
        levels[level].append(spec)
    return levels


def checklist_checks(spec: ChecklistSpec) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "label": c.label, "measured": c.measured, "unit": c.unit}
        | ({"min": c.minimum} if c.minimum is not None else {})
        | ({"max": c.maximum} if c.maximum is not None else {})
        for c in spec.checks
    ]


# --- sections ----------------------------------------------------------------------------


async def _load_regions(catalog: Catalog) -> tuple[SectionCounts, dict[str, int]]:
    upsert = Upsert(Region, await by_code(Region))
    ids: dict[str, int] = {}
    for level in _region_levels(catalog.regions):
        ids |= await upsert.apply(
            (
                r.code,
                {
                    "name": r.name,
                    "kind": RegionKind(r.kind),
                    "admin_code": r.admin_code,
                    "parent_id": None if r.parent is None else ids[r.parent],
                    "assessments": list(r.assessments),
                    "max_land_area_m2": r.max_land_area_m2,
                    "max_investment_10k_yuan": r.max_investment_10k_yuan,
                },
            )
            for r in level
        )
    return upsert.counts(), ids


async def _load_departments(
    catalog: Catalog, regions: Mapping[str, int]
) -> tuple[SectionCounts, dict[str, int]]:
    upsert = Upsert(Department, await by_code(Department))
    ids = await upsert.apply(
        (
            d.code,
            {
                "name": d.name,
                "short_name": d.short_name,
                "level": DepartmentLevel(d.level),
                "region_id": regions[d.region],
            },
        )
        for d in catalog.departments
    )
    return upsert.counts(), ids


async def _load_stages(
    catalog: Catalog, departments: Mapping[str, int]
) -> tuple[SectionCounts, dict[str, int]]:
    upsert = Upsert(StageDefinition, await by_code(StageDefinition))
    ids = await upsert.apply(
        (
            s.code,
            {
                "name": s.name,
                "order": s.order,
                "time_limit_days": s.time_limit_days,
                "lead_department_id": departments[s.lead_department],
            },
        )
        for s in catalog.stages
    )
    return upsert.counts(), ids


async def _load_material_types(catalog: Catalog) -> tuple[SectionCounts, dict[str, int]]:
    upsert = Upsert(MaterialType, await by_code(MaterialType))
    ids = await upsert.apply(
        (t.code, {"name": t.name, "description": t.description}) for t in catalog.material_types
    )
    return upsert.counts(), ids


async def _load_items(
    catalog: Catalog, stages: Mapping[str, int], departments: Mapping[str, int]
) -> tuple[SectionCounts, dict[str, int]]:
    existing = await by_code(ServiceItem)
    upsert = Upsert(ServiceItem, existing)
    ids = await upsert.apply(
        (
            i.code,
            {
                "name": i.name,
                "stage_id": stages[i.stage],
                "department_id": departments[i.department],
                "statutory_days": i.statutory_days,
                "promised_days": i.promised_days,
                "site_check": i.site_check,
                "project_types": list(i.project_types),
                "regional_assessment": i.regional_assessment,
                "default_approval": i.default_approval,
                "active": True,
            },
        )
        for i in catalog.items
    )
    gone = [row.pk for code, row in existing.items() if code not in ids and row.active]
    if gone:
        await ServiceItem.filter(id__in=gone).update(active=False)
    return upsert.counts(deactivated=len(gone)), ids


async def _load_item_materials(
    catalog: Catalog, items: Mapping[str, int], material_types: Mapping[str, int]
) -> SectionCounts:
    wanted: dict[tuple[int, int], bool] = {
        (items[i.code], material_types[m.type]): m.core for i in catalog.items for m in i.materials
    }
    catalog_items = set(items.values())  # links of deactivated items are left alone
    rows = await ItemMaterial.all().values_list("id", "item_id", "material_type_id", "core")
    stored: dict[tuple[int, int], tuple[int, bool]] = {
        (item_id, type_id): (pk, core)
        for pk, item_id, type_id, core in rows
        if item_id in catalog_items
    }
    to_core: dict[bool, list[int]] = {True: [], False: []}
    to_delete: list[int] = []
    unchanged = 0
    for key, (pk, core) in stored.items():
        if key not in wanted:
            to_delete.append(pk)
        elif wanted[key] != core:
            to_core[wanted[key]].append(pk)
        else:
            unchanged += 1
    new = [
        ItemMaterial(item_id=item_id, material_type_id=type_id, core=core)
        for (item_id, type_id), core in wanted.items()
        if (item_id, type_id) not in stored
    ]
    if to_delete:
        await ItemMaterial.filter(id__in=to_delete).delete()
    for core, pks in to_core.items():
        if pks:
            await ItemMaterial.filter(id__in=pks).update(core=core)
    if new:
        await ItemMaterial.bulk_create(new)
    return SectionCounts(
        created=len(new),
        updated=len(to_core[True]) + len(to_core[False]),
        unchanged=unchanged,
        deleted=len(to_delete),
    )


async def _load_checklists(catalog: Catalog, departments: Mapping[str, int]) -> SectionCounts:
    upsert = Upsert(ChecklistTemplate, await by_code(ChecklistTemplate))
    await upsert.apply(
        (
            c.code,
            {
                "name": c.name,
                "department_id": departments[c.department],
                "checks": checklist_checks(c),
            },
        )
        for c in catalog.checklists
    )
    return upsert.counts()


# --- API ---------------------------------------------------------------------------------


async def load_catalog(catalog: Catalog, *, progress: Progress | None = None) -> LoadReport:
    """Upsert the whole catalog in one transaction; returns what changed per section."""

    def done(section: str, counts: SectionCounts) -> None:
        if progress is not None:
            progress(f"{section}: {counts.total}")

    async with in_transaction():
        regions, region_ids = await _load_regions(catalog)
        done("regions", regions)
        departments, department_ids = await _load_departments(catalog, region_ids)
        done("departments", departments)
        stages, stage_ids = await _load_stages(catalog, department_ids)
        done("stages", stages)
        material_types, type_ids = await _load_material_types(catalog)
        done("material_types", material_types)
        items, item_ids = await _load_items(catalog, stage_ids, department_ids)
        done("items", items)
        item_materials = await _load_item_materials(catalog, item_ids, type_ids)
        done("item_materials", item_materials)
        checklists = await _load_checklists(catalog, department_ids)
        done("checklists", checklists)
        report = LoadReport(
            regions=regions,
            departments=departments,
            stages=stages,
            material_types=material_types,
            items=items,
            item_materials=item_materials,
            checklists=checklists,
        )
        if report.changed:  # every instance's catalog snapshot is stale from this commit on
            await generations.advance(generations.CATALOG)
    return report
