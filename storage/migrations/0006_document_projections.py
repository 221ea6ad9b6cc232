from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_cache_generations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DocumentProjection',
            fields=[
                ('doc', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=128)),
                ('upto_id', fields.BigIntField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'document_projection', 'app': 'models', 'pk_attr': 'doc', 'table_description': "How far the rows GraphQL reads follow a document's log: every update with an id up to"},
            bases=['Model'],
        ),
    ]
