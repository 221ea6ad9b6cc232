"""Store a parsed :class:`~approval.catalog.company.CompanyCatalog` in the database.

Like the main catalog: one transaction, upserts by code, nothing changed the second time, the
catalog's generation raised when anything changed. Permits, flows and business types that left
the file are deactivated (setups refer to them); the links of the file's permits and flows are
made to match it exactly. Departments the file uses without defining must already be stored
(the main catalog is loaded first), else the load is refused naming the line that uses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tortoise.models import Model
from tortoise.transactions import in_transaction

from approval.catalog.company import CompanyCatalog
from approval.catalog.load import (
    SectionCounts,
    SectionReport,
    Upsert,
    by_code,
    checklist_checks,
)
from approval.catalog.parse import CatalogError
from approval.core import generations
from storage.enums import DepartmentLevel
from storage.models import (
    BusinessType,
    ChecklistTemplate,
    Department,
    MaterialType,
    Region,
    SetupFlow,
    SetupFlowGroup,
    SetupFlowPermit,
    SetupPermit,
    SetupPermitMaterial,
    SetupRules,
)


@dataclass(frozen=True)
class CompanyLoadReport(SectionReport):
    departments: SectionCounts = field(default_factory=SectionCounts)
    material_types: SectionCounts = field(default_factory=SectionCounts)
    checklists: SectionCounts = field(default_factory=SectionCounts)
    permits: SectionCounts = field(default_factory=SectionCounts)
    groups: SectionCounts = field(default_factory=SectionCounts)
    flows: SectionCounts = field(default_factory=SectionCounts)
    business_types: SectionCounts = field(default_factory=SectionCounts)
    links: SectionCounts = field(default_factory=SectionCounts)  # permit materials, flow permits
    rules: SectionCounts = field(default_factory=SectionCounts)


async def _check_references(catalog: CompanyCatalog, source: str) -> None:
    stored = set(await Department.all().values_list("code", flat=True))
    for code in sorted(catalog.referenced_departments() - stored):
        users = [p.line for p in catalog.permits if p.department == code]
        users += [c.line for c in catalog.checklists if c.department == code]
        raise CatalogError(
            f"department {code!r} is neither defined in this file nor stored",
            "load the main catalog first (onewindow load-catalog) or define it under departments",
            line=min((line for line in users if line is not None), default=None),
            source=source,
        )
    regions = set(await Region.all().values_list("code", flat=True))
    for department in catalog.departments:
        if department.region not in regions:
            raise CatalogError(
                f"department {department.code!r} is in unknown region {department.region!r}",
                "use a region code of the main catalog",
                line=department.line,
                source=source,
            )


async def _links(
    model: type[Model],
    owner: str,
    target: str,
    wanted: Mapping[tuple[int, int], bool | None],
    owners: Iterable[int],
) -> SectionCounts:
    """Make the link rows of ``owners`` exactly ``wanted`` ((owner, target) -> core or None)."""
    mine = set(owners)
    has_core = "core" in model._meta.fields_map
    columns = ["id", f"{owner}_id", f"{target}_id"] + (["core"] if has_core else [])
    stored = {
        (row[1], row[2]): row for row in await model.all().values_list(*columns) if row[1] in mine
    }
    gone = [row[0] for key, row in stored.items() if key not in wanted]
    changed = [
        (row[0], wanted[key])
        for key, row in stored.items()
        if key in wanted and has_core and row[3] != wanted[key]
    ]
    new = [
        model(**{f"{owner}_id": a, f"{target}_id": b}, **({"core": core} if has_core else {}))
        for (a, b), core in wanted.items()
        if (a, b) not in stored
    ]
    if gone:
        await model.filter(id__in=gone).delete()
    for pk, core in changed:
        await model.filter(id=pk).update(core=core)
    if new:
        await model.bulk_create(new)
    return SectionCounts(
        created=len(new),
        updated=len(changed),
        unchanged=len(stored) - len(gone) - len(changed),
        deleted=len(gone),
    )


async def _deactivate(model: type[Model], existing: Mapping[str, Model], kept: set[str]) -> int:
    gone = [row.pk for code, row in existing.items() if code not in kept and row.active]  # type: ignore[attr-defined]
    if gone:
        await model.filter(id__in=gone).update(active=False)
    return len(gone)


async def load_company_catalog(
    catalog: CompanyCatalog, *, source: str = "company.yaml"
) -> CompanyLoadReport:
    """Upsert the company catalog in one transaction; returns what changed per section."""
    async with in_transaction():
        await _check_references(catalog, source)
        regions = dict(await Region.all().values_list("code", "id"))
        upsert = Upsert(Department, await by_code(Department))
        await upsert.apply(
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
        departments_counts = upsert.counts()
        departments = dict(await Department.all().values_list("code", "id"))

        upsert = Upsert(MaterialType, await by_code(MaterialType))
        await upsert.apply(
            (t.code, {"name": t.name, "description": t.description}) for t in catalog.material_types
        )
        types_counts = upsert.counts()
        types = dict(await MaterialType.all().values_list("code", "id"))

        upsert = Upsert(ChecklistTemplate, await by_code(ChecklistTemplate))
        checklists = await upsert.apply(
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
        checklists_counts = upsert.counts()

        existing_permits = await by_code(SetupPermit)
        upsert = Upsert(SetupPermit, existing_permits)
        permits = await upsert.apply(
            (
                p.code,
                {
                    "name": p.name,
                    "department_id": departments[p.department],
                    "core": p.core,
                    "site_check_id": checklists[p.site_check] if p.site_check else None,
                    "default_approval": p.default_approval,
                    "active": True,
                },
            )
            for p in catalog.permits
        )
        permits_counts = upsert.counts(
            deactivated=await _deactivate(SetupPermit, existing_permits, set(permits))
        )

        upsert = Upsert(SetupFlowGroup, await by_code(SetupFlowGroup))
        groups = await upsert.apply(
            (g.code, {"name": g.name, "order": order})
            for order, g in enumerate(catalog.groups, start=1)
        )
        groups_counts = upsert.counts()

        existing_flows = await by_code(SetupFlow)
        upsert = Upsert(SetupFlow, existing_flows)
        flows = await upsert.apply(
            (
                f.code,
                {
                    "name": f.name,
                    "group_id": groups[g.code],
                    "order": order,
                    "starts_project": f.starts_project,
                    "active": True,
                },
            )
            for g in catalog.groups
            for order, f in enumerate(g.flows, start=1)
        )
        flows_counts = upsert.counts(
            deactivated=await _deactivate(SetupFlow, existing_flows, set(flows))
        )

        existing_types = await by_code(BusinessType)
        upsert = Upsert(BusinessType, existing_types)
        business_types = await upsert.apply(
            (b.code, {"name": b.name, "flow_id": flows[f.code], "active": True})
            for f in catalog.flows
            for b in f.business_types
        )
        types_of_business = upsert.counts(
            deactivated=await _deactivate(BusinessType, existing_types, set(business_types))
        )

        materials = await _links(
            SetupPermitMaterial,
            "permit",
            "material_type",
            {
                (permits[p.code], types[m.type]): m.core
                for p in catalog.permits
                for m in p.materials
            },
            permits.values(),
        )
        flow_permits = await _links(
            SetupFlowPermit,
            "flow",
            "permit",
            {(flows[f.code], permits[code]): None for f in catalog.flows for code in f.permits},
            flows.values(),
        )
        links = SectionCounts(
            created=materials.created + flow_permits.created,
            updated=materials.updated + flow_permits.updated,
            unchanged=materials.unchanged + flow_permits.unchanged,
            deleted=materials.deleted + flow_permits.deleted,
        )

        rules = {
            "window_id": departments[catalog.window],
            "core_days": catalog.time_limits.core,
            "x_days": catalog.time_limits.x,
            "site_check_days": catalog.time_limits.site_check,
        }
        row = await SetupRules.get_or_none(id=1)
        if row is None:
            await SetupRules.create(id=1, **rules)
            rules_counts = SectionCounts(created=1)
        elif any(getattr(row, k) != v for k, v in rules.items()):
            await SetupRules.filter(id=1).update(**rules)
            rules_counts = SectionCounts(updated=1)
        else:
            rules_counts = SectionCounts(unchanged=1)

        report = CompanyLoadReport(
            departments=departments_counts,
            material_types=types_counts,
            checklists=checklists_counts,
            permits=permits_counts,
            groups=groups_counts,
            flows=flows_counts,
            business_types=types_of_business,
            links=links,
            rules=rules_counts,
        )
        if report.changed:
            await generations.advance(generations.CATALOG)
    return report
