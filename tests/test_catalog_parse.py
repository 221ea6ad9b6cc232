from collections import Counter

import pytest

from approval.catalog.parse import (
    ASSESSMENTS,
    PROJECT_TYPES,
    STAGE_CODES,
    Catalog,
    CatalogError,
    ItemMaterialSpec,
    default_catalog_path,
    load_default_catalog,
    parse_catalog,
)

# --- the shipped catalog -----------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_default_catalog()


def test_default_path_is_package_data() -> None:
    path = default_catalog_path()
    assert path.is_file()
    assert path.parts[-4:] == ("approval", "catalog", "data", "catalog.yaml")


def test_regions(catalog: Catalog) -> None:
    names = {r.code: r.name for r in catalog.regions}
    assert names["371400"] == "德州市"
    expected = {
        "371402": "德城区",
        "371403": "陵城区",
        "371422": "宁津县",
        "371423": "庆云县",
        "371424": "临邑县",
        "371425": "齐河县",
        "371426": "平原县",
        "371427": "夏津县",
        "371428": "武城县",
        "371481": "乐陵市",
        "371482": "禹城市",
        "371471": "德州经济技术开发区",
        "371472": "德州运河经济开发区",
    }
    for code, name in expected.items():
        assert names[code] == name
        region = catalog.region(code)
        assert region.parent == "371400"
        assert region.admin_code == code
    assert catalog.region("371400").parent is None
    parks = [r for r in catalog.regions if r.kind == "park"]
    assert len(parks) >= 3
    for park in parks:
        parent = catalog.region(park.parent or "")
        assert parent.kind in ("district", "development_zone")
        assert park.admin_code == parent.admin_code
    assessed = [
        p for p in parks if p.assessments and p.max_land_area_m2 and p.max_investment_10k_yuan
    ]
    assert len(assessed) >= 2
    assert any(set(p.assessments) == set(ASSESSMENTS) for p in assessed)


def test_departments(catalog: Catalog) -> None:
    assert len(catalog.departments) >= 14
    short = {d.short_name for d in catalog.departments}
    for name in (
        "发改委",
        "自然资源和规划局",
        "住建局",
        "生态环境局",
        "应急管理局",
        "人防办",
        "城建档案馆",
        "消防救援支队",
        "市场监管局",
        "税务局",
        "水利局",
        "政务中心",
        "气象局",
        "城管局",
    ):
        assert name in short
    district = [d for d in catalog.departments if d.level == "district"]
    assert district
    assert all(d.region != "371400" for d in district)


def test_stages_and_leads(catalog: Catalog) -> None:
    assert tuple(s.code for s in catalog.stages) == STAGE_CODES
    assert [s.order for s in catalog.stages] == [1, 2, 3, 4]
    leads = [catalog.department(s.lead_department).short_name for s in catalog.stages]
    assert leads == ["发改委", "自然资源和规划局", "住建局", "政务中心"]


def test_items_per_stage(catalog: Catalog) -> None:
    assert len(catalog.items) >= 36
    assert len(catalog.material_types) >= 30
    for stage in catalog.stages:
        items = catalog.items_of_stage(stage.code)
        assert len(items) >= 6, stage.code
        assert len({i.department for i in items}) >= 3, stage.code
        for item in items:
            assert 0 < item.promised_days <= item.statutory_days
            assert item.promised_days <= stage.time_limit_days, item.code
            assert item.materials, item.code
            assert any(m.core for m in item.materials), item.code


def test_items_named_in_the_brief(catalog: Catalog) -> None:
    names = " ".join(i.name for i in catalog.items)
    for word in (
        "企业投资项目核准",
        "环评批复",
        "建设用地规划许可",
        "不动产登记",
        "节能审查",
        "安全预评价",
        "可行性研究报告",
        "设计方案审查",
        "施工图联审",
        "建设工程规划许可证",
        "施工许可证",
        "城市基础设施配套费",
        "新型墙体材料专项基金",
        "农民工工资保证金",
        "质量监督登记",
        "安全监督备案",
        "建筑垃圾处置核准",
        "规划核实",
        "消防验收",
        "人防工程竣工验收",
        "档案验收",
        "竣工验收备案",
        "土地核验",
    ):
        assert word in names, word


def test_site_checks_noncore_types_and_assessments(catalog: Catalog) -> None:
    assert catalog.item("fire-acceptance").site_check
    assert catalog.item("planning-verification").site_check
    assert not catalog.item("enterprise-project-filing").site_check
    assert sum(i.site_check for i in catalog.items) >= 8
    non_core = [m for i in catalog.items for m in i.materials if not m.core]
    assert len(non_core) >= 20
    assert catalog.item("enterprise-project-filing").project_types == ("FILING",)
    assert catalog.item("construction-permit").project_types == PROJECT_TYPES
    assessed = {i.regional_assessment for i in catalog.items} - {None}
    assert assessed == set(ASSESSMENTS)
    used = {m.type for i in catalog.items for m in i.materials}
    assert used == {t.code for t in catalog.material_types}
    shared = Counter(m.type for i in catalog.items for m in i.materials)
    assert shared["project_application_form"] >= 20  # 一表制: one form for every stage


def test_checklists(catalog: Catalog) -> None:
    names = [c.name for c in catalog.checklists]
    assert sorted(names) == sorted(
        ["规划核实", "土地核验", "消防验收", "人防验收", "档案验收", "质量监督", "竣工验收备案"]
    )
    for checklist in catalog.checklists:
        assert 5 <= len(checklist.checks) <= 10, checklist.code
        assert any(c.measured for c in checklist.checks) or checklist.code == "completion-filing"
        for check in checklist.checks:
            if check.unit is not None:
                assert check.measured, check.code
    planning = catalog.checklist("planning-verification")
    assert catalog.department(planning.department).short_name == "自然资源和规划局"
    height = next(c for c in planning.checks if c.code == "height")
    assert (height.measured, height.unit) == (True, "m")


def test_lookup_of_unknown_code_raises_key_error(catalog: Catalog) -> None:
    with pytest.raises(KeyError):
        catalog.item("no-such-item")


# --- refusals ----------------------------------------------------------------------------

BASE = """\
version: 1
regions:
  - {code: "371400", name: 德州市, kind: city, admin_code: "371400", parent: null}
  - code: "371471"
    name: 德州经济技术开发区
    kind: development_zone
    admin_code: "371471"
    parent: "371400"
  - code: "371471-p01"
    name: 高端装备产业园
    kind: park
    admin_code: "371471"
    parent: "371471"
    assessments: [energy, water]
    limits: {max_land_area_m2: 200000, max_investment_10k_yuan: 500000}
departments:
  - {code: fgw, name: 市发改委, short_name: 发改委, level: city, region: "371400"}
  - {code: zrzy, name: 市自然资源和规划局, short_name: 规划局, level: city, region: "371400"}
  - {code: zjj, name: 市住建局, short_name: 住建局, level: city, region: "371400"}
  - {code: zwzx, name: 市政务服务中心, short_name: 政务中心, level: city, region: "371400"}
stages:
  - {code: project_approval, name: 立项用地规划许可, order: 1,
     lead_department: fgw, time_limit_days: 20}
  - {code: engineering_permit, name: 工程建设许可, order: 2,
     lead_department: zrzy, time_limit_days: 20}
  - {code: construction_permit, name: 施工许可, order: 3,
     lead_department: zjj, time_limit_days: 10}
  - {code: completion_acceptance, name: 竣工验收, order: 4,
     lead_department: zwzx, time_limit_days: 15}
material_types:
  - {code: form, name: 申请表}
  - code: land
    name: 不动产权证书
    description: 土地
items:
  - code: filing
    name: 企业投资项目备案
    stage: project_approval
    department: fgw
    statutory_days: 3
    promised_days: 1
    site_check: false
    project_types: [FILING]
    materials:
      - {type: form, core: true}
  - code: energy
    name: 节能审查
    stage: project_approval
    department: fgw
    statutory_days: 15
    promised_days: 5
    site_check: false
    regional_assessment: energy
    materials:
      - {type: form, core: true}
      - {type: land, core: false}
checklists:
  - code: planning
    name: 规划核实
    department: zrzy
    checks:
      - {code: height, label: 建筑高度, measured: true, unit: m}
      - {code: facade, label: 立面与审定方案一致, measured: false}
"""


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing fragment."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(hits) >= occurrence, fragment
    return hits[occurrence - 1]


def edit(old: str, new: str, count: int = 1) -> str:
    assert BASE.count(old) >= count, old
    return BASE.replace(old, new, count)


def refuse(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text)
    error = info.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert error.reason in message
    assert message.startswith(f"catalog.yaml line {error.line}: " if error.line else "catalog.yaml")
    assert "; " in message
    return error


def test_base_parses() -> None:
    catalog = parse_catalog(BASE)
    park = catalog.region("371471-p01")
    assert park.assessments == ("energy", "water")
    assert park.max_land_area_m2 == 200000.0
    assert park.max_investment_10k_yuan == 500000.0
    assert catalog.region("371471").assessments == ()
    assert catalog.region("371471").max_land_area_m2 is None
    energy = catalog.item("energy")
    assert energy.project_types == PROJECT_TYPES
    assert energy.regional_assessment == "energy"
    assert energy.materials == (
        ItemMaterialSpec(type="form", core=True),
        ItemMaterialSpec(type="land", core=False),
    )
    assert catalog.material_type("land").description == "土地"
    assert catalog.material_type("form").description == ""
    assert catalog.checklist("planning").checks[1].unit is None


def test_yaml_syntax_error() -> None:
    text = edit("    name: 节能审查\n", "    name: [节能审查\n")
    error = refuse(text)
    assert "YAML syntax error" in error.reason
    assert error.line is not None
    assert line_of(text, "[节能审查") <= error.line <= line_of(text, "[节能审查") + 2


def test_yaml_syntax_error_bad_indentation() -> None:
    text = edit("    stage: project_approval\n", "   stage: project_approval\n")
    error = refuse(text)
    assert "YAML syntax error" in error.reason
    assert error.line == line_of(text, "   stage: project_approval")


def test_unsafe_tag_refused() -> None:
    text = edit("name: 申请表}", "name: !!python/object/apply:os.system [ls]}")
    error = refuse(text)
    assert "YAML syntax error" in error.reason
    assert error.line == line_of(text, "python/object")


def test_duplicate_yaml_key() -> None:
    text = edit("    promised_days: 1\n", "    promised_days: 1\n    promised_days: 2\n")
    error = refuse(text)
    assert "duplicate key 'promised_days'" in error.reason
    assert error.line == line_of(text, "promised_days: 2")


def test_empty_catalog() -> None:
    error = refuse("")
    assert error.reason == "the catalog is empty"
    assert error.line is None


def test_missing_required_key() -> None:
    text = edit("    department: fgw\n    statutory_days: 15\n", "    statutory_days: 15\n")
    error = refuse(text)
    assert error.reason == "item energy is missing required key 'department'"
    assert error.line == line_of(text, "- code: energy")


def test_missing_top_level_section() -> None:
    text = BASE[: BASE.index("checklists:")]
    error = refuse(text)
    assert "missing required key 'checklists'" in error.reason
    assert error.line == 1


def test_unknown_key() -> None:
    text = edit("    promised_days: 5\n", "    promised_day: 5\n")
    error = refuse(text)
    assert error.reason == "unknown key 'promised_day' in item energy"
    assert error.line == line_of(text, "promised_day: 5")
    assert "promised_days" in str(error)  # the hint lists the allowed keys


def test_unknown_key_in_limits() -> None:
    text = edit("max_land_area_m2: 200000", "max_land_area: 200000")
    error = refuse(text)
    assert "unknown key 'max_land_area'" in error.reason
    assert error.line == line_of(text, "max_land_area: 200000")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "    statutory_days: 15\n",
            "    statutory_days: fifteen\n",
            "statutory_days of item energy must be an integer",
        ),
        (
            "    site_check: false\n    regional",
            "    site_check: no way\n    regional",
            "site_check of item energy must be true or false",
        ),
        (
            "{type: land, core: false}",
            "{type: land, core: 0}",
            "core of a material of item energy must be true or false",
        ),
        (
            "    name: 节能审查\n",
            "    name: 123\n",
            "name of item energy must be a non-empty string",
        ),
        (
            "    materials:\n      - {type: form, core: true}\n      - {type: land",
            "    materials: form\n    x:\n      - {type: form, core: true}\n      - {type: land",
            "materials of item energy must be a list",
        ),
    ],
)
def test_wrong_type(old: str, new: str, reason: str) -> None:
    text = edit(old, new, 1)
    if "materials: form" in new:
        text = text.replace(
            "    x:\n      - {type: form, core: true}\n      - {type: land, core: false}\n", ""
        )
    error = refuse(text)
    assert error.reason.startswith(reason)
    assert error.line == line_of(text, new.strip().splitlines()[0])


def test_unquoted_admin_code_is_wrong_type() -> None:
    text = edit(
        '    admin_code: "371471"\n    parent: "371400"',
        '    admin_code: 371471\n    parent: "371400"',
    )
    error = refuse(text)
    assert "admin_code of region 371471 must be a quoted string" in error.reason
    assert error.line == line_of(text, "admin_code: 371471")
    assert 'quote it, e.g. admin_code: "371471"' in str(error)


def test_invalid_admin_code() -> None:
    text = edit(
        '    admin_code: "371471"\n    parent: "371400"',
        '    admin_code: "3714"\n    parent: "371400"',
    )
    error = refuse(text)
    assert "is not a six-digit GB/T 2260 code" in error.reason
    assert error.line == line_of(text, 'admin_code: "3714"')


def test_invalid_code_format() -> None:
    text = edit("  - code: energy\n", "  - code: Energy Review\n")
    error = refuse(text)
    assert "code 'Energy Review' of item Energy Review is not a valid code" in error.reason
    assert error.line == line_of(text, "code: Energy Review")


@pytest.mark.parametrize(
    ("old", "new", "section", "first", "second"),
    [
        (
            '  - code: "371471-p01"',
            '  - code: "371471"',
            "region",
            "name: 德州经济技术开发区",
            "name: 高端装备产业园",
        ),
        ("{code: zjj,", "{code: zrzy,", "department", "name: 市自然资源和规划局", "name: 市住建局"),
        (
            "  - code: land\n",
            "  - code: form\n",
            "material type",
            "{code: form, name: 申请表}",
            "name: 不动产权证书",
        ),
        (
            "  - code: energy\n",
            "  - code: filing\n",
            "item",
            "name: 企业投资项目备案",
            "name: 节能审查",
        ),
        (
            "{code: facade,",
            "{code: height,",
            "check (in checklist planning)",
            "label: 建筑高度",
            "label: 立面",
        ),
    ],
)
def test_duplicate_codes(old: str, new: str, section: str, first: str, second: str) -> None:
    text = edit(old, new)
    error = refuse(text)
    assert error.reason.startswith(f"duplicate {section} code")
    # an entry starts on its own line (flow style) or on the line before its name (block style)
    first_line = line_of(text, first)
    first_line -= 0 if "{" in text.splitlines()[first_line - 1] else 1
    second_line = line_of(text, second)
    second_line -= 0 if "{" in text.splitlines()[second_line - 1] else 1
    assert error.line == second_line
    assert f"first defined on line {first_line}" in error.reason


def test_duplicate_checklist_code() -> None:
    extra = (
        "  - code: planning\n    name: 规划核实二\n    department: zrzy\n    checks:\n"
        "      - {code: height, label: 建筑高度, measured: true, unit: m}\n"
    )
    text = BASE + extra
    error = refuse(text)
    assert error.reason.startswith("duplicate checklist code 'planning'")
    assert error.line == line_of(text, "  - code: planning", 2)


def test_duplicate_material_in_item() -> None:
    text = edit("{type: land, core: false}", "{type: form, core: false}")
    error = refuse(text)
    assert "material type 'form' is listed twice in item energy" in error.reason
    assert error.line == line_of(text, "{type: form, core: false}")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            'level: city, region: "371400"}\n  - {code: zrzy',
            'level: city, region: "379999"}\n  - {code: zrzy',
            "department fgw refers to unknown region '379999'",
        ),
        (
            "    department: fgw\n    statutory_days: 15",
            "    department: fwg\n    statutory_days: 15",
            "item energy refers to unknown department 'fwg'",
        ),
        (
            "lead_department: zjj",
            "lead_department: zjw",
            "stage construction_permit refers to unknown department 'zjw'",
        ),
        (
            "    department: zrzy\n    checks:",
            "    department: gh\n    checks:",
            "checklist planning refers to unknown department 'gh'",
        ),
        (
            "    stage: project_approval\n    department: fgw\n    statutory_days: 15",
            "    stage: planning\n    department: fgw\n    statutory_days: 15",
            "item energy refers to unknown stage 'planning'",
        ),
        (
            "{type: land, core: false}",
            "{type: land_certificate, core: false}",
            "a material of item energy refers to unknown material type 'land_certificate'",
        ),
    ],
)
def test_unknown_reference(old: str, new: str, reason: str) -> None:
    text = edit(old, new)
    error = refuse(text)
    assert error.reason == reason
    changed = next(part for part in new.splitlines() if part not in old.splitlines())
    assert error.line == line_of(text, changed.strip())


def test_promised_days_exceed_statutory() -> None:
    text = edit("    promised_days: 5\n", "    promised_days: 20\n")
    error = refuse(text)
    assert error.reason == "promised_days 20 of item energy exceeds statutory_days 15"
    assert error.line == line_of(text, "promised_days: 20")


@pytest.mark.parametrize("days", ["0", "-2"])
def test_promised_days_not_positive(days: str) -> None:
    text = edit("    promised_days: 5\n", f"    promised_days: {days}\n")
    error = refuse(text)
    assert error.reason == "promised_days of item energy must be positive"
    assert error.line == line_of(text, f"promised_days: {days}")


def test_statutory_days_not_positive() -> None:
    text = edit(
        "    statutory_days: 3\n    promised_days: 1\n",
        "    statutory_days: 0\n    promised_days: 1\n",
    )
    error = refuse(text)
    assert error.reason == "statutory_days of item filing must be positive"
    assert error.line == line_of(text, "statutory_days: 0")


def test_stage_missing() -> None:
    start = BASE.index("  - {code: completion_acceptance")
    text = BASE[:start] + BASE[BASE.index("material_types:") :]
    error = refuse(text)
    assert error.reason == "stages lists 3 stages, not the four known ones"
    assert error.line == line_of(text, "stages:")


def test_stage_out_of_order() -> None:
    text = edit("{code: engineering_permit,", "{code: construction_permit,")
    text = text.replace(
        "{code: construction_permit, name: 施工许可", "{code: engineering_permit, name: 施工许可"
    )
    error = refuse(text)
    assert "stage 2 is 'construction_permit' with order 2" in error.reason
    assert error.line == line_of(text, "{code: construction_permit, name: 工程建设许可")


def test_stage_wrong_order_number() -> None:
    text = edit("name: 施工许可, order: 3", "name: 施工许可, order: 5")
    error = refuse(text)
    assert "expected 'construction_permit' with order 3" in error.reason
    assert error.line == line_of(text, "order: 5")


def test_stage_unknown_code() -> None:
    text = edit("{code: completion_acceptance,", "{code: joint_acceptance,")
    error = refuse(text)
    assert "stage 4 is 'joint_acceptance'" in error.reason
    assert error.line == line_of(text, "joint_acceptance")


def test_region_unknown_parent() -> None:
    text = edit('    parent: "371471"\n', '    parent: "371499"\n')
    error = refuse(text)
    assert error.reason == "region 371471-p01 has unknown parent '371499'"
    assert error.line == line_of(text, '  - code: "371471-p01"')


def test_region_parent_cycle() -> None:
    text = edit(
        '    admin_code: "371471"\n    parent: "371400"',
        '    admin_code: "371471"\n    parent: "371471-p01"',
    )
    error = refuse(text)
    assert error.reason.startswith("region parents form a cycle: 371471 -> 371471-p01 -> 371471")
    assert error.line == line_of(text, '  - code: "371471"')


def test_region_self_parent() -> None:
    text = edit('admin_code: "371400", parent: null}', 'admin_code: "371400", parent: "371400"}')
    error = refuse(text)
    assert error.reason == "region parents form a cycle: 371400 -> 371400"
    assert error.line == 3


def test_unknown_region_kind() -> None:
    text = edit("    kind: park\n", "    kind: industrial_park\n")
    error = refuse(text)
    assert error.reason == "unknown region kind 'industrial_park' in region 371471-p01"
    assert error.line == line_of(text, "kind: industrial_park")


def test_checklist_without_checks() -> None:
    start = BASE.index("      - {code: height")
    text = BASE[:start].replace("    checks:\n", "    checks: []\n")
    error = refuse(text)
    assert error.reason == "checklist planning has no checks"
    assert error.line == line_of(text, "checks: []")


def test_allowed_ranges_of_measured_checks(catalog: Catalog) -> None:
    fire = {c.code: c for c in catalog.checklist("fire-acceptance").checks}
    assert (fire["fire-lane"].minimum, fire["fire-lane"].maximum) == (4.0, None)
    assert (fire["hydrant-pressure"].minimum, fire["hydrant-pressure"].maximum) == (0.1, 1.0)
    assert (fire["alarm"].minimum, fire["alarm"].maximum) == (None, None)
    text = edit(
        "{code: height, label: 建筑高度, measured: true, unit: m}",
        "{code: height, label: 建筑高度, measured: true, unit: m, min: -3, max: 99.5}",
    )
    height = next(c for c in parse_catalog(text).checklist("planning").checks if c.code == "height")
    assert (height.minimum, height.maximum) == (-3.0, 99.5)


@pytest.mark.parametrize(
    ("bounds", "reason"),
    [
        ("min: 5, max: 2", "allows no value: min 5 is above max 2"),
        ("min: high", "min of a check of checklist planning must be a number"),
        ("max: true", "max of a check of checklist planning must be a number"),
    ],
)
def test_bad_allowed_range(bounds: str, reason: str) -> None:
    text = edit(
        "{code: height, label: 建筑高度, measured: true, unit: m}",
        "{code: height, label: 建筑高度, measured: true, unit: m, " + bounds + "}",
    )
    error = refuse(text)
    assert reason in error.reason
    assert error.line == line_of(text, bounds)


def test_allowed_range_of_an_unmeasured_check() -> None:
    text = edit("{code: facade,", "{code: facade, min: 1,")
    error = refuse(text)
    assert "has an allowed range but is not measured" in error.reason
    assert error.line == line_of(text, "{code: facade, min: 1,")


def test_checklist_duplicate_check_codes() -> None:
    text = edit("{code: facade,", "{code: height,")
    error = refuse(text)
    assert error.reason.startswith("duplicate check (in checklist planning) code 'height'")
    assert error.line == line_of(text, "label: 立面与审定方案一致")


def test_unknown_project_type() -> None:
    text = edit("    project_types: [FILING]\n", "    project_types: [FILING, RECORD]\n")
    error = refuse(text)
    assert error.reason == "unknown project type 'RECORD' in item filing"
    assert error.line == line_of(text, "project_types: [FILING, RECORD]")


def test_empty_project_types() -> None:
    text = edit("    project_types: [FILING]\n", "    project_types: []\n")
    error = refuse(text)
    assert error.reason == "project_types of item filing is empty"


def test_unknown_item_assessment() -> None:
    text = edit("    regional_assessment: energy\n", "    regional_assessment: traffic\n")
    error = refuse(text)
    assert error.reason == "unknown assessment 'traffic' in item energy"
    assert error.line == line_of(text, "regional_assessment: traffic")


def test_unknown_region_assessment() -> None:
    text = edit("    assessments: [energy, water]\n", "    assessments: [energy, flood]\n")
    error = refuse(text)
    assert error.reason == "unknown assessment 'flood' in region 371471-p01"
    assert error.line == line_of(text, "assessments: [energy, flood]")


def test_negative_park_limit() -> None:
    text = edit("max_investment_10k_yuan: 500000", "max_investment_10k_yuan: -1")
    error = refuse(text)
    assert error.reason == "max_investment_10k_yuan of region 371471-p01 must be positive"
    assert error.line == line_of(text, "max_investment_10k_yuan: -1")


@pytest.mark.parametrize("version", ["2", "0"])
def test_unsupported_version(version: str) -> None:
    text = edit("version: 1\n", f"version: {version}\n")
    error = refuse(text)
    assert error.reason == f"unsupported catalog version {version}"
    assert error.line == 1


def test_version_wrong_type() -> None:
    error = refuse(edit("version: 1\n", 'version: "1"\n'))
    assert error.reason.startswith("version of the catalog must be an integer")
    assert error.line == 1


def test_source_name_in_message() -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(edit("version: 1\n", "version: 3\n"), source="test.yaml")
    assert str(info.value) == (
        "test.yaml line 1: unsupported catalog version 3; this build reads version 1"
    )
