"""The approval catalog: regions, departments, the four stages, items, materials, checklists.

A pure parser of ``approval/catalog/data/catalog.yaml`` (no database). Every refusal is a
:class:`CatalogError` naming the line of the offending entry and what to do about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import yaml

REGION_KINDS = ("city", "district", "county", "development_zone", "park")
DEPARTMENT_LEVELS = ("city", "district")
STAGE_CODES = (
    "project_approval",
    "engineering_permit",
    "construction_permit",
    "completion_acceptance",
)
PROJECT_TYPES = ("APPROVAL", "VERIFICATION", "FILING")
ASSESSMENTS = ("energy", "environment", "water", "seismic")
CATALOG_VERSION = 1

_CODE = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
_ADMIN_CODE = re.compile(r"[1-8][0-9]{5}", re.ASCII)
_CODE_MAX = 64
_NAME_MAX = 128


class CatalogError(ValueError):
    """``<source> line N: <what is wrong>; <what to do>``."""

    def __init__(
        self, reason: str, hint: str, *, line: int | None, source: str = "catalog.yaml"
    ) -> None:
        where = f"{source} line {line}" if line is not None else source
        super().__init__(f"{where}: {reason}; {hint}")
        self.line = line
        self.reason = reason
        self.hint = hint
        self.source = source


# --- specs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSpec:
    code: str
    name: str
    kind: str
    admin_code: str
    parent: str | None
    assessments: tuple[str, ...] = ()
    max_land_area_m2: float | None = None
    max_investment_10k_yuan: float | None = None
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    short_name: str
    level: str
    region: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StageSpec:
    code: str
    name: str
    order: int
    lead_department: str
    time_limit_days: int
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MaterialTypeSpec:
    code: str
    name: str
    description: str = ""
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ItemMaterialSpec:
    type: str
    core: bool


@dataclass(frozen=True)
class ItemSpec:
    code: str
    name: str
    stage: str
    department: str
    statutory_days: int
    promised_days: int
    site_check: bool
    materials: tuple[ItemMaterialSpec, ...]
    project_types: tuple[str, ...] = PROJECT_TYPES
    regional_assessment: str | None = None
    # 超时默认: undecided at the deadline counts as approved; false where the law excludes it.
    default_approval: bool = True
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CheckSpec:
    code: str
    label: str
    measured: bool
    unit: str | None = None
    minimum: float | None = None
    """The smallest measured value allowed (``min``), when the rules set one."""
    maximum: float | None = None
    """The largest measured value allowed (``max``), when the rules set one."""


@dataclass(frozen=True)
class ChecklistSpec:
    code: str
    name: str
    department: str
    checks: tuple[CheckSpec, ...]
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Catalog:
    version: int
    regions: tuple[RegionSpec, ...]
    departments: tuple[DepartmentSpec, ...]
    stages: tuple[StageSpec, ...]
    material_types: tuple[MaterialTypeSpec, ...]
    items: tuple[ItemSpec, ...]
    checklists: tuple[ChecklistSpec, ...]

    def region(self, code: str) -> RegionSpec:
        return _find(self.regions, code, "region")

    def department(self, code: str) -> DepartmentSpec:
        return _find(self.departments, code, "department")

    def stage(self, code: str) -> StageSpec:
        return _find(self.stages, code, "stage")

    def material_type(self, code: str) -> MaterialTypeSpec:
        return _find(self.material_types, code, "material type")

    def item(self, code: str) -> ItemSpec:
        return _find(self.items, code, "item")

    def checklist(self, code: str) -> ChecklistSpec:
        return _find(self.checklists, code, "checklist")

    def items_of_stage(self, stage: str) -> tuple[ItemSpec, ...]:
        return tuple(item for item in self.items if item.stage == stage)


_S = TypeVar("_S", RegionSpec, DepartmentSpec, StageSpec, MaterialTypeSpec, ItemSpec, ChecklistSpec)


def _find(specs: tuple[_S, ...], code: str, what: str) -> _S:
    for spec in specs:
        if spec.code == code:
            return spec
    raise KeyError(f"no {what} with code {code!r} in the catalog")


# --- YAML with line numbers --------------------------------------------------------------


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int
    key_lines: dict[Any, int]


class LineSeq(list[Any]):
    line: int


class LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    data = LineMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping key {key!r} is not a string", key_node.start_mark
            )
        if key in data:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        data.key_lines[key] = key_node.start_mark.line + 1
        data[key] = loader.construct_object(value_node, deep=True)


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode) -> Iterator[LineSeq]:
    data = LineSeq()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node, deep=True))


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# --- the parser --------------------------------------------------------------------------

_SECTIONS = {
    "region": "regions",
    "department": "departments",
    "stage": "stages",
    "material type": "material_types",
}
_TOP_KEYS = ("version", "regions", "departments", "stages", "material_types", "items", "checklists")


class CatalogReader:
    """Reads one YAML catalog file, refusing with the line and what to do."""

    sections: ClassVar[dict[str, str]] = _SECTIONS  # kind of a reference -> the section defining it

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, line: int | None, reason: str, hint: str) -> NoReturn:
        raise CatalogError(reason, hint, line=line, source=self.source)

    # field access -----------------------------------------------------------------------

    def keys(
        self, m: LineMap, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> None:
        allowed = required + optional
        for key in m:
            if key not in allowed:
                self.fail(
                    m.key_lines.get(key, m.line),
                    f"unknown key {key!r} in {what}",
                    f"use only {', '.join(allowed)} (check the spelling)",
                )
        for key in required:
            if key not in m:
                self.fail(m.line, f"{what} is missing required key {key!r}", f"add {key}: ...")

    def line_of(self, m: LineMap, key: str) -> int:
        return m.key_lines.get(key, m.line)

    def wrong_type(self, m: LineMap, key: str, what: str, expected: str) -> NoReturn:
        value = m[key]
        hint = f"write {key} as {expected}"
        if expected.startswith("a quoted") and isinstance(value, int | float):
            hint = f'quote it, e.g. {key}: "{value}"'
        self.fail(
            self.line_of(m, key),
            f"{key} of {what} must be {expected}, got {type(value).__name__} {value!r}",
            hint,
        )

    def text(self, m: LineMap, key: str, what: str, max_len: int = _NAME_MAX) -> str:
        value = m[key]
        if not isinstance(value, str) or not value.strip():
            self.wrong_type(m, key, what, "a non-empty string")
        if len(value) > max_len:
            self.fail(
                self.line_of(m, key),
                f"{key} of {what} is longer than {max_len} characters",
                "shorten it",
            )
        return value.strip()

    def code(self, m: LineMap, key: str, what: str) -> str:
        value = m[key]
        if not isinstance(value, str):
            self.wrong_type(m, key, what, "a quoted string code")
        if len(value) > _CODE_MAX or not _CODE.fullmatch(value):
            self.fail(
                self.line_of(m, key),
                f"{key} {value!r} of {what} is not a valid code",
                f"use lowercase ASCII letters, digits, '_' and '-', at most {_CODE_MAX} characters",
            )
        return value

    def integer(self, m: LineMap, key: str, what: str) -> int:
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(m, key, what, "an integer")
        return value

    def number(self, m: LineMap, key: str, what: str) -> float:
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(m, key, what, "a number")
        if value <= 0:
            self.fail(self.line_of(m, key), f"{key} of {what} must be positive", "fix the value")
        return float(value)

    def bound(self, m: LineMap, key: str, what: str) -> float | None:
        """An optional bound of a measured value (any finite number, zero and below too)."""
        if key not in m or m[key] is None:
            return None
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.wrong_type(m, key, what, "a number")
        return float(value)

    def boolean(self, m: LineMap, key: str, what: str) -> bool:
        value = m[key]
        if not isinstance(value, bool):
            self.wrong_type(m, key, what, "true or false")
        return value

    def seq(self, m: LineMap, key: str, what: str) -> LineSeq:
        value = m[key]
        if not isinstance(value, LineSeq):
            self.wrong_type(m, key, what, "a list")
        return value

    def entries(self, m: LineMap, key: str, what: str) -> list[LineMap]:
        """The mappings of list ``m[key]``; each must be a mapping."""
        items = self.seq(m, key, what)
        result: list[LineMap] = []
        for position, entry in enumerate(items, start=1):
            if not isinstance(entry, LineMap):
                self.fail(
                    getattr(entry, "line", items.line),
                    f"entry {position} of {key} in {what} is not a mapping",
                    "write each entry as `- key: value` lines or {key: value, ...}",
                )
            result.append(entry)
        return result

    def unique(self, entries: list[LineMap], codes: list[str], section: str) -> None:
        seen: dict[str, int] = {}
        for entry, code in zip(entries, codes, strict=True):
            if code in seen:
                self.fail(
                    entry.line,
                    f"duplicate {section} code {code!r} (first defined on line {seen[code]})",
                    "give each entry its own code",
                )
            seen[code] = entry.line

    def ref(self, m: LineMap, key: str, what: str, known: dict[str, Any], kind: str) -> str:
        code = self.code(m, key, what)
        if code not in known:
            self.fail(
                self.line_of(m, key),
                f"{what} refers to unknown {kind} {code!r}",
                f"use a code defined under {self.sections[kind]}",
            )
        return code

    def choice(self, m: LineMap, key: str, what: str, allowed: tuple[str, ...], kind: str) -> str:
        value = m[key]
        if not isinstance(value, str) or value not in allowed:
            self.fail(
                self.line_of(m, key),
                f"unknown {kind} {value!r} in {what}",
                f"use one of {', '.join(allowed)}",
            )
        return value

    def choices(
        self, m: LineMap, key: str, what: str, allowed: tuple[str, ...], kind: str
    ) -> tuple[str, ...]:
        values = self.seq(m, key, what)
        result: list[str] = []
        for value in values:
            if not isinstance(value, str) or value not in allowed:
                self.fail(
                    self.line_of(m, key),
                    f"unknown {kind} {value!r} in {what}",
                    f"use only {', '.join(allowed)}",
                )
            if value in result:
                self.fail(
                    self.line_of(m, key),
                    f"{kind} {value!r} is listed twice in {what}",
                    "list it once",
                )
            result.append(value)
        return tuple(result)

    # sections ---------------------------------------------------------------------------

    def document(
        self, text: str, *, required: tuple[str, ...], optional: tuple[str, ...] = (), version: int
    ) -> LineMap:
        """The file's top mapping, its keys and its version (``required[0]``) checked."""
        try:
            doc = yaml.load(text, Loader=LineLoader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            problem = error.problem or error.context or "malformed YAML"
            self.fail(
                mark.line + 1 if mark is not None else None,
                f"YAML syntax error: {problem}",
                "use plain YAML values without tags, and each key once"
                if isinstance(error, yaml.constructor.ConstructorError)
                else "fix the YAML (indentation, quoting, colons)",
            )
        except yaml.YAMLError as error:
            self.fail(None, f"YAML syntax error: {error}", "fix the YAML")
        if not isinstance(doc, LineMap):
            self.fail(
                1 if doc is not None else None,
                "the catalog is not a mapping" if doc is not None else "the catalog is empty",
                f"start with version: {version}, then {', '.join(required[1:])}",
            )
        self.keys(doc, "the catalog", required, optional)
        found = self.integer(doc, "version", "the catalog")
        if found != version:
            self.fail(
                self.line_of(doc, "version"),
                f"unsupported catalog version {found}",
                f"this build reads version {version}",
            )
        return doc

    def parse(self, text: str) -> Catalog:
        doc = self.document(text, required=_TOP_KEYS, version=CATALOG_VERSION)
        version = CATALOG_VERSION
        regions = self.regions(doc)
        region_codes = {r.code: r for r in regions}
        departments = self.departments(doc, region_codes)
        department_codes = {d.code: d for d in departments}
        stages = self.stages(doc, department_codes)
        material_types = self.material_types(doc)
        items = self.items(
            doc,
            {s.code: s for s in stages},
            department_codes,
            {t.code: t for t in material_types},
        )
        checklists = self.checklists(doc, department_codes)
        return Catalog(
            version=version,
            regions=regions,
            departments=departments,
            stages=stages,
            material_types=material_types,
            items=items,
            checklists=checklists,
        )

    def regions(self, doc: LineMap) -> tuple[RegionSpec, ...]:
        entries = self.entries(doc, "regions", "the catalog")
        specs: list[RegionSpec] = []
        for m in entries:
            what = f"region {m.get('code', '')!s}".strip()
            self.keys(
                m, what, ("code", "name", "kind", "admin_code", "parent"), ("assessments", "limits")
            )
            admin_code = m["admin_code"]
            if not isinstance(admin_code, str):
                self.wrong_type(m, "admin_code", what, "a quoted string of six digits")
            if not _ADMIN_CODE.fullmatch(admin_code):
                self.fail(
                    self.line_of(m, "admin_code"),
                    f"admin_code {admin_code!r} of {what} is not a six-digit GB/T 2260 code",
                    'write it as six digits in quotes, e.g. "371400"',
                )
            parent = None if m["parent"] is None else self.code(m, "parent", what)
            assessments = (
                self.choices(m, "assessments", what, ASSESSMENTS, "assessment")
                if "assessments" in m
                else ()
            )
            land: float | None = None
            investment: float | None = None
            if "limits" in m:
                limits = m["limits"]
                if not isinstance(limits, LineMap):
                    self.wrong_type(m, "limits", what, "a mapping")
                limit_keys = ("max_land_area_m2", "max_investment_10k_yuan")
                self.keys(limits, f"limits of {what}", (), limit_keys)
                if "max_land_area_m2" in limits:
                    land = self.number(limits, "max_land_area_m2", what)
                if "max_investment_10k_yuan" in limits:
                    investment = self.number(limits, "max_investment_10k_yuan", what)
            specs.append(
                RegionSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what, 64),
                    kind=self.choice(m, "kind", what, REGION_KINDS, "region kind"),
                    admin_code=admin_code,
                    parent=parent,
                    assessments=assessments,
                    max_land_area_m2=land,
                    max_investment_10k_yuan=investment,
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "region")
        self.region_tree(specs)
        return tuple(specs)

    def region_tree(self, specs: list[RegionSpec]) -> None:
        by_code = {s.code: s for s in specs}
        for spec in specs:
            if spec.parent is not None and spec.parent not in by_code:
                self.fail(
                    spec.line,
                    f"region {spec.code} has unknown parent {spec.parent!r}",
                    "use the code of a region defined under regions, or null for the city",
                )
        for spec in specs:
            seen = [spec.code]
            parent = spec.parent
            while parent is not None:
                if parent in seen:
                    chain = " -> ".join([*seen, parent])
                    self.fail(
                        spec.line,
                        f"region parents form a cycle: {chain}",
                        "every chain of parents must end at a region with parent: null",
                    )
                seen.append(parent)
                parent = by_code[parent].parent

    def departments(
        self, doc: LineMap, regions: dict[str, RegionSpec] | None, *, where: str = "the catalog"
    ) -> tuple[DepartmentSpec, ...]:
        """The ``departments`` section; with ``regions=None`` (a file that defines no regions)
        a region is any quoted code, and the loader checks it against the database."""
        entries = self.entries(doc, "departments", where)
        specs: list[DepartmentSpec] = []
        for m in entries:
            what = f"department {m.get('code', '')!s}".strip()
            self.keys(m, what, ("code", "name", "short_name", "level", "region"))
            if regions is None:
                region = m["region"]
                if not isinstance(region, str):
                    self.wrong_type(m, "region", what, "a quoted region code")
            else:
                region = self.ref(m, "region", what, regions, "region")
            specs.append(
                DepartmentSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what, 64),
                    short_name=self.text(m, "short_name", what, 32),
                    level=self.choice(m, "level", what, DEPARTMENT_LEVELS, "department level"),
                    region=region,
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "department")
        return tuple(specs)

    def stages(self, doc: LineMap, departments: dict[str, DepartmentSpec]) -> tuple[StageSpec, ...]:
        entries = self.entries(doc, "stages", "the catalog")
        expected = ", ".join(STAGE_CODES)
        if len(entries) != len(STAGE_CODES):
            self.fail(
                self.line_of(doc, "stages"),
                f"stages lists {len(entries)} stages, not the four known ones",
                f"list exactly {expected}, with order 1..4",
            )
        specs: list[StageSpec] = []
        for position, m in enumerate(entries, start=1):
            what = f"stage {m.get('code', '')!s}".strip()
            self.keys(m, what, ("code", "name", "order", "lead_department", "time_limit_days"))
            code = self.code(m, "code", what)
            order = self.integer(m, "order", what)
            if code != STAGE_CODES[position - 1] or order != position:
                self.fail(
                    m.line,
                    f"stage {position} is {code!r} with order {order}, "
                    f"expected {STAGE_CODES[position - 1]!r} with order {position}",
                    f"list exactly {expected}, with order 1..4",
                )
            days = self.integer(m, "time_limit_days", what)
            if days <= 0:
                self.fail(
                    self.line_of(m, "time_limit_days"),
                    f"time_limit_days of {what} must be positive",
                    "give the promised working days of the whole stage",
                )
            specs.append(
                StageSpec(
                    code=code,
                    name=self.text(m, "name", what, 64),
                    order=order,
                    lead_department=self.ref(m, "lead_department", what, departments, "department"),
                    time_limit_days=days,
                    line=m.line,
                )
            )
        return tuple(specs)

    def material_types(self, doc: LineMap) -> tuple[MaterialTypeSpec, ...]:
        entries = self.entries(doc, "material_types", "the catalog")
        specs: list[MaterialTypeSpec] = []
        for m in entries:
            what = f"material type {m.get('code', '')!s}".strip()
            self.keys(m, what, ("code", "name"), ("description",))
            specs.append(
                MaterialTypeSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what),
                    description=(
                        self.text(m, "description", what, 2000) if "description" in m else ""
                    ),
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "material type")
        return tuple(specs)

    def items(
        self,
        doc: LineMap,
        stages: dict[str, StageSpec],
        departments: dict[str, DepartmentSpec],
        material_types: dict[str, MaterialTypeSpec],
    ) -> tuple[ItemSpec, ...]:
        entries = self.entries(doc, "items", "the catalog")
        specs: list[ItemSpec] = []
        for m in entries:
            what = f"item {m.get('code', '')!s}".strip()
            self.keys(
                m,
                what,
                (
                    "code",
                    "name",
                    "stage",
                    "department",
                    "statutory_days",
                    "promised_days",
                    "site_check",
                    "materials",
                ),
                ("project_types", "regional_assessment", "default_approval"),
            )
            statutory = self.integer(m, "statutory_days", what)
            promised = self.integer(m, "promised_days", what)
            if statutory <= 0:
                self.fail(
                    self.line_of(m, "statutory_days"),
                    f"statutory_days of {what} must be positive",
                    "give the legal time limit in working days",
                )
            if promised <= 0:
                self.fail(
                    self.line_of(m, "promised_days"),
                    f"promised_days of {what} must be positive",
                    "give the promised time limit in working days",
                )
            if promised > statutory:
                self.fail(
                    self.line_of(m, "promised_days"),
                    f"promised_days {promised} of {what} exceeds statutory_days {statutory}",
                    "a promised limit (承诺时限) may not be longer than the statutory one",
                )
            project_types: tuple[str, ...] = PROJECT_TYPES
            if "project_types" in m:
                project_types = self.choices(
                    m, "project_types", what, PROJECT_TYPES, "project type"
                )
                if not project_types:
                    self.fail(
                        self.line_of(m, "project_types"),
                        f"project_types of {what} is empty",
                        "list at least one project type, or omit the key for all of them",
                    )
            assessment = None
            if "regional_assessment" in m and m["regional_assessment"] is not None:
                assessment = self.choice(m, "regional_assessment", what, ASSESSMENTS, "assessment")
            specs.append(
                ItemSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what),
                    stage=self.ref(m, "stage", what, stages, "stage"),
                    department=self.ref(m, "department", what, departments, "department"),
                    statutory_days=statutory,
                    promised_days=promised,
                    site_check=self.boolean(m, "site_check", what),
                    materials=self.item_materials(m, what, material_types),
                    project_types=project_types,
                    regional_assessment=assessment,
                    default_approval=(
                        self.boolean(m, "default_approval", what)
                        if "default_approval" in m
                        else True
                    ),
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "item")
        return tuple(specs)

    def item_materials(
        self, m: LineMap, what: str, material_types: dict[str, MaterialTypeSpec]
    ) -> tuple[ItemMaterialSpec, ...]:
        entries = self.entries(m, "materials", what)
        specs: list[ItemMaterialSpec] = []
        seen: dict[str, int] = {}
        for entry in entries:
            entry_what = f"a material of {what}"
            self.keys(entry, entry_what, ("type", "core"))
            code = self.ref(entry, "type", entry_what, material_types, "material type")
            if code in seen:
                self.fail(
                    entry.line,
                    f"material type {code!r} is listed twice in {what} "
                    f"(first on line {seen[code]})",
                    "list each material once",
                )
            seen[code] = entry.line
            specs.append(ItemMaterialSpec(type=code, core=self.boolean(entry, "core", entry_what)))
        return tuple(specs)

    def checklists(
        self, doc: LineMap, departments: dict[str, DepartmentSpec]
    ) -> tuple[ChecklistSpec, ...]:
        entries = self.entries(doc, "checklists", "the catalog")
        specs: list[ChecklistSpec] = []
        for m in entries:
            what = f"checklist {m.get('code', '')!s}".strip()
            self.keys(m, what, ("code", "name", "department", "checks"))
            check_entries = self.entries(m, "checks", what)
            if not check_entries:
                self.fail(
                    self.line_of(m, "checks"),
                    f"{what} has no checks",
                    "list the checks its inspectors fill in",
                )
            checks: list[CheckSpec] = []
            for entry in check_entries:
                check_what = f"a check of {what}"
                self.keys(entry, check_what, ("code", "label", "measured"), ("unit", "min", "max"))
                unit = None
                if "unit" in entry and entry["unit"] is not None:
                    unit = self.text(entry, "unit", check_what, 16)
                measured = self.boolean(entry, "measured", check_what)
                bounds = [self.bound(entry, key, check_what) for key in ("min", "max")]
                if (bounds[0] is not None or bounds[1] is not None) and not measured:
                    self.fail(
                        self.line_of(entry, "min" if "min" in entry else "max"),
                        f"{check_what} has an allowed range but is not measured",
                        "set measured: true, or remove min and max",
                    )
                if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
                    self.fail(
                        self.line_of(entry, "min"),
                        f"{check_what} allows no value: min {bounds[0]:g} is above max "
                        f"{bounds[1]:g}",
                        "swap or fix the bounds",
                    )
                checks.append(
                    CheckSpec(
                        code=self.code(entry, "code", check_what),
                        label=self.text(entry, "label", check_what),
                        measured=measured,
                        unit=unit,
                        minimum=bounds[0],
                        maximum=bounds[1],
                    )
                )
            self.unique(check_entries, [c.code for c in checks], f"check (in {what})")
            specs.append(
                ChecklistSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what, 64),
                    department=self.ref(m, "department", what, departments, "department"),
                    checks=tuple(checks),
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "checklist")
        return tuple(specs)


# --- API ---------------------------------------------------------------------------------


def parse_catalog(text: str, *, source: str = "catalog.yaml") -> Catalog:
    """Parse and validate a catalog; raises CatalogError naming the offending line."""
    return CatalogReader(source).parse(text)


def default_catalog_path() -> Path:
    """``approval/catalog/data/catalog.yaml``, shipped with the package."""
    return Path(__file__).resolve().parent / "data" / "catalog.yaml"


def load_default_catalog() -> Catalog:
    path = default_catalog_path()
    return parse_catalog(path.read_text(encoding="utf-8"), source=path.name)
