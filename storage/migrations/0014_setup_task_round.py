from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_setup_ratings')]

    initial = False

    operations = [
        ops.AddField(
            model_name='SetupTask',
            name='round',
            field=fields.IntField(default=1),
        ),
    ]
