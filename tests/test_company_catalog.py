"""The company-setup catalog (1+4+X): the shipped model, refusals with lines, idempotent loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from approval.catalog.company import (
    default_company_catalog_path,
    load_default_company_catalog,
    parse_company_catalog,
)
from approval.catalog.company_load import load_company_catalog
from approval.catalog.load import load_catalog
from approval.catalog.parse import CatalogError, load_default_catalog
from approval.core import generations
from storage.models import BusinessType, SetupFlow, SetupPermit, SetupPermitMaterial, SetupRules

MERGED = default_company_catalog_path().parent / "company_merged.yaml"


def test_the_source_model_has_18_flows_in_6_groups() -> None:
    catalog = load_default_company_catalog()
    assert [(g.name, len(g.flows)) for g in catalog.groups] == [
        ("医疗食品餐饮", 4),
        ("文化体育娱乐", 4),
        ("交通运输", 4),
        ("外资", 2),
        ("教育", 2),
        ("公共安全", 2),
    ]
    assert len(catalog.flows) == 18
    core = [p for p in catalog.permits if p.core]
    departments = {d.code: d.short_name for d in catalog.departments}
    assert [departments[p.department] for p in core] == ["工商局", "质监局", "国税局", "地税局"]
    assert (catalog.time_limits.core, catalog.time_limits.x) == (4, 10)
    assert catalog.time_limits.site_check == 3


def test_a_business_type_takes_its_one_flow() -> None:
    catalog = load_default_company_catalog()
    restaurant = catalog.flow_of("restaurant")
    assert restaurant.name == "餐饮服务企业设立"
    checks = {catalog.permit(code).site_check for code in restaurant.permits}
    assert checks == {"food-business", "fire-safety"}  # a food and a fire-safety site check
    assert catalog.flow_of("pharmacy").permits == ("drug_business_license",)
    assert catalog.flow_of("supermarket") == catalog.flow_of("online-food-shop")
    assert catalog.flow_of("foreign-factory").starts_project
    with pytest.raises(KeyError):
        catalog.flow_of("spaceport")


def _broken(old: str, new: str) -> str:
    text = default_company_catalog_path().read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "needle", "reason"),
    [
        (
            "permits: [drug_business_license]",
            "permits: [drug_license]",
            "permits: [drug_license]",
            "unknown permit 'drug_license'",
        ),
        (
            "permits: [publication_license]",
            "permits: [publication_license, business_license]",
            "permits: [publication_license, business_license]",
            "lists core permit 'business_license'",
        ),
        (
            "{code: gym, name: 健身房}",
            "{code: hotel, name: 健身房}",
            "{code: hotel, name: 宾馆}",  # the later one is refused, naming the first
            "business type 'hotel' is already in a flow",
        ),
        ("  x: 10", "  x: 0", "  x: 0", "x of time_limits is 0 working days"),
        (
            'short_name: 质监局, level: city, region: "371400"',
            "short_name: 质监局, level: city, region: 371400",
            "region: 371400",
            "region of department zhijian",
        ),
        (
            "    site_check: drug-retail",
            "    site_check: drugs",
            "    site_check: drugs",
            "unknown checklist 'drugs'",
        ),
    ],
)
def test_a_broken_file_is_refused_with_its_line(old: str, new: str, needle: str, reason: str):
    text = _broken(old, new)
    with pytest.raises(CatalogError) as caught:
        parse_company_catalog(text)
    assert reason in caught.value.reason
    assert caught.value.line == _line_of(text, needle), str(caught.value)
    assert str(caught.value).startswith(f"company.yaml line {caught.value.line}: ")


def test_a_city_with_merged_departments_loads_the_same_flows() -> None:
    merged = parse_company_catalog(MERGED.read_text(encoding="utf-8"), source=str(MERGED))
    model = load_default_company_catalog()
    assert merged.groups == model.groups
    core = [p.department for p in merged.permits if p.core]
    assert core == ["scjg", "scjg", "sw", "sw"]
    assert merged.permit("food_business_license").department == "scjg"
    assert "gongshang" not in {d.code for d in merged.departments}
    assert merged.referenced_departments() == {"zwzx", "xfjy", "scjg", "sw"}


def test_a_variant_must_reassign_departments_its_base_defines(tmp_path: Path) -> None:
    (tmp_path / "company.yaml").write_text(
        default_company_catalog_path().read_text(encoding="utf-8"), encoding="utf-8"
    )
    variant = tmp_path / "variant.yaml"
    text = "version: 1\nbase: company.yaml\nreassign:\n  gongshang: scjg\n  caizheng: sw\n"
    variant.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        parse_company_catalog(text, source=str(variant))
    assert caught.value.line == 5 and "'caizheng'" in caught.value.reason


@pytest.mark.usefixtures("clean_catalog")
async def test_loading_is_idempotent_and_counts_each_section() -> None:
    await load_catalog(load_default_catalog())
    catalog = load_default_company_catalog()
    first = await load_company_catalog(catalog)
    assert first.permits.created == 21 and first.flows.created == 18
    assert first.business_types.created == sum(len(f.business_types) for f in catalog.flows)
    assert first.groups.created == 6 and first.rules.created == 1
    generation = await generations.current(generations.CATALOG)
    again = await load_company_catalog(catalog)
    assert not again.changed, again.summary()
    assert await generations.current(generations.CATALOG) == generation
    rules = await SetupRules.get(id=1).select_related("window")
    assert (rules.window.code, rules.core_days, rules.x_days, rules.site_check_days) == (
        "zwzx",
        4,
        10,
        3,
    )
    restaurant = await BusinessType.get(code="restaurant").select_related("flow")
    assert restaurant.flow.code == "catering"
    assert await SetupPermitMaterial.filter(permit__code="fire_safety_check").count() == 3


@pytest.mark.usefixtures("clean_catalog")
async def test_the_merged_variant_moves_permits_and_keeps_the_flows() -> None:
    await load_catalog(load_default_catalog())
    await load_company_catalog(load_default_company_catalog())
    merged = parse_company_catalog(MERGED.read_text(encoding="utf-8"), source=str(MERGED))
    report = await load_company_catalog(merged, source=MERGED.name)
    assert report.permits.updated == 6 and report.flows.unchanged == 18
    license_ = await SetupPermit.get(code="business_license").select_related("department")
    assert license_.department.name == "市市场监督管理局"
    assert await SetupFlow.filter(active=True).count() == 18


@pytest.mark.usefixtures("clean_catalog")
async def test_without_the_main_catalog_the_load_names_the_line_and_the_command() -> None:
    catalog = load_default_company_catalog()
    with pytest.raises(CatalogError) as caught:
        await load_company_catalog(catalog)
    assert "onewindow load-catalog" in caught.value.hint
    assert caught.value.line is not None
    assert await SetupPermit.all().count() == 0
