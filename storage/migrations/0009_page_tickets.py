from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_login_throttle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PageTicket',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='page_tickets', on_delete=OnDelete.CASCADE)),
                ('path', fields.CharField(max_length=300)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'page_ticket', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A short-lived ticket that opens one page (the printable notice of one project, the'},
            bases=['Model'],
        ),
    ]
