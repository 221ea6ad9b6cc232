"""Company setups' site checks on the inspection documents: inspection.project_id nullable,
inspection.setup_id and setup_task_id added, and a CHECK that exactly one case is named.

SQLite cannot alter a column or add a CHECK in place: Tortoise copies the table into a new one
and drops the old. With foreign keys enforced, that DROP would cascade into the inspections'
departments, assignments and check results, so on SQLite the copy runs with foreign keys off
(PRAGMA foreign_keys is ignored inside a transaction: the migration is not atomic by itself)
inside one transaction of its own, checked by PRAGMA foreign_key_check before it commits.
PostgreSQL alters the table in place, in one transaction. Existing rows are kept as they are.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint
from tortoise.transactions import in_transaction


class InOneTransaction(ops.TortoiseOperation):
    """Runs ``operations`` in one transaction; on SQLite with foreign keys off around it."""

    def __init__(self, *operations: ops.TortoiseOperation) -> None:
        self.operations = operations

    def describe(self) -> str:
        return "; ".join(op.describe() for op in self.operations)

    def state_forward(self, app_label: str, state: Any) -> None:
        for operation in self.operations:
            operation.state_forward(app_label, state)

    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if not state_editor:
            return
        client = state_editor.client
        sqlite = client.capabilities.dialect == "sqlite"
        if sqlite:
            await client.execute_script("PRAGMA foreign_keys = OFF")
        try:
            async with in_transaction(client.connection_name) as transaction:
                state_editor.client = transaction
                state = old_state.clone()
                for operation in self.operations:
                    before = state.clone()
                    operation.state_forward(app_label, state)
                    await operation.database_forward(app_label, before, state, state_editor)
                if sqlite:
                    _, broken = await transaction.execute_query("PRAGMA foreign_key_check")
                    if broken:
                        raise RuntimeError(f"foreign keys broken by the copy: {broken!r}")
        finally:
            state_editor.client = client
            if sqlite:
                await client.execute_script("PRAGMA foreign_keys = ON")


class Migration(migrations.Migration):
    dependencies = [('models', '0015_setup_task_rounds')]

    initial = False
    atomic = False  # InOneTransaction holds the transaction (see the module's docstring)

    operations = [
        InOneTransaction(
            ops.AlterField(
                model_name='Inspection',
                name='project',
                field=fields.ForeignKeyField('models.Project', source_field='project_id', null=True, db_constraint=True, to_field='id', related_name='inspections', on_delete=OnDelete.CASCADE),
            ),
            ops.AddField(
                model_name='Inspection',
                name='setup',
                field=fields.ForeignKeyField('models.CompanySetup', source_field='setup_id', null=True, db_constraint=True, to_field='id', related_name='inspections', on_delete=OnDelete.CASCADE),
            ),
            ops.AddField(
                model_name='Inspection',
                name='setup_task',
                field=fields.ForeignKeyField('models.SetupTask', source_field='setup_task_id', null=True, db_constraint=True, to_field='id', related_name='inspections', on_delete=OnDelete.CASCADE),
            ),
            ops.AddConstraint(
                model_name='Inspection',
                constraint=CheckConstraint(
                    check=(
                        "(project_id IS NOT NULL AND setup_id IS NULL AND setup_task_id IS NULL)"
                        " OR (project_id IS NULL AND setup_id IS NOT NULL AND setup_task_id IS NOT NULL)"
                    ),
                    name='inspection_of_one_case',
                ),
            ),
        ),
    ]
