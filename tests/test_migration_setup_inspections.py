"""Migration 0016 on a database that already holds inspections (SQLite and PostgreSQL): the
rows of the inspection and of its children are kept as they were (SQLite copies the table, and
a DROP with foreign keys on would have cascaded into them), and the database itself refuses an
inspection of no case or of two."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from storage.db import recreate_postgres_database
from tests import test_company_setups_api as setups_api
from tests.test_cli import cli_environment

tokens = setups_api.tokens  # the company reviewers and inspectors (a fixture)

BEFORE = "models.0015_setup_task_rounds"
TS = "'2026-03-02 09:00:00+08:00'"

# Parents and one inspection with its department, assignment and a recorded check, written as
# 0015 knew them (explicit ids; the same SQL on SQLite and PostgreSQL).
OLD_ROWS = [
    "INSERT INTO region (id, code, name, kind, admin_code, assessments)"
    " VALUES (901, 'm-r', '测试区', 'district', '371402', '[]')",
    "INSERT INTO department (id, code, name, short_name, level, region_id)"
    " VALUES (901, 'm-d', '测试局', '测试', 'district', 901)",
    "INSERT INTO enterprise (id, credit_code, name, contact_name, contact_phone)"
    " VALUES (901, '91371400MA0000001X', '测试企业', '张三', '13800000000')",
    "INSERT INTO app_user (id, username, display_name, password_hash, role, active,"
    " created_at, department_id, region_id)"
    f" VALUES (901, 'm-inspector', '检查员', 'x', 'inspector', TRUE, {TS}, 901, 901)",
    "INSERT INTO project (id, code, name, project_type, industry_code, land_area_m2,"
    " floor_area_m2, investment_10k_yuan, address, status, created_at, updated_at,"
    " enterprise_id, region_id)"
    f" VALUES (901, 'M-1', '测试项目', 'APPROVAL', '01', 1, 1, 1, '', 'active', {TS}, {TS},"
    " 901, 901)",
    "INSERT INTO inspection (id, kind, round, status, requested_at, due, project_id,"
    " created_by_id) VALUES (901, 'site_check', 1, 'in_progress', "
    f"{TS}, '2026-03-05', 901, 901)",
    "INSERT INTO inspection (id, kind, round, status, requested_at, due, project_id,"
    " previous_id) VALUES (902, 'site_check', 2, 'scheduled', "
    f"{TS}, '2026-03-06', 901, 901)",
    "INSERT INTO inspection_department (id, conclusion_note, signed_by, department_id,"
    " inspection_id) VALUES (901, '', '', 901, 901)",
    "INSERT INTO inspection_assignment (id, department_id, inspection_id, user_id)"
    " VALUES (901, 901, 901, 901)",
    "INSERT INTO check_result (id, check_code, outcome, note, measured, photo_ids,"
    " recorded_by, department_id, inspection_id)"
    " VALUES (901, 'c1', 'pass', '好', '{}', '[]', 'm-inspector', 901, 901)",
]
KEPT = {
    "SELECT id, project_id, previous_id, status, round FROM inspection ORDER BY id": [
        (901, 901, None, "in_progress", 1),
        (902, 901, 901, "scheduled", 2),
    ],
    "SELECT id, inspection_id, department_id FROM inspection_department": [(901, 901, 901)],
    "SELECT id, inspection_id, user_id FROM inspection_assignment": [(901, 901, 901)],
    "SELECT id, inspection_id, check_code, outcome FROM check_result": [(901, 901, "c1", "pass")],
    "SELECT setup_id, setup_task_id FROM inspection ORDER BY id": [(None, None), (None, None)],
}
NO_CASE = (
    "INSERT INTO inspection (id, kind, round, status, requested_at, due)"
    f" VALUES (903, 'site_check', 1, 'scheduled', {TS}, '2026-03-05')"
)
NO_PROJECT = "UPDATE inspection SET project_id = NULL WHERE id = 901"

Run = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


def _migrate_process(cwd: Path, *args: str) -> None:
    """``python -m tests.migrate_process ARGS``, which must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.migrate_process", *args],
        capture_output=True,
        text=True,
        env=cli_environment(),
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _migrate(url: str, cwd: Path, *target: str) -> None:
    _migrate_process(cwd, url, *target)


@pytest.fixture
async def blank_database(database: str, tmp_path: Path) -> AsyncIterator[tuple[str, Run]]:
    """An empty database of the suite's kind and a function running one SQL statement on it."""
    if database.startswith("sqlite://"):
        path = tmp_path / "old.sqlite3"

        async def run_sqlite(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as connection:
                connection.execute("PRAGMA foreign_keys = ON")
                return [tuple(row) for row in connection.execute(sql).fetchall()]

        yield f"sqlite://{path}", run_sqlite
        return
    import asyncpg

    name = f"{urlsplit(database).path.lstrip('/')}_migration"
    url = await recreate_postgres_database(database, name)
    dsn = url.replace("postgres://", "postgresql://", 1)

    async def run_postgres(sql: str) -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(row.values()) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    try:
        yield url, run_postgres
    finally:
        await recreate_postgres_database(database, name, create=False)


async def test_0016_keeps_old_inspections_and_checks_one_case(
    blank_database: tuple[str, Run], tmp_path: Path
) -> None:
    url, run = blank_database
    _migrate(url, tmp_path, BEFORE)
    for statement in OLD_ROWS:
        await run(statement)
    with pytest.raises(Exception, match=r"(?i)not.null"):
        await run(NO_CASE)  # 0015: project_id is required

    _migrate(url, tmp_path)

    for query, expected in KEPT.items():
        assert await run(query) == expected, query
    with pytest.raises(Exception, match="inspection_of_one_case"):
        await run(NO_CASE)
    with pytest.raises(Exception, match="inspection_of_one_case"):
        await run(NO_PROJECT)
    assert await run("SELECT count(*) FROM inspection") == [(2,)]
    # Deleting the project still cascades to its inspections and their rows.
    await run("DELETE FROM project WHERE id = 901")
    assert await run("SELECT count(*) FROM check_result") == [(0,)]


async def test_0017_opens_the_pending_site_checks_of_setups_accepted_before(
    gql: Any, tokens: dict[str, str]
) -> None:
    """Setups accepted before 0016 have their checks' due dates but no inspection: 0017 opens
    one per check not yet done (a setup in review only), as acceptance does today; a second run
    adds nothing."""
    import importlib
    from types import SimpleNamespace

    from tortoise import Tortoise

    from storage.models import AuditEvent, CheckResult, Inspection, InspectionDepartment, SetupTask
    from tests.test_company_setups_api import accept, pass_site_check

    migration = importlib.import_module("storage.migrations.0017_setup_site_check_inspections")
    pending = await accept(gql)
    checked = await accept(gql, companyName="德州市已踏勘餐饮有限公司")
    fire = next(t for t in checked["tasks"] if t["permitCode"] == "fire_safety_check")
    await pass_site_check(gql, tokens, fire, code=checked["code"])  # done before the upgrade
    expected = {
        (row.setup_task_id, row.due, row.round, department.department_id, department.checklist_id)
        for row in await Inspection.filter(setup__code=pending["code"])
        for department in await InspectionDepartment.filter(inspection_id=row.id)
    }
    checks = sorted(
        await CheckResult.filter(inspection__setup__code=pending["code"]).values_list(
            "inspection__setup_task_id", "check_code"
        )
    )
    await Inspection.filter(setup__code__in=[pending["code"], checked["code"]]).delete()

    editor = SimpleNamespace(client=Tortoise.get_connection("default"))
    # pending: food and fire; checked: its food check only (the fire check was done)
    assert await migration.open_pending_site_checks(None, editor) == 3
    made = await Inspection.filter(setup__code=pending["code"]).order_by("id")
    assert {
        (row.setup_task_id, row.due, row.round, department.department_id, department.checklist_id)
        for row in made
        for department in await InspectionDepartment.filter(inspection_id=row.id)
    } == expected
    assert all(r.project_id is None and r.status.value == "scheduled" for r in made)
    assert (
        sorted(
            await CheckResult.filter(inspection__setup__code=pending["code"]).values_list(
                "inspection__setup_task_id", "check_code"
            )
        )
        == checks
    )
    assert not await Inspection.filter(setup_task_id=fire["taskId"]).exists()
    fire_task = await SetupTask.get(id=fire["taskId"])
    assert fire_task.site_check_done_at is not None
    audited = await AuditEvent.filter(
        action="inspection.schedule", entity_id__in=[r.id for r in made]
    ).values_list("after", flat=True)
    assert len(audited) == 2 and all(a["migration"] == "0017" for a in audited)
    assert await migration.open_pending_site_checks(None, editor) == 0
    # The inspection made serves as one made at acceptance: the department may work on it.
    food = next(t for t in pending["tasks"] if t["permitCode"] == "food_business_license")
    assert (await pass_site_check(gql, tokens, food, code=pending["code"])) == {"status": "PASSED"}


def test_the_migrations_hold_every_model_change(tmp_path: Path) -> None:
    """``tortoise makemigrations`` finds nothing to write: the models and the migrations agree
    (0017 carries the inspection's options, the CHECK among them, as the model declares them)."""
    _migrate_process(tmp_path, "--changes")
