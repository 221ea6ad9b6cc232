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


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_rooms_import_only_what_they_may() -> None:
    wrong = []
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            for imported in _imports(path) & set(ROOMS):
                if imported != room and imported not in MAY_IMPORT[room]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert wrong == []


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from schema.app import build_schema\nimport server.cli\n")
    assert _imports(module) == {"schema", "server"}
