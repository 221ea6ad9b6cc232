"""setup_task_round: a setup task's earlier rounds as rows of their own (written when the
window reopens a permit after 补正), backfilled from the audit trail for the tasks reopened
before this table existed: each ``setup_task.reopen`` event is the end of one round (its
``before`` holds the decision, opinion and deadline the round ended with), the last decision
event before it says who decided and when, and the ``setup_task.request_supplement`` events
of the round say which materials were returned. Running it again adds nothing."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
import json
from datetime import date
from json import dumps, loads
from typing import Any
from storage.enums import Decision, SetupStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

DECISIONS = ("setup_task.decide", "setup_task.default_approve")


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


async def backfill_rounds(apps: Any, schema_editor: Any) -> int:
    """One setup_task_round row per reopen recorded in the audit trail and not yet kept;
    returns the rows made."""
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"

    def marks(count: int) -> str:
        return ", ".join(f"${i}" if postgres else "?" for i in range(1, count + 1))

    events = await client.execute_query_dict(
        "SELECT id, at, actor_id, action, entity_id, before, after FROM audit_event "
        "WHERE entity_type = 'setup_task' AND action IN "
        "('setup_task.reopen', 'setup_task.decide', 'setup_task.default_approve', "
        "'setup_task.request_supplement') ORDER BY id"
    )
    if not any(e["action"] == "setup_task.reopen" for e in events):
        return 0
    tasks = {row["id"] for row in await client.execute_query_dict("SELECT id FROM setup_task")}
    kept = {
        (row["task_id"], row["round"])
        for row in await client.execute_query_dict("SELECT task_id, round FROM setup_task_round")
    }
    names = {
        row["code"]: row["name"]
        for row in await client.execute_query_dict("SELECT code, name FROM material_type")
    }
    by_task: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_task.setdefault(event["entity_id"], []).append(event)
    columns = (
        "task_id, round, decision, opinion, deadline, decided_at, decided_by_id, "
        "default_approved, returned_materials, reopened_at, reopened_by_id"
    )
    made = 0
    for task_id, trail in sorted(by_task.items()):
        if task_id not in tasks:
            continue
        number, decided, returned = 0, None, []
        for event in trail:
            after = _json(event["after"])
            if event["action"] in DECISIONS:
                decided = event
            elif event["action"] == "setup_task.request_supplement":
                code = after.get("materialType")
                if code:
                    returned.append(
                        {"code": code, "name": names.get(code, code), "reason": after.get("reason", "")}
                    )
            else:  # a reopen ends the round
                number += 1
                before = _json(event["before"])
                if (task_id, number) not in kept and before.get("decision"):
                    values = [
                        task_id,
                        number,
                        before["decision"],
                        before.get("opinion") or "",
                        before["deadline"],
                        decided["at"] if decided else None,
                        decided["actor_id"] if decided else None,
                        bool(decided and decided["action"] == "setup_task.default_approve"),
                        json.dumps(returned, ensure_ascii=False, separators=(",", ":")),
                        event["at"],
                        event["actor_id"],
                    ]
                    if postgres:
                        values[4] = date.fromisoformat(values[4])
                    await client.execute_query(
                        f"INSERT INTO setup_task_round ({columns}) VALUES ({marks(len(values))})",
                        values,
                    )
                    made += 1
                decided, returned = None, []
    return made


class Migration(migrations.Migration):
    dependencies = [('models', '0014_setup_task_round')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SetupTaskRound',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.ForeignKeyField('models.SetupTask', source_field='task_id', db_constraint=True, to_field='id', related_name='rounds', on_delete=OnDelete.CASCADE)),
                ('round', fields.IntField()),
                ('decision', fields.CharEnumField(description='APPROVED: approved\nAPPROVED_WITH_CONDITIONS: approved_with_conditions\nSUPPLEMENT_REQUIRED: supplement_required\nREJECTED: rejected', enum_type=Decision, max_length=30)),
                ('opinion', fields.TextField(default='', unique=False)),
                ('deadline', fields.DateField()),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.ForeignKeyField('models.User', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='decided_setup_rounds', on_delete=OnDelete.RESTRICT)),
                ('default_approved', fields.BooleanField(default=False)),
                ('returned_materials', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reopened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reopened_by', fields.ForeignKeyField('models.User', source_field='reopened_by_id', null=True, db_constraint=True, to_field='id', related_name='reopened_setup_rounds', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'setup_task_round', 'app': 'models', 'unique_together': (('task', 'round'),), 'pk_attr': 'id', 'table_description': 'An earlier round of a setup task, kept when the task is reopened for the next one'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='CompanySetup',
            name='status',
            field=fields.CharEnumField(default=SetupStatus.IN_REVIEW, description='IN_REVIEW: in_review\nREADY: ready\nISSUED: issued\nREFUSED: refused\nSUPPLEMENT_REQUIRED: supplement_required', enum_type=SetupStatus, max_length=20),
        ),
        ops.RunPython(backfill_rounds, ops.RunPython.noop),
    ]
