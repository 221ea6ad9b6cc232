from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_objects_and_uploads')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Upload',
            name='multipart_id',
            field=fields.CharField(default='', max_length=255),
        ),
        ops.AddField(
            model_name='Upload',
            name='part_count',
            field=fields.IntField(default=0),
        ),
    ]
