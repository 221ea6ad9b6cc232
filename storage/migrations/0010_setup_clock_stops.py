from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_page_tickets')]

    initial = False

    operations = [
        ops.AddField(
            model_name='SetupTask',
            name='pause_reason',
            field=fields.CharField(default='', max_length=32),
        ),
        ops.AddField(
            model_name='SetupTask',
            name='paused_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
