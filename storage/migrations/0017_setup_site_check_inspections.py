"""The site checks of company setups accepted before their checks became inspections (0016):
each setup in review whose permit's site check is requested and not yet done gets the
inspection acceptance opens today (the permit department's checklist from the catalog, due on
the task's ``site_check_due``, no inspector yet: the department assigns them), audited as
``inspection.schedule`` by nobody (the system). Without it such a permit could never be
approved, as its check can only be recorded on an inspection now. Running it again adds
nothing."""

import json
from datetime import UTC, datetime
from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


async def open_pending_site_checks(apps: Any, schema_editor: Any) -> int:
    """An inspection per pending setup site check that has none; returns how many were made."""
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"

    def marks(count: int) -> str:
        return ", ".join(f"${i}" if postgres else "?" for i in range(1, count + 1))

    pending = await client.execute_query_dict(
        "SELECT t.id, t.setup_id, t.department_id, t.site_check_requested_at, t.site_check_due, "
        "p.site_check_id, d.code AS department_code, s.project_id "
        "FROM setup_task t JOIN setup_permit p ON p.id = t.permit_id "
        "JOIN department d ON d.id = t.department_id "
        "JOIN company_setup s ON s.id = t.setup_id "
        "WHERE s.status = 'in_review' AND t.site_check_due IS NOT NULL "
        "AND t.site_check_done_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM inspection i WHERE i.setup_task_id = t.id) "
        "ORDER BY t.id"
    )
    now = datetime.now(UTC)
    for task in pending:
        requested = task["site_check_requested_at"] or now
        await client.execute_query(
            "INSERT INTO inspection (kind, round, status, requested_at, due, setup_id, "
            f"setup_task_id) VALUES ({marks(7)})",
            [
                "site_check",
                1,
                "scheduled",
                requested,
                task["site_check_due"],
                task["setup_id"],
                task["id"],
            ],
        )
        [row] = await client.execute_query_dict(
            f"SELECT id FROM inspection WHERE setup_task_id = {marks(1)} ORDER BY id DESC",
            [task["id"]],
        )
        inspection_id = row["id"]
        await client.execute_query(
            "INSERT INTO inspection_department (inspection_id, department_id, checklist_id, "
            f"conclusion_note, signed_by) VALUES ({marks(5)})",
            [inspection_id, task["department_id"], task["site_check_id"], "", ""],
        )
        codes: list[str] = []
        if task["site_check_id"] is not None:
            [template] = await client.execute_query_dict(
                f"SELECT checks FROM checklist_template WHERE id = {marks(1)}",
                [task["site_check_id"]],
            )
            for check in _json(template["checks"]) or []:
                if str(check["code"]) not in codes:
                    codes.append(str(check["code"]))
        for code in codes:
            await client.execute_query(
                "INSERT INTO check_result (inspection_id, department_id, check_code, note, "
                f"measured, photo_ids, recorded_by) VALUES ({marks(7)})",
                [inspection_id, task["department_id"], code, "", "{}", "[]", ""],
            )
        after = {
            "kind": "site_check",
            "round": 1,
            "departments": [task["department_code"]],
            "due": str(task["site_check_due"]),
            "scheduledFor": None,
            "setupTask": task["id"],
            "migration": "0017",
        }
        await client.execute_query(
            "INSERT INTO audit_event (at, action, entity_type, entity_id, project_id, after) "
            f"VALUES ({marks(6)})",
            [
                now,
                "inspection.schedule",
                "inspection",
                inspection_id,
                task["project_id"],
                json.dumps(after, ensure_ascii=False, separators=(",", ":")),
            ],
        )
    return len(pending)


class Migration(migrations.Migration):
    dependencies = [("models", "0016_setup_inspections")]

    initial = False

    operations = [
        # The model's options as makemigrations reads them (state only: nothing in the database).
        ops.AlterModelOptions(
            name='Inspection',
            options={'table': 'inspection', 'app': 'models', 'constraints': [CheckConstraint(check='(project_id IS NOT NULL AND setup_id IS NULL AND setup_task_id IS NULL) OR (project_id IS NULL AND setup_id IS NOT NULL AND setup_task_id IS NOT NULL)', name='inspection_of_one_case')], 'pk_attr': 'id', 'table_description': 'A site check (现场踏勘) or one round of joint acceptance (联合验收), of a construction'},
        ),
        ops.RunPython(open_pending_site_checks, ops.RunPython.noop),
    ]
