"""The rooms and their arrows (ARCHITECTURE.md): each package imports only what it may."""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("storage", "approval", "schema", "sync", "server", "clients")
MAY_IMPORT = {
    "storage": set(),
    "approval": {"storage"},
    "schema": {"approval", "storage"},
    "sync": {"storage"},
    "server": {"storage", "approval", "schema", "sync"},
    "clients": set(),
}
# Modules of other rooms a room may import although the room itself is off limits: the field
# client may use the pure document layouts, nothing else of the domain.
MAY_IMPORT_MODULES = {"clients": {"approval.fieldwork.documents"}}


SKIPPED = {"node_modules", "dist", "__pycache__"}  # installed or built, not ours


def python_files(folder: Path) -> list[Path]:
    """The Python files under ``folder``, without walking installed packages (the web apps'
    node_modules hold tens of thousands of files)."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [d for d in subdirectories if d not in SKIPPED]
        found += [Path(directory, name) for name in files if name.endswith(".py")]
    return sorted(found)


def _modules(path: Path) -> set[str]:
    """The full names of the modules ``path`` imports (``from a.b import c``: ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    return {module.split(".")[0] for module in _modules(path)}


def _wrong_imports(room: str, path: Path) -> list[str]:
    """The modules of other rooms that ``path`` (in ``room``) imports but may not."""
    wrong = []
    for module in sorted(_modules(path)):
        imported = module.split(".")[0]
        if imported not in ROOMS or imported == room or imported in MAY_IMPORT[room]:
            continue
        if module not in MAY_IMPORT_MODULES.get(room, set()):
            wrong.append(module)
    return wrong


def test_rooms_import_only_what_they_may() -> None:
    wrong = []
    for room in ROOMS:
        for path in python_files(ROOT / room):
            wrong += [f"{path.relative_to(ROOT)} imports {m}" for m in _wrong_imports(room, path)]
    assert wrong == []


def test_clients_may_import_the_document_layouts_and_nothing_else_of_approval(
    tmp_path: Path,
) -> None:
    module = tmp_path / "client.py"
    module.write_text(
        "from approval.fieldwork.documents import check_container\n"
        "import approval.fieldwork.documents\n"
        "from approval.core.auth import login\n"
        "import approval\n"
        "from sync import protocol\n"
    )
    assert _wrong_imports("clients", module) == ["approval", "approval.core.auth", "sync"]


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from schema.app import build_schema\nimport server.cli\n")
    assert _imports(module) == {"schema", "server"}


# --- the domain's packages (approval/<package>/) -----------------------------------------------

DOMAIN = ROOT / "approval"
DOMAIN_PACKAGES = (
    "core",
    "catalog",
    "review",
    "projects",
    "company",
    "fieldwork",
    "files",
    "oversight",
)
DOMAIN_MAY_IMPORT = {
    "core": set(),
    "catalog": {"core"},
    "review": {"core"},
    "projects": {"core", "catalog", "review"},
    "company": {"core", "catalog", "review", "projects", "fieldwork"},
    "fieldwork": {"core", "catalog", "review", "projects"},
    "files": {"core", "projects", "fieldwork"},
    "oversight": {"core", "catalog", "review", "projects", "company", "fieldwork", "files"},
}


# schema/ mirrors the domain: one package per domain package it serves, the API's own
# machinery in core; app.py, node.py and export.py at the top assemble them.
SCHEMA = ROOT / "schema"
SCHEMA_MAY_IMPORT = {
    "core": set(),
    "files": {"core"},
    "projects": {"core", "files"},
    "company": {"core"},
    "fieldwork": {"core", "files", "projects", "company"},
    "oversight": {"core", "projects"},
}
RULES = {"approval": DOMAIN_MAY_IMPORT, "schema": SCHEMA_MAY_IMPORT}


def _package_of(room: str, module: str) -> str | None:
    """``approval.projects.tasks`` -> ``projects``; None outside ``room``'s packages."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == room and parts[1] in RULES[room]:
        return parts[1]
    return None


def _domain_package(module: str) -> str | None:
    return _package_of("approval", module)


def _relative_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
    ]


def test_every_domain_module_lives_in_a_package() -> None:
    loose = sorted(p.name for p in DOMAIN.glob("*.py") if p.name not in {"__init__.py", "demo.py"})
    folders = sorted(p.name for p in DOMAIN.iterdir() if (p / "__init__.py").exists())
    assert loose == []
    assert folders == sorted(DOMAIN_PACKAGES)


def _wrong_package_imports(room: str, package: str, path: Path) -> list[str]:
    """The modules of ``room``'s other packages that ``path`` (in ``package``) may not import."""
    wrong = []
    for module in sorted(_modules(path)):
        target = _package_of(room, module)
        assembly = module.split(".")[0] == room and target is None  # e.g. schema.app, approval
        if assembly or (target and target != package and target not in RULES[room][package]):
            wrong.append(module)
    return wrong


def _wrong_domain_imports(package: str, path: Path) -> list[str]:
    return _wrong_package_imports("approval", package, path)


def test_domain_packages_import_only_what_they_may() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in DOMAIN_PACKAGES
        for path in (DOMAIN / package).rglob("*.py")
        for module in _wrong_domain_imports(package, path)
    ]
    assert wrong == []


def test_schema_mirrors_the_domain_in_packages() -> None:
    loose = sorted(p.name for p in SCHEMA.glob("*.py"))
    folders = sorted(p.name for p in SCHEMA.iterdir() if (p / "__init__.py").exists())
    assert loose == ["__init__.py", "app.py", "export.py", "node.py"]
    assert folders == sorted(SCHEMA_MAY_IMPORT)
    assert set(SCHEMA_MAY_IMPORT) - {"core"} <= set(DOMAIN_PACKAGES)


def test_schema_packages_import_only_what_they_may() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in SCHEMA_MAY_IMPORT
        for path in (SCHEMA / package).rglob("*.py")
        for module in _wrong_package_imports("schema", package, path)
    ]
    assert wrong == []


def test_the_schema_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "company_module.py"
    module.write_text(
        "from schema.projects.types import ProjectNode\n"
        "from schema.core.context import Info\n"
        "from schema.app import build_schema\n"
    )
    assert _wrong_package_imports("schema", "company", module) == [
        "schema.app",
        "schema.projects.types",
    ]
    assert _wrong_package_imports("schema", "fieldwork", module) == ["schema.app"]


def test_no_relative_imports() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for room in ROOMS
        for path in python_files(ROOT / room)
        for line in _relative_imports(path)
    ]
    assert found == []


def test_the_domain_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "core_module.py"
    module.write_text(
        "from approval.projects.tasks import decide_task\n"
        "from approval.core.errors import DomainError\n"
        "from approval import audit\n"
        "from . import x\n"
    )
    assert _wrong_domain_imports("core", module) == ["approval", "approval.projects.tasks"]
    assert _wrong_domain_imports("oversight", module) == ["approval"]
    assert _relative_imports(module) == [4]


def test_one_home_for_beijing_time_and_the_calendar_of_some_days() -> None:
    """The zone, the local date and 'the calendar of these days' are defined once, in core."""
    homes = {"approval/core/dates.py", "approval/core/calendar.py"}
    written = [
        f"{path.relative_to(ROOT)}: {needle}"
        for room in ROOMS
        for path in python_files(ROOT / room)
        if str(path.relative_to(ROOT)) not in homes
        for needle in ('ZoneInfo("Asia/Shanghai")', ".astimezone(CHINA).date()", "d.year for d in")
        if needle in path.read_text(encoding="utf-8")
    ]
    assert written == []


REVIEW_ENGINE_NEEDLES = (
    ".paused_at = ",  # a clock stopped or restarted
    ".decided_at = ",  # a decision recorded
    ".default_approved = ",  # 超时默认 recorded
    "resumed_deadline(",  # the deadline moved by a stopped clock
    "most_severe(",  # the fan-in
    ".status = TaskStatus.DECIDED",  # a task closed
)


def _review_engine_writes(files: list[Path]) -> list[str]:
    return [
        f"{path.name}: {needle}"
        for path in files
        for needle in REVIEW_ENGINE_NEEDLES
        if needle in path.read_text(encoding="utf-8")
    ]


def test_one_review_engine_for_every_kind_of_case() -> None:
    """Construction tasks and company-setup tasks are decided, stopped, restarted and fanned
    in by approval/review/engine.py only: the kinds' layers hold no copy of that path."""
    engine = ROOT / "approval" / "review"
    files = [
        path for room in ROOMS for path in python_files(ROOT / room) if engine not in path.parents
    ]
    assert _review_engine_writes(files) == []
    found = {w.split(": ", 1)[1] for w in _review_engine_writes(python_files(engine))}
    assert found == set(REVIEW_ENGINE_NEEDLES)


def test_the_review_engine_check_sees_a_copy(tmp_path: Path) -> None:
    copy = tmp_path / "review.py"
    copy.write_text("task.paused_at = None\noutcome = most_severe(rows)\n", encoding="utf-8")
    assert len(_review_engine_writes([copy])) == 2
