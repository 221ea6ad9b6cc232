from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_setup_clock_stops')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CheckResult',
            name='position',
            field=fields.JSONField(null=True),
        ),
    ]
