from tortoise import migrations
from tortoise.migrations import operations as ops
from storage.enums import ObjectKind, UploadStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_supervision_and_field')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StoredObject',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='PHOTO: photo\nMATERIAL: material', enum_type=ObjectKind, max_length=16)),
                ('sha256', fields.CharField(max_length=64)),
                ('key', fields.CharField(unique=True, max_length=255)),
                ('size_bytes', fields.BigIntField()),
                ('content_type', fields.CharField(max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('taken_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('latitude', fields.FloatField(null=True)),
                ('longitude', fields.FloatField(null=True)),
                ('width', fields.IntField(null=True)),
                ('height', fields.IntField(null=True)),
                ('thumbnail_key', fields.CharField(default='', max_length=255)),
            ],
            options={'table': 'stored_object', 'app': 'models', 'unique_together': (('kind', 'sha256'),), 'pk_attr': 'id', 'table_description': 'The bytes of one file in object storage, kept once: the key follows from kind and hash.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='PHOTO: photo\nMATERIAL: material', enum_type=ObjectKind, max_length=16)),
                ('status', fields.CharEnumField(default=UploadStatus.PENDING, description='PENDING: pending\nCONFIRMED: confirmed', enum_type=UploadStatus, max_length=16)),
                ('sha256', fields.CharField(max_length=64)),
                ('size_bytes', fields.BigIntField()),
                ('declared_type', fields.CharField(max_length=128)),
                ('file_name', fields.CharField(max_length=255)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('inspection', fields.ForeignKeyField('models.Inspection', source_field='inspection_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('check_code', fields.CharField(default='', max_length=64)),
                ('material_type', fields.ForeignKeyField('models.MaterialType', source_field='material_type_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('requested_by', fields.ForeignKeyField('models.User', source_field='requested_by_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('staging_key', fields.CharField(max_length=255)),
                ('object', fields.ForeignKeyField('models.StoredObject', source_field='object_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'upload', 'app': 'models', 'pk_attr': 'id', 'table_description': "One request to deliver a file: who asked, for what, the ticket's staging key and expiry."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='MaterialVersion',
            name='object',
            field=fields.ForeignKeyField('models.StoredObject', source_field='object_id', null=True, db_constraint=True, to_field='id', related_name='material_versions', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='MaterialVersion',
            name='upload',
            field=fields.OneToOneField('models.Upload', source_field='upload_id', null=True, db_constraint=True, to_field='id', related_name='material_version', on_delete=OnDelete.RESTRICT),
        ),
    ]
