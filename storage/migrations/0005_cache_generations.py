from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_uploads_in_parts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Generation',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('value', fields.BigIntField(default=0)),
            ],
            options={'table': 'generation', 'app': 'models', 'pk_attr': 'name', 'table_description': 'A counter per kind of reference data (``catalog``), raised in the transaction that'},
            bases=['Model'],
        ),
    ]
