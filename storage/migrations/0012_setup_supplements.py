from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_check_position')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SetupSupplementRequest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.ForeignKeyField('models.SetupTask', source_field='task_id', db_constraint=True, to_field='id', related_name='supplements', on_delete=OnDelete.CASCADE)),
                ('material_type', fields.ForeignKeyField('models.MaterialType', source_field='material_type_id', null=True, db_constraint=True, to_field='id', related_name='setup_supplements', on_delete=OnDelete.RESTRICT)),
                ('reason', fields.TextField(unique=False)),
                ('requested_by', fields.ForeignKeyField('models.User', source_field='requested_by_id', null=True, db_constraint=True, to_field='id', related_name='setup_supplement_requests', on_delete=OnDelete.RESTRICT)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'setup_supplement_request', 'app': 'models', 'pk_attr': 'id', 'table_description': "A department's request for more or corrected material (补正) on one setup task."},
            bases=['Model'],
        ),
    ]
