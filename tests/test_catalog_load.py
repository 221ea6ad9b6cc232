"""Loading the catalog into the database: counts, idempotence, updates, deactivation."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from approval.catalog.load import LoadReport, SectionCounts, load_catalog
from approval.catalog.parse import Catalog, load_default_catalog
from storage.enums import RegionKind
from storage.models import (
    ChecklistTemplate,
    Department,
    ItemMaterial,
    MaterialType,
    Region,
    ServiceItem,
    StageDefinition,
)

pytestmark = pytest.mark.usefixtures("clean_catalog")

SHIPPED = {
    "regions": 18,
    "departments": 18,
    "stages": 4,
    "material_types": 51,
    "items": 45,
    "item_materials": 154,
    "checklists": 7,
}


class _SqlLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())

    def writes(self) -> list[str]:
        return [
            s
            for s in self.statements
            if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]


@pytest.fixture
def sql_log() -> Iterator[_SqlLog]:
    logger = logging.getLogger("tortoise.db_client")
    handler = _SqlLog()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_default_catalog()


def _only(report: LoadReport, **changed: SectionCounts) -> None:
    """Every section unchanged except ``changed``."""
    for name, counts in report.sections():
        if name in changed:
            assert counts == changed[name], name
        else:
            assert counts == SectionCounts(unchanged=SHIPPED[name]), name


async def test_first_load_creates_the_shipped_catalog(catalog: Catalog) -> None:
    messages: list[str] = []
    report = await load_catalog(catalog, progress=messages.append)

    for name, count in SHIPPED.items():
        assert getattr(report, name) == SectionCounts(created=count), name
    assert messages == [f"{name}: {count}" for name, count in SHIPPED.items()]
    assert report.changed
    assert report.summary().splitlines()[0] == "regions: 18 created, 0 updated, 0 unchanged"

    assert await Region.all().count() == 18
    assert await Department.all().count() == 18
    assert await StageDefinition.all().count() == 4
    assert await MaterialType.all().count() == 51
    assert await ServiceItem.filter(active=True).count() == 45
    assert await ItemMaterial.all().count() == 154
    assert await ChecklistTemplate.all().count() == 7

    park = await Region.get(code="371402-p01").prefetch_related("parent")
    assert park.kind is RegionKind.PARK
    assert park.parent is not None and park.parent.code == "371402"
    spec = catalog.region("371402-p01")
    assert park.assessments == list(spec.assessments)
    assert park.max_land_area_m2 == spec.max_land_area_m2

    item = catalog.items[0]
    row = await ServiceItem.get(code=item.code).prefetch_related("stage", "department")
    assert (row.stage.code, row.department.code) == (item.stage, item.department)
    assert row.project_types == list(item.project_types)
    links = await ItemMaterial.filter(item=row).values_list("material_type__code", "core")
    assert sorted(links) == sorted((m.type, m.core) for m in item.materials)

    checklist = catalog.checklists[0]
    stored = await ChecklistTemplate.get(code=checklist.code)
    assert [c["code"] for c in stored.checks] == [c.code for c in checklist.checks]


async def test_second_load_changes_nothing(catalog: Catalog, sql_log: _SqlLog) -> None:
    await load_catalog(catalog)
    sql_log.statements.clear()

    report = await load_catalog(catalog)

    _only(report)
    assert not report.changed
    assert sql_log.statements, "the handler saw no SQL: is the logger name right?"
    assert sql_log.writes() == []
    selects = [s for s in sql_log.statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 10  # one read per table, not one per row


async def test_changed_promised_days_and_removed_link(catalog: Catalog, sql_log: _SqlLog) -> None:
    await load_catalog(catalog)
    item = next(i for i in catalog.items if len(i.materials) >= 2 and i.promised_days > 1)
    dropped = item.materials[-1]
    changed_item = dataclasses.replace(
        item, promised_days=item.promised_days - 1, materials=item.materials[:-1]
    )
    modified = dataclasses.replace(
        catalog,
        items=tuple(changed_item if i.code == item.code else i for i in catalog.items),
    )
    sql_log.statements.clear()

    report = await load_catalog(modified)

    _only(
        report,
        items=SectionCounts(updated=1, unchanged=44),
        item_materials=SectionCounts(unchanged=153, deleted=1),
    )
    writes = sql_log.writes()
    assert len(writes) == 3, writes  # the item, the link, and the catalog's generation
    assert "generation" in writes[-1]
    row = await ServiceItem.get(code=item.code)
    assert row.promised_days == item.promised_days - 1
    assert row.statutory_days == item.statutory_days
    codes = await ItemMaterial.filter(item=row).values_list("material_type__code", flat=True)
    assert sorted(codes) == sorted(m.type for m in item.materials[:-1])
    assert dropped.type not in codes
    assert await MaterialType.filter(code=dropped.type).exists()  # the type itself stays

    # and back: the link returns, the days are restored
    report = await load_catalog(catalog)
    _only(
        report,
        items=SectionCounts(updated=1, unchanged=44),
        item_materials=SectionCounts(created=1, unchanged=153),
    )


async def test_core_flag_change_updates_the_link(catalog: Catalog) -> None:
    await load_catalog(catalog)
    item = catalog.items[0]
    first = item.materials[0]
    flipped = dataclasses.replace(first, core=not first.core)
    modified = dataclasses.replace(
        catalog,
        items=(
            dataclasses.replace(item, materials=(flipped, *item.materials[1:])),
            *catalog.items[1:],
        ),
    )

    report = await load_catalog(modified)

    _only(report, item_materials=SectionCounts(updated=1, unchanged=153))
    link = await ItemMaterial.get(item__code=item.code, material_type__code=first.type)
    assert link.core is (not first.core)


async def test_removed_item_is_deactivated_then_reactivated(catalog: Catalog) -> None:
    await load_catalog(catalog)
    removed = catalog.items[-1]
    modified = dataclasses.replace(catalog, items=catalog.items[:-1])

    report = await load_catalog(modified)

    _only(
        report,
        items=SectionCounts(unchanged=44, deactivated=1),
        item_materials=SectionCounts(unchanged=154 - len(removed.materials)),
    )
    row = await ServiceItem.get(code=removed.code)
    assert row.active is False
    assert await ServiceItem.all().count() == 45
    assert await ItemMaterial.filter(item=row).count() == len(removed.materials)

    again = await load_catalog(modified)
    _only(
        again,
        items=SectionCounts(unchanged=44),
        item_materials=SectionCounts(unchanged=154 - len(removed.materials)),
    )

    back = await load_catalog(catalog)
    _only(back, items=SectionCounts(updated=1, unchanged=44))
    assert (await ServiceItem.get(code=removed.code)).active is True


async def test_new_region_under_new_parent_and_renamed_department(catalog: Catalog) -> None:
    await load_catalog(catalog)
    city = catalog.regions[0]
    district = dataclasses.replace(
        city, code="371499", name="新区", kind="district", admin_code="371499", parent=city.code
    )
    park = dataclasses.replace(
        district, code="371499-p01", name="新区产业园", kind="park", parent="371499"
    )
    department = dataclasses.replace(catalog.departments[0], name="改名后的部门")
    modified = dataclasses.replace(
        catalog,
        regions=(park, *catalog.regions, district),  # children may come first in the list
        departments=(department, *catalog.departments[1:]),
    )

    report = await load_catalog(modified)

    _only(
        report,
        regions=SectionCounts(created=2, unchanged=18),
        departments=SectionCounts(updated=1, unchanged=17),
    )
    stored = await Region.get(code="371499-p01").prefetch_related("parent")
    assert stored.parent is not None and stored.parent.code == "371499"
    assert (await Department.get(code=department.code)).name == "改名后的部门"


async def test_a_failed_load_leaves_nothing(catalog: Catalog) -> None:
    broken_item = dataclasses.replace(catalog.items[-1], stage="no-such-stage")
    broken = dataclasses.replace(catalog, items=(*catalog.items[:-1], broken_item))

    with pytest.raises(KeyError):
        await load_catalog(broken)

    assert await Region.all().count() == 0
    assert await ServiceItem.all().count() == 0
