from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_setup_supplements')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='Rating',
            options={'table': 'rating', 'app': 'models', 'pk_attr': 'id', 'table_description': '好差评: the applicant rates a completed service from 1 to 5: a construction stage or a'},
        ),
        ops.AlterField(
            model_name='Rating',
            name='stage',
            field=fields.ForeignKeyField('models.Stage', source_field='stage_id', null=True, db_constraint=True, to_field='id', related_name='ratings', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='Rating',
            name='setup',
            field=fields.ForeignKeyField('models.CompanySetup', source_field='setup_id', null=True, db_constraint=True, to_field='id', related_name='ratings', on_delete=OnDelete.CASCADE),
        ),
    ]
