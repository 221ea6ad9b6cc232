"""What is kept: the tables of OneWindow, as Tortoise models.

Catalog tables (regions, departments, stage definitions, items, material types,
checklists, the holiday table) are loaded from data; the rest is the work itself.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from storage.enums import (
    CheckOutcome,
    Conclusion,
    DayKind,
    Decision,
    DepartmentLevel,
    InspectionKind,
    InspectionStatus,
    MaterialStatus,
    MeetingStatus,
    NotificationStatus,
    ObjectKind,
    ProjectStatus,
    ProjectType,
    RegionKind,
    Role,
    SetupStatus,
    StageStatus,
    TaskStatus,
    UploadStatus,
    WarningLevel,
)

# An inspection belongs to exactly one case: a construction project, or a company setup's
# permit (the setup and its task). Kept by the database (migration 0016), not only by the code.
INSPECTION_OF_ONE_CASE = CheckConstraint(
    check=(
        "(project_id IS NOT NULL AND setup_id IS NULL AND setup_task_id IS NULL)"
        " OR (project_id IS NULL AND setup_id IS NOT NULL AND setup_task_id IS NOT NULL)"
    ),
    name="inspection_of_one_case",
)

# --- catalog ---------------------------------------------------------------------------------


class Region(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    kind = fields.CharEnumField(RegionKind, max_length=20)
    admin_code = fields.CharField(max_length=6)
    parent: fields.ForeignKeyNullableRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    parent_id: int | None
    assessments: fields.JSONField[list[str]] = fields.JSONField(
        default=list
    )  # 区域评估 covering projects in a park
    max_land_area_m2 = fields.FloatField(null=True)
    max_investment_10k_yuan = fields.FloatField(null=True)

    class Meta:
        table = "region"


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    short_name = fields.CharField(max_length=32)
    level = fields.CharEnumField(DepartmentLevel, max_length=10)
    region: fields.ForeignKeyRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="departments", on_delete=fields.RESTRICT
    )
    region_id: int

    class Meta:
        table = "department"


class StageDefinition(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    order = fields.SmallIntField(unique=True)
    time_limit_days = fields.IntField()
    lead_department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="led_stages", on_delete=fields.RESTRICT
    )
    lead_department_id: int

    class Meta:
        table = "stage_definition"


class MaterialType(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    description = fields.TextField(default="")

    class Meta:
        table = "material_type"


class ServiceItem(Model):
    """One approval item (事项) of a stage, decided by one department."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    stage: fields.ForeignKeyRelation[StageDefinition] = fields.ForeignKeyField(
        "models.StageDefinition", related_name="items", on_delete=fields.RESTRICT
    )
    stage_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="items", on_delete=fields.RESTRICT
    )
    department_id: int
    statutory_days = fields.IntField()
    promised_days = fields.IntField()
    site_check = fields.BooleanField(default=False)
    project_types: fields.JSONField[list[str]] = fields.JSONField(default=list)
    regional_assessment = fields.CharField(max_length=20, null=True)
    # 超时默认: undecided at the deadline counts as approved, unless the law excludes the item.
    default_approval = fields.BooleanField(default=True)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "service_item"


class ItemMaterial(Model):
    item: fields.ForeignKeyRelation[ServiceItem] = fields.ForeignKeyField(
        "models.ServiceItem", related_name="materials", on_delete=fields.CASCADE
    )
    item_id: int
    material_type: fields.ForeignKeyRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="item_links", on_delete=fields.RESTRICT
    )
    material_type_id: int
    core = fields.BooleanField()

    class Meta:
        table = "item_material"
        unique_together = (("item", "material_type"),)


class ChecklistTemplate(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="checklists", on_delete=fields.RESTRICT
    )
    department_id: int
    checks: fields.JSONField[list[dict[str, Any]]] = (
        fields.JSONField()
    )  # [{code, label, measured, unit}]

    class Meta:
        table = "checklist_template"


class CalendarYear(Model):
    """A year whose official holidays are known. Deadlines in other years are refused."""

    year = fields.IntField(primary_key=True)
    source = fields.CharField(max_length=32)  # "chinese-calendar" or "admin"
    loaded_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "calendar_year"


class CalendarDay(Model):
    day = fields.DateField(primary_key=True)
    kind = fields.CharEnumField(DayKind, max_length=10)
    name = fields.CharField(max_length=64)

    class Meta:
        table = "calendar_day"


# --- people ----------------------------------------------------------------------------------


class Enterprise(Model):
    id = fields.IntField(primary_key=True)
    credit_code = fields.CharField(max_length=18, unique=True)
    name = fields.CharField(max_length=128)
    contact_name = fields.CharField(max_length=64, default="")
    contact_phone = fields.CharField(max_length=32, default="")

    class Meta:
        table = "enterprise"


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=64)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharEnumField(Role, max_length=20)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="users", null=True, on_delete=fields.RESTRICT
    )
    department_id: int | None
    region: fields.ForeignKeyNullableRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="users", null=True, on_delete=fields.RESTRICT
    )
    region_id: int | None
    enterprise: fields.ForeignKeyNullableRelation[Enterprise] = fields.ForeignKeyField(
        "models.Enterprise", related_name="users", null=True, on_delete=fields.RESTRICT
    )
    enterprise_id: int | None
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class AccessToken(Model):
    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)  # sha256 hex of the bearer token
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    user_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked = fields.BooleanField(default=False)

    class Meta:
        table = "access_token"


class PageTicket(Model):
    """A short-lived ticket that opens one page (the printable notice of one project, the
    ledger) in a browser without a bearer token in the URL; stored hashed."""

    id = fields.IntField(primary_key=True)
    ticket_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="page_tickets", on_delete=fields.CASCADE
    )
    user_id: int
    path = fields.CharField(max_length=300)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "page_ticket"


class LoginThrottle(Model):
    """Failed logins of one account (``account:<username>``) or one client address
    (``address:<ip>``): the count within the window, the last failure, a lockout."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=200, unique=True)
    failures = fields.IntField(default=0)
    last_failure_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "login_throttle"


# --- the work --------------------------------------------------------------------------------


class CodeSequence(Model):
    """The next serial of the national project code, per year and region."""

    id = fields.IntField(primary_key=True)
    year = fields.IntField()
    admin_code = fields.CharField(max_length=6)
    last_serial = fields.IntField(default=0)

    class Meta:
        table = "code_sequence"
        unique_together = (("year", "admin_code"),)


class Project(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=200)
    enterprise: fields.ForeignKeyRelation[Enterprise] = fields.ForeignKeyField(
        "models.Enterprise", related_name="projects", on_delete=fields.RESTRICT
    )
    enterprise_id: int
    region: fields.ForeignKeyRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="projects", on_delete=fields.RESTRICT
    )
    region_id: int
    project_type = fields.CharEnumField(ProjectType, max_length=20)
    industry_code = fields.CharField(max_length=2)
    land_area_m2 = fields.DecimalField(max_digits=14, decimal_places=2)
    floor_area_m2 = fields.DecimalField(max_digits=14, decimal_places=2)
    investment_10k_yuan = fields.DecimalField(max_digits=14, decimal_places=2)
    address = fields.CharField(max_length=200, default="")
    agent: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="agent_projects", null=True, on_delete=fields.RESTRICT
    )
    agent_id: int | None
    status = fields.CharEnumField(ProjectStatus, max_length=20, default=ProjectStatus.ACTIVE)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="created_projects", null=True, on_delete=fields.RESTRICT
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "project"


class Stage(Model):
    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="stages", on_delete=fields.CASCADE
    )
    project_id: int
    definition: fields.ForeignKeyRelation[StageDefinition] = fields.ForeignKeyField(
        "models.StageDefinition", related_name="stages", on_delete=fields.RESTRICT
    )
    definition_id: int
    status = fields.CharEnumField(StageStatus, max_length=20, default=StageStatus.NOT_STARTED)
    outcome = fields.CharEnumField(Decision, max_length=30, null=True)
    accepted_at = fields.DatetimeField(null=True)
    accepted_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="accepted_stages", null=True, on_delete=fields.RESTRICT
    )
    accepted_by_id: int | None
    deadline = fields.DateField(null=True)
    completed_at = fields.DatetimeField(null=True)
    round = fields.IntField(default=0)  # how many times the window accepted this stage

    class Meta:
        table = "stage"
        unique_together = (("project", "definition"),)


class Task(Model):
    """One department's review of one item within an accepted stage."""

    id = fields.IntField(primary_key=True)
    stage: fields.ForeignKeyRelation[Stage] = fields.ForeignKeyField(
        "models.Stage", related_name="tasks", on_delete=fields.CASCADE
    )
    stage_id: int
    item: fields.ForeignKeyRelation[ServiceItem] = fields.ForeignKeyField(
        "models.ServiceItem", related_name="tasks", on_delete=fields.RESTRICT
    )
    item_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="tasks", on_delete=fields.RESTRICT
    )
    department_id: int
    status = fields.CharEnumField(TaskStatus, max_length=30, default=TaskStatus.PENDING)
    decision = fields.CharEnumField(Decision, max_length=30, null=True)
    opinion = fields.TextField(default="")
    round = fields.IntField()
    deadline = fields.DateField()  # moves later by the working days the clock was stopped
    paused_at = fields.DatetimeField(null=True)  # the clock is stopped (行政许可法 Art. 45)
    default_approved = fields.BooleanField(default=False)  # 超时默认, by the system
    formal_opinion_due = fields.DateField(null=True)  # the late department still owes it
    formal_opinion_at = fields.DatetimeField(null=True)
    decided_at = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="decided_tasks", null=True, on_delete=fields.RESTRICT
    )
    decided_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "task"
        unique_together = (("stage", "item", "round"),)


class SupplementRequest(Model):
    """A reviewer's request for more or corrected material (补正) on one task."""

    id = fields.IntField(primary_key=True)
    task: fields.ForeignKeyRelation[Task] = fields.ForeignKeyField(
        "models.Task", related_name="supplements", on_delete=fields.CASCADE
    )
    task_id: int
    material_type: fields.ForeignKeyNullableRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="supplements", null=True, on_delete=fields.RESTRICT
    )
    material_type_id: int | None
    reason = fields.TextField()
    requested_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="supplement_requests", null=True, on_delete=fields.RESTRICT
    )
    requested_by_id: int | None
    requested_at = fields.DatetimeField(auto_now_add=True)
    resolved_at = fields.DatetimeField(null=True)

    class Meta:
        table = "supplement_request"


class Material(Model):
    """One material type held by a project, delivered once and shared by every task."""

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="materials", on_delete=fields.CASCADE
    )
    project_id: int
    material_type: fields.ForeignKeyRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="materials", on_delete=fields.RESTRICT
    )
    material_type_id: int
    status = fields.CharEnumField(MaterialStatus, max_length=20)
    current_version = fields.IntField(default=0)
    rejection_reason = fields.TextField(default="")
    commitment_due = fields.DateField(null=True)
    commitment_signed_by = fields.CharField(max_length=64, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "material"
        unique_together = (("project", "material_type"),)


class MaterialVersion(Model):
    id = fields.IntField(primary_key=True)
    material: fields.ForeignKeyRelation[Material] = fields.ForeignKeyField(
        "models.Material", related_name="versions", on_delete=fields.CASCADE
    )
    material_id: int
    version = fields.IntField()
    file_name = fields.CharField(max_length=255)
    size_bytes = fields.BigIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    note = fields.TextField(default="")
    submitted_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="material_versions", null=True, on_delete=fields.RESTRICT
    )
    submitted_by_id: int | None
    submitted_at = fields.DatetimeField(auto_now_add=True)
    # The confirmed upload that delivered this version's file: one version, one object.
    upload: fields.OneToOneNullableRelation[Upload] = fields.OneToOneField(
        "models.Upload", related_name="material_version", null=True, on_delete=fields.RESTRICT
    )
    upload_id: str | None
    object: fields.ForeignKeyNullableRelation[StoredObject] = fields.ForeignKeyField(
        "models.StoredObject",
        related_name="material_versions",
        null=True,
        on_delete=fields.RESTRICT,
    )
    object_id: int | None

    class Meta:
        table = "material_version"
        unique_together = (("material", "version"),)


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True)
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    action = fields.CharField(max_length=64)
    entity_type = fields.CharField(max_length=32)
    entity_id = fields.IntField()
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    project_id: int | None
    before: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    after: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)

    class Meta:
        table = "audit_event"
        ordering = ("id",)


# --- electronic supervision (电子监察) --------------------------------------------------------


class TaskPause(Model):
    """A stopped clock: expert review, hearing, testing or a supplement request."""

    id = fields.IntField(primary_key=True)
    task: fields.ForeignKeyRelation[Task] = fields.ForeignKeyField(
        "models.Task", related_name="pauses", on_delete=fields.CASCADE
    )
    task_id: int
    reason = fields.CharField(max_length=32)  # expert_review | hearing | testing | supplement
    note = fields.TextField(default="")
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    working_days = fields.IntField(default=0)  # counted when the clock restarts

    class Meta:
        table = "task_pause"


class Lease(Model):
    """Which server process runs a periodic job now. The holder renews it before it expires."""

    name = fields.CharField(max_length=64, primary_key=True)
    holder = fields.CharField(max_length=128)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "lease"


class Generation(Model):
    """A counter per kind of reference data (``catalog``), raised in the transaction that
    changes that data: a server instance keeping a copy in memory compares the counter with
    the one its copy was read at, so every instance sees a change within a second."""

    name = fields.CharField(max_length=64, primary_key=True)
    value = fields.BigIntField(default=0)

    class Meta:
        table = "generation"


class SupervisionEvent(Model):
    """A warning, an overdue flag or a system action. ``key`` makes each fire exactly once."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=128, unique=True)  # e.g. "task:12:red"
    kind = fields.CharField(max_length=40)
    level = fields.CharEnumField(WarningLevel, max_length=10, null=True)
    entity_type = fields.CharField(max_length=32)
    entity_id = fields.IntField()
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="supervision_events", null=True, on_delete=fields.CASCADE
    )
    project_id: int | None
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department",
        related_name="supervision_events",
        null=True,
        on_delete=fields.RESTRICT,
    )
    department_id: int | None
    message = fields.TextField()
    at = fields.DatetimeField()

    class Meta:
        table = "supervision_event"


class Notification(Model):
    """The outbox: one templated message per event and recipient, delivered with retries."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160, unique=True)  # event key + recipient: exactly once
    moment = fields.CharField(max_length=32)  # received | midway | ready | rate | overdue ...
    recipient = fields.CharField(max_length=64)  # phone number or department code
    text = fields.TextField()
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    project_id: int | None
    status = fields.CharEnumField(
        NotificationStatus, max_length=10, default=NotificationStatus.PENDING
    )
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_error = fields.TextField(default="")
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "notification"


class Rating(Model):
    """好差评: the applicant rates a completed service from 1 to 5: a construction stage or a
    company setup (exactly one of the two is set)."""

    id = fields.IntField(primary_key=True)
    stage: fields.ForeignKeyNullableRelation[Stage] = fields.ForeignKeyField(
        "models.Stage", related_name="ratings", null=True, on_delete=fields.CASCADE
    )
    stage_id: int | None
    setup: fields.ForeignKeyNullableRelation[CompanySetup] = fields.ForeignKeyField(
        "models.CompanySetup", related_name="ratings", null=True, on_delete=fields.CASCADE
    )
    setup_id: int | None
    code = fields.CharField(max_length=16, unique=True)  # the rating code sent by SMS
    score = fields.SmallIntField(null=True)
    comment = fields.TextField(default="")
    rated_at = fields.DatetimeField(null=True)
    follow_up_due = fields.DateField(null=True)  # a bad rating opens a follow-up
    follow_up_done_at = fields.DatetimeField(null=True)
    follow_up_note = fields.TextField(default="")

    class Meta:
        table = "rating"


class ReviewMeeting(Model):
    """联审联办: one joint review meeting accepts a stage with every department at the table."""

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="meetings", on_delete=fields.CASCADE
    )
    project_id: int
    stage: fields.ForeignKeyNullableRelation[Stage] = fields.ForeignKeyField(
        "models.Stage", related_name="meetings", null=True, on_delete=fields.CASCADE
    )
    stage_id: int | None
    scheduled_for = fields.DatetimeField()
    place = fields.CharField(max_length=128, default="")
    status = fields.CharEnumField(MeetingStatus, max_length=10, default=MeetingStatus.SCHEDULED)
    held_at = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="meetings", null=True, on_delete=fields.RESTRICT
    )
    created_by_id: int | None

    class Meta:
        table = "review_meeting"


class MeetingInvitation(Model):
    id = fields.IntField(primary_key=True)
    meeting: fields.ForeignKeyRelation[ReviewMeeting] = fields.ForeignKeyField(
        "models.ReviewMeeting", related_name="invitations", on_delete=fields.CASCADE
    )
    meeting_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="invitations", on_delete=fields.RESTRICT
    )
    department_id: int
    attended = fields.BooleanField(null=True)
    agrees = fields.BooleanField(null=True)
    opinion = fields.TextField(default="")
    promised_days = fields.IntField(null=True)
    absent_default = fields.BooleanField(default=False)  # 缺席默认: recorded as agreeing
    recorded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "meeting_invitation"
        unique_together = (("meeting", "department"),)


# --- field work: inspections and the CRDT update log -----------------------------------------


class Inspection(Model):
    """A site check (现场踏勘) or one round of joint acceptance (联合验收), of a construction
    project or of a company setup's permit (exactly one of the two: a CHECK in the database)."""

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="inspections", null=True, on_delete=fields.CASCADE
    )
    project_id: int | None
    # A company setup's site check: the setup and the permit's task it checks (migration 0016).
    setup: fields.ForeignKeyNullableRelation[CompanySetup] = fields.ForeignKeyField(
        "models.CompanySetup", related_name="inspections", null=True, on_delete=fields.CASCADE
    )
    setup_id: int | None
    setup_task: fields.ForeignKeyNullableRelation[SetupTask] = fields.ForeignKeyField(
        "models.SetupTask", related_name="inspections", null=True, on_delete=fields.CASCADE
    )
    setup_task_id: int | None
    stage: fields.ForeignKeyNullableRelation[Stage] = fields.ForeignKeyField(
        "models.Stage", related_name="inspections", null=True, on_delete=fields.CASCADE
    )
    stage_id: int | None
    kind = fields.CharEnumField(InspectionKind, max_length=20)
    round = fields.IntField(default=1)
    previous: fields.ForeignKeyNullableRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="next_rounds", null=True, on_delete=fields.SET_NULL
    )
    previous_id: int | None
    status = fields.CharEnumField(
        InspectionStatus, max_length=30, default=InspectionStatus.SCHEDULED
    )
    requested_at = fields.DatetimeField()
    due = fields.DateField()
    scheduled_for = fields.DateField(null=True)
    closed_at = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="inspections_created", null=True, on_delete=fields.RESTRICT
    )
    created_by_id: int | None

    class Meta:
        table = "inspection"
        constraints = (INSPECTION_OF_ONE_CASE,)


class InspectionDepartment(Model):
    """One participating department, its checklist and its conclusion."""

    id = fields.IntField(primary_key=True)
    inspection: fields.ForeignKeyRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="departments", on_delete=fields.CASCADE
    )
    inspection_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="inspections", on_delete=fields.RESTRICT
    )
    department_id: int
    checklist: fields.ForeignKeyNullableRelation[ChecklistTemplate] = fields.ForeignKeyField(
        "models.ChecklistTemplate", related_name="uses", null=True, on_delete=fields.RESTRICT
    )
    checklist_id: int | None
    conclusion = fields.CharEnumField(Conclusion, max_length=10, null=True)
    conclusion_note = fields.TextField(default="")
    signed_by = fields.CharField(max_length=64, default="")
    signed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inspection_department"
        unique_together = (("inspection", "department"),)


class InspectionAssignment(Model):
    id = fields.IntField(primary_key=True)
    inspection: fields.ForeignKeyRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="assignments", on_delete=fields.CASCADE
    )
    inspection_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="assignments", on_delete=fields.RESTRICT
    )
    user_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="assignments", on_delete=fields.RESTRICT
    )
    department_id: int

    class Meta:
        table = "inspection_assignment"
        unique_together = (("inspection", "user"),)


class CheckResult(Model):
    """Materialised from the inspection document: GraphQL reads these rows."""

    id = fields.IntField(primary_key=True)
    inspection: fields.ForeignKeyRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="check_results", on_delete=fields.CASCADE
    )
    inspection_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="check_results", on_delete=fields.RESTRICT
    )
    department_id: int
    check_code = fields.CharField(max_length=64)
    outcome = fields.CharEnumField(CheckOutcome, max_length=20, null=True)
    note = fields.TextField(default="")
    measured: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    photo_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    recorded_by = fields.CharField(max_length=64, default="")
    recorded_at = fields.DatetimeField(null=True)
    # {"latitude", "longitude", "accuracy"}: where the tablet was when the check was recorded
    position: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)

    class Meta:
        table = "check_result"
        unique_together = (("inspection", "department", "check_code"),)


class Rectification(Model):
    """An item to put right before re-inspection, keyed by the UUID the field gave it."""

    id = fields.IntField(primary_key=True)
    uuid = fields.CharField(max_length=36, unique=True)
    inspection: fields.ForeignKeyRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="rectifications", on_delete=fields.CASCADE
    )
    inspection_id: int
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="rectifications", null=True, on_delete=fields.RESTRICT
    )
    department_id: int | None
    description = fields.TextField()
    due = fields.DateField(null=True)
    done = fields.BooleanField(default=False)

    class Meta:
        table = "rectification"


class AgencyEntry(Model):
    """An agent's visit, call or to-do, materialised from the agency document."""

    id = fields.IntField(primary_key=True)
    uuid = fields.CharField(max_length=36, unique=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="agency_entries", on_delete=fields.CASCADE
    )
    project_id: int
    kind = fields.CharField(max_length=16)  # visit | call | todo
    text = fields.TextField(default="")
    at = fields.DatetimeField(null=True)
    due = fields.DateField(null=True)
    done = fields.BooleanField(default=False)

    class Meta:
        table = "agency_entry"


class DocumentUpdate(Model):
    """The durable CRDT update log: every accepted update, in arrival order, per document."""

    id = fields.BigIntField(primary_key=True)
    doc = fields.CharField(max_length=128, db_index=True)
    data = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "document_update"


class DocumentSnapshot(Model):
    """A compacted state of a document covering every update up to ``upto_id``."""

    doc = fields.CharField(max_length=128, primary_key=True)
    data = fields.BinaryField()
    upto_id = fields.BigIntField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "document_snapshot"


class DocumentProjection(Model):
    """How far the rows GraphQL reads follow a document's log: every update with an id up to
    ``upto_id`` is materialised (a document whose log is further on is materialised again when
    its room loads and at start-up)."""

    doc = fields.CharField(max_length=128, primary_key=True)
    upto_id = fields.BigIntField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "document_projection"


class StoredObject(Model):
    """The bytes of one file in object storage, kept once: the key follows from kind and hash.

    Rows exist only for confirmed bytes (size, type sniffed from the bytes and hash checked).
    A photo also keeps what its EXIF says and the key of its thumbnail.
    """

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(ObjectKind, max_length=16)
    sha256 = fields.CharField(max_length=64)
    key = fields.CharField(max_length=255, unique=True)
    size_bytes = fields.BigIntField()
    content_type = fields.CharField(max_length=128)
    created_at = fields.DatetimeField(auto_now_add=True)
    taken_at = fields.DatetimeField(null=True)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    thumbnail_key = fields.CharField(max_length=255, default="")

    class Meta:
        table = "stored_object"
        unique_together = (("kind", "sha256"),)


class Upload(Model):
    """One request to deliver a file: who asked, for what, the ticket's staging key and expiry.

    The target is a check of an inspection (photos) or a material type of a project
    (materials). Confirming checks the staged bytes and links the stored object.
    """

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharEnumField(ObjectKind, max_length=16)
    status = fields.CharEnumField(UploadStatus, max_length=16, default=UploadStatus.PENDING)
    sha256 = fields.CharField(max_length=64)
    size_bytes = fields.BigIntField()
    declared_type = fields.CharField(max_length=128)
    file_name = fields.CharField(max_length=255)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="uploads", on_delete=fields.CASCADE
    )
    project_id: int
    inspection: fields.ForeignKeyNullableRelation[Inspection] = fields.ForeignKeyField(
        "models.Inspection", related_name="uploads", null=True, on_delete=fields.CASCADE
    )
    inspection_id: int | None
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="uploads", null=True, on_delete=fields.RESTRICT
    )
    department_id: int | None
    check_code = fields.CharField(max_length=64, default="")
    material_type: fields.ForeignKeyNullableRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="uploads", null=True, on_delete=fields.RESTRICT
    )
    material_type_id: int | None
    requested_by: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="uploads", on_delete=fields.RESTRICT
    )
    requested_by_id: int
    staging_key = fields.CharField(max_length=255)
    # A large file on an S3 store comes in parts: the store's id of that upload and how many.
    multipart_id = fields.CharField(max_length=255, default="")
    part_count = fields.IntField(default=0)
    object: fields.ForeignKeyNullableRelation[StoredObject] = fields.ForeignKeyField(
        "models.StoredObject", related_name="uploads", null=True, on_delete=fields.RESTRICT
    )
    object_id: int | None
    requested_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "upload"


# --- company setup (企业设立 1+4+X) ------------------------------------------------------------


class SetupRules(Model):
    """The company catalog's one row of rules: the window and the working-day limits."""

    id = fields.IntField(primary_key=True)
    window: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="setup_windows", on_delete=fields.RESTRICT
    )
    window_id: int
    core_days = fields.IntField()  # 一照三证 within these working days
    x_days = fields.IntField()  # the X permits
    site_check_days = fields.IntField()  # a site check after its request

    class Meta:
        table = "setup_rules"


class SetupFlowGroup(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    order = fields.SmallIntField()

    class Meta:
        table = "setup_flow_group"


class SetupFlow(Model):
    """One of the flows (流程图) of company setup: the X permits beyond the core ones."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    group: fields.ForeignKeyRelation[SetupFlowGroup] = fields.ForeignKeyField(
        "models.SetupFlowGroup", related_name="flows", on_delete=fields.RESTRICT
    )
    group_id: int
    order = fields.SmallIntField()
    starts_project = fields.BooleanField(default=False)  # also starts a construction project
    active = fields.BooleanField(default=True)

    class Meta:
        table = "setup_flow"


class SetupPermit(Model):
    """A licence or permit one department issues at setup (``core``: one of the 4)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="setup_permits", on_delete=fields.RESTRICT
    )
    department_id: int
    core = fields.BooleanField()
    site_check: fields.ForeignKeyNullableRelation[ChecklistTemplate] = fields.ForeignKeyField(
        "models.ChecklistTemplate",
        related_name="setup_permits",
        null=True,
        on_delete=fields.RESTRICT,
    )
    site_check_id: int | None
    default_approval = fields.BooleanField(default=True)  # 超时默认 unless the law excludes it
    active = fields.BooleanField(default=True)

    class Meta:
        table = "setup_permit"


class SetupFlowPermit(Model):
    flow: fields.ForeignKeyRelation[SetupFlow] = fields.ForeignKeyField(
        "models.SetupFlow", related_name="permit_links", on_delete=fields.CASCADE
    )
    flow_id: int
    permit: fields.ForeignKeyRelation[SetupPermit] = fields.ForeignKeyField(
        "models.SetupPermit", related_name="flow_links", on_delete=fields.RESTRICT
    )
    permit_id: int

    class Meta:
        table = "setup_flow_permit"
        unique_together = (("flow", "permit"),)


class SetupPermitMaterial(Model):
    permit: fields.ForeignKeyRelation[SetupPermit] = fields.ForeignKeyField(
        "models.SetupPermit", related_name="materials", on_delete=fields.CASCADE
    )
    permit_id: int
    material_type: fields.ForeignKeyRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="setup_permit_links", on_delete=fields.RESTRICT
    )
    material_type_id: int
    core = fields.BooleanField()

    class Meta:
        table = "setup_permit_material"
        unique_together = (("permit", "material_type"),)


class BusinessType(Model):
    """What the applicant says they open (饭店, 药店, 超市, 网店 ...): it picks one flow."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    flow: fields.ForeignKeyRelation[SetupFlow] = fields.ForeignKeyField(
        "models.SetupFlow", related_name="business_types", on_delete=fields.RESTRICT
    )
    flow_id: int
    active = fields.BooleanField(default=True)

    class Meta:
        table = "business_type"


class CompanySetup(Model):
    """One company setup application, accepted once at the company window (一窗受理)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)  # QS-2026-000001: the receipt number
    company_name = fields.CharField(max_length=128)
    business_type: fields.ForeignKeyRelation[BusinessType] = fields.ForeignKeyField(
        "models.BusinessType", related_name="setups", on_delete=fields.RESTRICT
    )
    business_type_id: int
    flow: fields.ForeignKeyRelation[SetupFlow] = fields.ForeignKeyField(
        "models.SetupFlow", related_name="setups", on_delete=fields.RESTRICT
    )
    flow_id: int
    region: fields.ForeignKeyRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="setups", on_delete=fields.RESTRICT
    )
    region_id: int
    contact_name = fields.CharField(max_length=64)
    contact_phone = fields.CharField(max_length=32)
    status = fields.CharEnumField(SetupStatus, max_length=20, default=SetupStatus.IN_REVIEW)
    outcome = fields.CharEnumField(Decision, max_length=30, null=True)
    accepted_at = fields.DatetimeField()
    accepted_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="accepted_setups", null=True, on_delete=fields.RESTRICT
    )
    accepted_by_id: int | None
    core_deadline = fields.DateField()
    x_deadline = fields.DateField()
    completed_at = fields.DatetimeField(null=True)  # the last department decided
    issued_at = fields.DatetimeField(null=True)  # 统一发证
    issued_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="issued_setups", null=True, on_delete=fields.RESTRICT
    )
    issued_by_id: int | None
    # A foreign-capital setup that also starts a construction project links the two cases.
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="setups", null=True, on_delete=fields.SET_NULL
    )
    project_id: int | None

    class Meta:
        table = "company_setup"


class SetupTask(Model):
    """One department's review of one permit of a setup, in parallel with the others."""

    id = fields.IntField(primary_key=True)
    setup: fields.ForeignKeyRelation[CompanySetup] = fields.ForeignKeyField(
        "models.CompanySetup", related_name="tasks", on_delete=fields.CASCADE
    )
    setup_id: int
    permit: fields.ForeignKeyRelation[SetupPermit] = fields.ForeignKeyField(
        "models.SetupPermit", related_name="tasks", on_delete=fields.RESTRICT
    )
    permit_id: int
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="setup_tasks", on_delete=fields.RESTRICT
    )
    department_id: int
    core = fields.BooleanField()
    status = fields.CharEnumField(TaskStatus, max_length=30, default=TaskStatus.PENDING)
    decision = fields.CharEnumField(Decision, max_length=30, null=True)
    opinion = fields.TextField(default="")
    deadline = fields.DateField()  # moves later by the working days the clock was stopped
    paused_at = fields.DatetimeField(null=True)  # the clock is stopped (行政许可法 Art. 45)
    pause_reason = fields.CharField(max_length=32, default="")
    default_approved = fields.BooleanField(default=False)  # 超时默认, by the system
    # 1, then one more each time the window re-accepts the setup after a 需补正 and this
    # permit's department reviews again (each earlier round is a SetupTaskRound).
    round = fields.IntField(default=1)
    site_check_requested_at = fields.DatetimeField(null=True)
    site_check_due = fields.DateField(null=True)  # within the rules' site-check working days
    site_check_done_at = fields.DatetimeField(null=True)
    decided_at = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="decided_setup_tasks", null=True, on_delete=fields.RESTRICT
    )
    decided_by_id: int | None

    class Meta:
        table = "setup_task"
        unique_together = (("setup", "permit"),)


class SetupTaskRound(Model):
    """An earlier round of a setup task, kept when the task is reopened for the next one
    (补正后重新受理): the decision that ended it, who made it and when, the deadline it had,
    the materials its department returned, and when the window reopened it."""

    id = fields.IntField(primary_key=True)
    task: fields.ForeignKeyRelation[SetupTask] = fields.ForeignKeyField(
        "models.SetupTask", related_name="rounds", on_delete=fields.CASCADE
    )
    task_id: int
    round = fields.IntField()
    decision = fields.CharEnumField(Decision, max_length=30)
    opinion = fields.TextField(default="")
    deadline = fields.DateField()
    decided_at = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="decided_setup_rounds", null=True, on_delete=fields.RESTRICT
    )
    decided_by_id: int | None
    default_approved = fields.BooleanField(default=False)
    # [{"code", "name", "reason"}] of the 补正 requests of the round that named a material,
    # as they stood when it ended (names as the catalog had them then).
    returned_materials: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    reopened_at = fields.DatetimeField()
    reopened_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reopened_setup_rounds", null=True, on_delete=fields.RESTRICT
    )
    reopened_by_id: int | None

    class Meta:
        table = "setup_task_round"
        unique_together = (("task", "round"),)


class SetupSupplementRequest(Model):
    """A department's request for more or corrected material (补正) on one setup task."""

    id = fields.IntField(primary_key=True)
    task: fields.ForeignKeyRelation[SetupTask] = fields.ForeignKeyField(
        "models.SetupTask", related_name="supplements", on_delete=fields.CASCADE
    )
    task_id: int
    material_type: fields.ForeignKeyNullableRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType",
        related_name="setup_supplements",
        null=True,
        on_delete=fields.RESTRICT,
    )
    material_type_id: int | None
    reason = fields.TextField()
    requested_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User",
        related_name="setup_supplement_requests",
        null=True,
        on_delete=fields.RESTRICT,
    )
    requested_by_id: int | None
    requested_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)  # the material arrived or the reviewer resumed

    class Meta:
        table = "setup_supplement_request"


class SetupMaterial(Model):
    """A material of a setup: collected once at the window and shared by its departments."""

    id = fields.IntField(primary_key=True)
    setup: fields.ForeignKeyRelation[CompanySetup] = fields.ForeignKeyField(
        "models.CompanySetup", related_name="materials", on_delete=fields.CASCADE
    )
    setup_id: int
    material_type: fields.ForeignKeyRelation[MaterialType] = fields.ForeignKeyField(
        "models.MaterialType", related_name="setup_materials", on_delete=fields.RESTRICT
    )
    material_type_id: int
    status = fields.CharEnumField(MaterialStatus, max_length=20)
    commitment_due = fields.DateField(null=True)  # 容缺: missing, promised by this date
    commitment_signed_by = fields.CharField(max_length=64, default="")

    class Meta:
        table = "setup_material"
        unique_together = (("setup", "material_type"),)
