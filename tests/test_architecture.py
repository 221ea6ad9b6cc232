"""The rooms and their arrows (ARCHITECTURE.md): each package imports only what it may."""

from __future__ import annotations

import ast
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
MAY_IMPORT_MODULES = {"clients": {"approval.documents"}}


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
        for path in (ROOT / room).rglob("*.py"):
            wrong += [f"{path.relative_to(ROOT)} imports {m}" for m in _wrong_imports(room, path)]
    assert wrong == []


def test_clients_may_import_the_document_layouts_and_nothing_else_of_approval(
    tmp_path: Path,
) -> None:
    module = tmp_path / "client.py"
    module.write_text(
        "from approval.documents import check_container\n"
        "import approval.documents\n"
        "from approval.auth import login\n"
        "import approval\n"
        "from sync import protocol\n"
    )
    assert _wrong_imports("clients", module) == ["approval", "approval.auth", "sync"]


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from schema.app import build_schema\nimport server.cli\n")
    assert _imports(module) == {"schema", "server"}
