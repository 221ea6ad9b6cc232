from tortoise import migrations
from tortoise.migrations import operations as ops
from storage.enums import Decision, MaterialStatus, SetupStatus, TaskStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_document_projections')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SetupFlowGroup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=64)),
                ('order', fields.SmallIntField()),
            ],
            options={'table': 'setup_flow_group', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupFlow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('group', fields.ForeignKeyField('models.SetupFlowGroup', source_field='group_id', db_constraint=True, to_field='id', related_name='flows', on_delete=OnDelete.RESTRICT)),
                ('order', fields.SmallIntField()),
                ('starts_project', fields.BooleanField(default=False)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'setup_flow', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One of the flows (流程图) of company setup: the X permits beyond the core ones.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BusinessType',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=64)),
                ('flow', fields.ForeignKeyField('models.SetupFlow', source_field='flow_id', db_constraint=True, to_field='id', related_name='business_types', on_delete=OnDelete.RESTRICT)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'business_type', 'app': 'models', 'pk_attr': 'id', 'table_description': 'What the applicant says they open (饭店, 药店, 超市, 网店 ...): it picks one flow.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CompanySetup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('company_name', fields.CharField(max_length=128)),
                ('business_type', fields.ForeignKeyField('models.BusinessType', source_field='business_type_id', db_constraint=True, to_field='id', related_name='setups', on_delete=OnDelete.RESTRICT)),
                ('flow', fields.ForeignKeyField('models.SetupFlow', source_field='flow_id', db_constraint=True, to_field='id', related_name='setups', on_delete=OnDelete.RESTRICT)),
                ('region', fields.ForeignKeyField('models.Region', source_field='region_id', db_constraint=True, to_field='id', related_name='setups', on_delete=OnDelete.RESTRICT)),
                ('contact_name', fields.CharField(max_length=64)),
                ('contact_phone', fields.CharField(max_length=32)),
                ('status', fields.CharEnumField(default=SetupStatus.IN_REVIEW, description='IN_REVIEW: in_review\nREADY: ready\nISSUED: issued\nREFUSED: refused', enum_type=SetupStatus, max_length=20)),
                ('outcome', fields.CharEnumField(null=True, description='APPROVED: approved\nAPPROVED_WITH_CONDITIONS: approved_with_conditions\nSUPPLEMENT_REQUIRED: supplement_required\nREJECTED: rejected', enum_type=Decision, max_length=30)),
                ('accepted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('accepted_by', fields.ForeignKeyField('models.User', source_field='accepted_by_id', null=True, db_constraint=True, to_field='id', related_name='accepted_setups', on_delete=OnDelete.RESTRICT)),
                ('core_deadline', fields.DateField()),
                ('x_deadline', fields.DateField()),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('issued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('issued_by', fields.ForeignKeyField('models.User', source_field='issued_by_id', null=True, db_constraint=True, to_field='id', related_name='issued_setups', on_delete=OnDelete.RESTRICT)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', null=True, db_constraint=True, to_field='id', related_name='setups', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'company_setup', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One company setup application, accepted once at the company window (一窗受理).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupMaterial',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('setup', fields.ForeignKeyField('models.CompanySetup', source_field='setup_id', db_constraint=True, to_field='id', related_name='materials', on_delete=OnDelete.CASCADE)),
                ('material_type', fields.ForeignKeyField('models.MaterialType', source_field='material_type_id', db_constraint=True, to_field='id', related_name='setup_materials', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='SUBMITTED: submitted\nACCEPTED: accepted\nREJECTED: rejected\nCOMMITTED: committed', enum_type=MaterialStatus, max_length=20)),
                ('commitment_due', fields.DateField(null=True)),
                ('commitment_signed_by', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'setup_material', 'app': 'models', 'unique_together': (('setup', 'material_type'),), 'pk_attr': 'id', 'table_description': 'A material of a setup: collected once at the window and shared by its departments.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupPermit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='setup_permits', on_delete=OnDelete.RESTRICT)),
                ('core', fields.BooleanField()),
                ('site_check', fields.ForeignKeyField('models.ChecklistTemplate', source_field='site_check_id', null=True, db_constraint=True, to_field='id', related_name='setup_permits', on_delete=OnDelete.RESTRICT)),
                ('default_approval', fields.BooleanField(default=True)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'setup_permit', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A licence or permit one department issues at setup (``core``: one of the 4).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupFlowPermit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('flow', fields.ForeignKeyField('models.SetupFlow', source_field='flow_id', db_constraint=True, to_field='id', related_name='permit_links', on_delete=OnDelete.CASCADE)),
                ('permit', fields.ForeignKeyField('models.SetupPermit', source_field='permit_id', db_constraint=True, to_field='id', related_name='flow_links', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'setup_flow_permit', 'app': 'models', 'unique_together': (('flow', 'permit'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupPermitMaterial',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('permit', fields.ForeignKeyField('models.SetupPermit', source_field='permit_id', db_constraint=True, to_field='id', related_name='materials', on_delete=OnDelete.CASCADE)),
                ('material_type', fields.ForeignKeyField('models.MaterialType', source_field='material_type_id', db_constraint=True, to_field='id', related_name='setup_permit_links', on_delete=OnDelete.RESTRICT)),
                ('core', fields.BooleanField()),
            ],
            options={'table': 'setup_permit_material', 'app': 'models', 'unique_together': (('permit', 'material_type'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupRules',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('window', fields.ForeignKeyField('models.Department', source_field='window_id', db_constraint=True, to_field='id', related_name='setup_windows', on_delete=OnDelete.RESTRICT)),
                ('core_days', fields.IntField()),
                ('x_days', fields.IntField()),
                ('site_check_days', fields.IntField()),
            ],
            options={'table': 'setup_rules', 'app': 'models', 'pk_attr': 'id', 'table_description': "The company catalog's one row of rules: the window and the working-day limits."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SetupTask',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('setup', fields.ForeignKeyField('models.CompanySetup', source_field='setup_id', db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.CASCADE)),
                ('permit', fields.ForeignKeyField('models.SetupPermit', source_field='permit_id', db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='setup_tasks', on_delete=OnDelete.RESTRICT)),
                ('core', fields.BooleanField()),
                ('status', fields.CharEnumField(default=TaskStatus.PENDING, description='PENDING: pending\nSUPPLEMENT_REQUESTED: supplement_requested\nDECIDED: decided', enum_type=TaskStatus, max_length=30)),
                ('decision', fields.CharEnumField(null=True, description='APPROVED: approved\nAPPROVED_WITH_CONDITIONS: approved_with_conditions\nSUPPLEMENT_REQUIRED: supplement_required\nREJECTED: rejected', enum_type=Decision, max_length=30)),
                ('opinion', fields.TextField(default='', unique=False)),
                ('deadline', fields.DateField()),
                ('default_approved', fields.BooleanField(default=False)),
                ('site_check_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('site_check_due', fields.DateField(null=True)),
                ('site_check_done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.ForeignKeyField('models.User', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='decided_setup_tasks', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'setup_task', 'app': 'models', 'unique_together': (('setup', 'permit'),), 'pk_attr': 'id', 'table_description': "One department's review of one permit of a setup, in parallel with the others."},
            bases=['Model'],
        ),
    ]
