"""The company-setup catalog (企业设立 1+4+X): departments, permits, flows and business types.

A pure parser of ``approval/catalog/data/company.yaml`` (no database), with the main catalog's
line-numbered YAML reader: every refusal names the line and what to do. A file may take another
as its ``base`` and ``reassign`` departments (a city that merged 工商局 and 质监局 into
市场监督管理局 loads the same flows with its own departments).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from approval.catalog.parse import (
    CatalogReader,
    ChecklistSpec,
    DepartmentSpec,
    ItemMaterialSpec,
    LineMap,
    MaterialTypeSpec,
)

COMPANY_CATALOG_VERSION = 1
_TOP_KEYS = (
    "version",
    "window",
    "time_limits",
    "departments",
    "material_types",
    "checklists",
    "permits",
    "groups",
)
_LIMITS = ("core", "x", "site_check")


@dataclass(frozen=True)
class TimeLimits:
    """Working days: the core licence and certificates, the X permits, a site check."""

    core: int
    x: int
    site_check: int


@dataclass(frozen=True)
class PermitSpec:
    """A licence or permit one department issues; ``core``: one of the 4 (一照三证)."""

    code: str
    name: str
    department: str
    core: bool
    materials: tuple[ItemMaterialSpec, ...]
    site_check: str | None = None  # the checklist of the site check it needs
    default_approval: bool = True  # 超时默认, unless the law excludes it
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BusinessTypeSpec:
    code: str
    name: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FlowSpec:
    """One of the flows (流程图): the X permits beyond the core ones, for its business types."""

    code: str
    name: str
    permits: tuple[str, ...]
    business_types: tuple[BusinessTypeSpec, ...]
    starts_project: bool = False  # a setup of this flow also starts a construction project
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FlowGroupSpec:
    code: str
    name: str
    flows: tuple[FlowSpec, ...]
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CompanyCatalog:
    version: int
    window: str  # the department of the comprehensive window (企业设立综合窗口)
    time_limits: TimeLimits
    departments: tuple[DepartmentSpec, ...]
    material_types: tuple[MaterialTypeSpec, ...]
    checklists: tuple[ChecklistSpec, ...]
    permits: tuple[PermitSpec, ...]
    groups: tuple[FlowGroupSpec, ...]

    @property
    def flows(self) -> tuple[FlowSpec, ...]:
        return tuple(flow for group in self.groups for flow in group.flows)

    def permit(self, code: str) -> PermitSpec:
        return next(p for p in self.permits if p.code == code)

    def flow_of(self, business_type: str) -> FlowSpec:
        """The one flow of a business type; KeyError if the catalog has no such type."""
        for flow in self.flows:
            if any(b.code == business_type for b in flow.business_types):
                return flow
        raise KeyError(f"no business type {business_type!r} in the company catalog")

    def referenced_departments(self) -> set[str]:
        """Department codes the file uses without defining: the main catalog must have them."""
        used = {self.window} | {p.department for p in self.permits}
        used |= {c.department for c in self.checklists}
        return used - {d.code for d in self.departments}


class _CompanyReader(CatalogReader):
    sections: ClassVar[dict[str, str]] = {
        "department": "departments (here or in the main catalog)",
        "material type": "material_types",
        "checklist": "checklists",
        "permit": "permits",
    }

    def parse_company(self, text: str) -> CompanyCatalog:
        doc = self.document(
            text,
            required=("version",),
            optional=(*_TOP_KEYS[1:], "base", "reassign"),
            version=COMPANY_CATALOG_VERSION,
        )
        if "base" in doc:
            return self.variant(doc)
        self.keys(doc, "the company catalog", _TOP_KEYS)
        departments = self.departments(doc, None, where="the company catalog")
        # A checklist's department may come from the main catalog: the loader checks it.
        known_departments = _AnyDepartment()
        material_types = self.material_types(doc)
        types = {t.code: t for t in material_types}
        checklists = self.checklists(doc, known_departments)
        permits = self.permits(doc, types, {c.code: c for c in checklists})
        groups = self.groups(doc, {p.code: p for p in permits})
        return CompanyCatalog(
            version=COMPANY_CATALOG_VERSION,
            window=self.code(doc, "window", "the company catalog"),
            time_limits=self.time_limits(doc),
            departments=departments,
            material_types=material_types,
            checklists=checklists,
            permits=permits,
            groups=groups,
        )

    def variant(self, doc: LineMap) -> CompanyCatalog:
        """A file with ``base`` and ``reassign``: the base catalog with departments replaced."""
        self.keys(doc, "a company catalog variant", ("version", "base", "reassign"))
        name = self.text(doc, "base", "the company catalog")
        path = Path(self.source).parent / name if Path(self.source).parent.parts else None
        base_path = path if path is not None and path.exists() else _DATA / name
        if Path(name).name != name or not base_path.is_file():
            self.fail(
                self.line_of(doc, "base"),
                f"base catalog {name!r} is not a file next to this one",
                "name a catalog file in the same folder, e.g. base: company.yaml",
            )
        base = parse_company_catalog(base_path.read_text(encoding="utf-8"), source=str(base_path))
        mapping = doc["reassign"]
        if not isinstance(mapping, LineMap) or not mapping:
            self.wrong_type(doc, "reassign", "the company catalog", "a mapping old: new")
        defined = {d.code for d in base.departments}
        moves: dict[str, str] = {}
        for old, new in mapping.items():
            line = mapping.key_lines[old]
            if old not in defined:
                self.fail(
                    line,
                    f"reassign names department {old!r}, which {name} does not define",
                    f"use one of {', '.join(sorted(defined))}",
                )
            if not isinstance(new, str) or new in mapping:
                self.fail(line, f"{old!r} is reassigned to {new!r}", "name a department code")
            moves[old] = new

        def move(code: str) -> str:
            return moves.get(code, code)

        return replace(
            base,
            window=move(base.window),
            departments=tuple(d for d in base.departments if d.code not in moves),
            checklists=tuple(replace(c, department=move(c.department)) for c in base.checklists),
            permits=tuple(replace(p, department=move(p.department)) for p in base.permits),
        )

    def time_limits(self, doc: LineMap) -> TimeLimits:
        limits = doc["time_limits"]
        what = "time_limits"
        if not isinstance(limits, LineMap):
            self.wrong_type(doc, "time_limits", "the company catalog", "a mapping")
        self.keys(limits, what, _LIMITS)
        days = {key: self.integer(limits, key, what) for key in _LIMITS}
        for key, value in days.items():
            if not 1 <= value <= 60:
                self.fail(
                    self.line_of(limits, key),
                    f"{key} of {what} is {value} working days",
                    "give a number of working days from 1 to 60",
                )
        return TimeLimits(**days)

    def permits(
        self,
        doc: LineMap,
        types: dict[str, MaterialTypeSpec],
        checklists: dict[str, ChecklistSpec],
    ) -> tuple[PermitSpec, ...]:
        entries = self.entries(doc, "permits", "the company catalog")
        specs: list[PermitSpec] = []
        for m in entries:
            what = f"permit {m.get('code', '')!s}".strip()
            self.keys(
                m,
                what,
                ("code", "name", "department", "materials"),
                ("core", "site_check", "default_approval"),
            )
            site_check = None
            if m.get("site_check") is not None:
                site_check = self.ref(m, "site_check", what, checklists, "checklist")
            specs.append(
                PermitSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what),
                    department=self.code(m, "department", what),
                    core=self.boolean(m, "core", what) if "core" in m else False,
                    materials=self.item_materials(m, what, types),
                    site_check=site_check,
                    default_approval=(
                        self.boolean(m, "default_approval", what)
                        if "default_approval" in m
                        else True
                    ),
                    line=m.line,
                )
            )
        self.unique(entries, [s.code for s in specs], "permit")
        if not any(s.core for s in specs):
            self.fail(
                self.line_of(doc, "permits"),
                "no permit is core: true",
                "mark the licence and certificates every setup gets (一照三证) core: true",
            )
        return tuple(specs)

    def groups(self, doc: LineMap, permits: dict[str, PermitSpec]) -> tuple[FlowGroupSpec, ...]:
        entries = self.entries(doc, "groups", "the company catalog")
        groups: list[FlowGroupSpec] = []
        flow_lines: dict[str, int] = {}
        type_lines: dict[str, int] = {}
        for m in entries:
            what = f"group {m.get('code', '')!s}".strip()
            self.keys(m, what, ("code", "name", "flows"))
            flows: list[FlowSpec] = []
            for f in self.entries(m, "flows", what):
                flow_what = f"flow {f.get('code', '')!s}".strip()
                self.keys(
                    f, flow_what, ("code", "name", "permits", "business_types"), ("starts_project",)
                )
                code = self.code(f, "code", flow_what)
                if code in flow_lines:
                    self.fail(
                        f.line,
                        f"duplicate flow code {code!r} (first defined on line {flow_lines[code]})",
                        "give each flow its own code",
                    )
                flow_lines[code] = f.line
                chosen = self.permit_refs(f, flow_what, permits)
                types: list[BusinessTypeSpec] = []
                for b in self.entries(f, "business_types", flow_what):
                    type_what = f"a business type of {flow_what}"
                    self.keys(b, type_what, ("code", "name"))
                    type_code = self.code(b, "code", type_what)
                    if type_code in type_lines:
                        self.fail(
                            b.line,
                            f"business type {type_code!r} is already in a flow (line "
                            f"{type_lines[type_code]})",
                            "a business type has exactly one flow, its shortest: keep one",
                        )
                    type_lines[type_code] = b.line
                    types.append(
                        BusinessTypeSpec(
                            code=type_code, name=self.text(b, "name", type_what), line=b.line
                        )
                    )
                if not types:
                    self.fail(
                        self.line_of(f, "business_types"),
                        f"{flow_what} has no business type",
                        "list the business types (开饭店, 开药店, ...) that take this flow",
                    )
                flows.append(
                    FlowSpec(
                        code=code,
                        name=self.text(f, "name", flow_what),
                        permits=chosen,
                        business_types=tuple(types),
                        starts_project=(
                            self.boolean(f, "starts_project", flow_what)
                            if "starts_project" in f
                            else False
                        ),
                        line=f.line,
                    )
                )
            groups.append(
                FlowGroupSpec(
                    code=self.code(m, "code", what),
                    name=self.text(m, "name", what, 64),
                    flows=tuple(flows),
                    line=m.line,
                )
            )
        self.unique(entries, [g.code for g in groups], "group")
        return tuple(groups)

    def permit_refs(self, f: LineMap, what: str, permits: dict[str, PermitSpec]) -> tuple[str, ...]:
        codes = self.seq(f, "permits", what)
        chosen: list[str] = []
        for code in codes:
            if not isinstance(code, str) or code not in permits:
                self.fail(
                    self.line_of(f, "permits"),
                    f"{what} names unknown permit {code!r}",
                    "use a code defined under permits",
                )
            if permits[code].core:
                self.fail(
                    self.line_of(f, "permits"),
                    f"{what} lists core permit {code!r}",
                    "every flow has the core permits already; list only its X permits",
                )
            if code in chosen:
                self.fail(self.line_of(f, "permits"), f"{what} lists {code!r} twice", "once")
            chosen.append(code)
        return tuple(chosen)


class _AnyDepartment(dict[str, DepartmentSpec]):
    """Takes any department code: whether it exists is checked when the catalog is loaded."""

    def __contains__(self, code: object) -> bool:
        return True


_DATA = Path(__file__).resolve().parent / "data"


def parse_company_catalog(text: str, *, source: str = "company.yaml") -> CompanyCatalog:
    """Parse and validate a company catalog; raises CatalogError naming the offending line."""
    return _CompanyReader(source).parse_company(text)


def default_company_catalog_path() -> Path:
    return _DATA / "company.yaml"


def load_default_company_catalog() -> CompanyCatalog:
    path = default_company_catalog_path()
    return parse_company_catalog(path.read_text(encoding="utf-8"), source=path.name)
