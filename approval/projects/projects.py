"""Projects: one application form (一表制) makes one project with one code for life (一号制)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, project_scope, require_role
from approval.core.codes import (
    PROJECT_TYPE_CODES,
    InvalidCodeError,
    format_project_code,
    parse_project_code,
    validate_credit_code,
    validate_industry_code,
)
from approval.core.dates import CHINA, local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from storage.enums import ProjectType, Role, StageStatus
from storage.models import (
    CodeSequence,
    Enterprise,
    Project,
    Region,
    Stage,
    StageDefinition,
    Task,
    User,
)


@dataclass(frozen=True)
class ProjectApplication:
    """The one application form (一表制)."""

    name: str
    credit_code: str
    enterprise_name: str
    region_code: str
    project_type: ProjectType
    industry_code: str
    land_area_m2: Decimal
    floor_area_m2: Decimal
    investment_10k_yuan: Decimal
    address: str = ""
    agent_username: str | None = None
    contact_name: str = ""
    contact_phone: str = ""


def _positive(value: Decimal, field: str) -> Decimal:
    try:
        ok = value.is_finite() and value > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise invalid(f"{field} must be a positive number, got {value}", field=field)
    return value


async def create_project(*, viewer: Viewer, form: ProjectApplication, now: datetime) -> Project:
    require_role(viewer, Role.WINDOW_CLERK, Role.APPLICANT)
    name = form.name.strip()
    if not name:
        raise invalid("project name is empty; give the name on the application form", field="name")
    if len(name) > 200:
        raise invalid("project name is longer than 200 characters; shorten it", field="name")
    try:
        credit_code = validate_credit_code(form.credit_code)
        industry_code = validate_industry_code(form.industry_code)
    except InvalidCodeError as exc:
        code = (
            ErrorCode.INVALID_CREDIT_CODE if exc.field == "creditCode" else ErrorCode.INVALID_INPUT
        )
        raise DomainError(code, str(exc), field=exc.field) from None
    land = _positive(form.land_area_m2, "landArea")
    floor = _positive(form.floor_area_m2, "floorArea")
    investment = _positive(form.investment_10k_yuan, "investment")
    region = await Region.get_or_none(code=form.region_code)
    if region is None:
        raise invalid(
            f"region {form.region_code!r} is not in the catalog; pick one listed by "
            "the regions query",
            field="regionCode",
        )
    if viewer.region_ids is not None and region.id not in viewer.region_ids:
        raise DomainError(
            ErrorCode.FORBIDDEN, f"region {region.name} is outside your scope", field="regionCode"
        )
    agent = None
    if form.agent_username is not None:
        agent = await User.get_or_none(username=form.agent_username, role=Role.AGENT, active=True)
        if agent is None:
            raise invalid(
                f"{form.agent_username!r} is not an active agent (代办员)", field="agentUsername"
            )
    enterprise = await Enterprise.get_or_none(credit_code=credit_code)
    if viewer.role is Role.APPLICANT and (
        enterprise is None or enterprise.id != viewer.enterprise_id
    ):
        raise DomainError(
            ErrorCode.FORBIDDEN,
            "an applicant may only apply for its own enterprise; check the credit code",
            field="creditCode",
        )
    definitions = await StageDefinition.all().order_by("order")
    if len(definitions) != 4:
        raise DomainError(
            ErrorCode.INVALID_STATE, "the catalog is not loaded; run `onewindow load-catalog` first"
        )
    local_now = now.astimezone(CHINA)
    async with in_transaction():
        if enterprise is None:
            enterprise = await Enterprise.create(
                credit_code=credit_code,
                name=form.enterprise_name.strip() or name,
                contact_name=form.contact_name,
                contact_phone=form.contact_phone,
            )
        serial = await _next_serial(year=local_now.year, admin_code=region.admin_code)
        project_code = format_project_code(
            year=local_now.year,
            region_code=region.admin_code,
            industry_code=industry_code,
            type_code=PROJECT_TYPE_CODES[form.project_type.value],
            serial=serial,
        )
        project = await Project.create(
            code=project_code,
            name=name,
            enterprise=enterprise,
            region=region,
            project_type=form.project_type,
            industry_code=industry_code,
            land_area_m2=land,
            floor_area_m2=floor,
            investment_10k_yuan=investment,
            address=form.address.strip(),
            agent=agent,
            created_by_id=viewer.user_id,
        )
        await Stage.bulk_create(
            [
                Stage(project=project, definition=d, status=StageStatus.NOT_STARTED)
                for d in definitions
            ]
        )
        await audit.record(
            actor_id=viewer.user_id,
            action="project.create",
            entity_type="project",
            entity_id=project.id,
            project_id=project.id,
            after={
                "code": project_code,
                "name": name,
                "creditCode": credit_code,
                "region": region.code,
                "agent": form.agent_username,
            },
        )
    return project


async def _next_serial(*, year: int, admin_code: str) -> int:
    """Take the next serial for (year, region): an atomic increment inside the transaction."""
    await CodeSequence.get_or_create(year=year, admin_code=admin_code)
    await CodeSequence.filter(year=year, admin_code=admin_code).update(
        last_serial=F("last_serial") + 1
    )
    row = await CodeSequence.get(year=year, admin_code=admin_code)
    return row.last_serial


MAX_SEARCH_CHARS = 200


@dataclass(frozen=True)
class ProjectFilter:
    stage_code: str | None = None  # projects whose current stage (first not completed) is this
    stage_status: StageStatus | None = None
    region_code: str | None = None
    agent_username: str | None = None
    overdue_on: datetime | None = None  # projects with an undecided task past its deadline
    text: str | None = None


def project_query(*, viewer: Viewer, where: ProjectFilter) -> QuerySet[Project]:
    """Projects visible to the viewer matching the filter, newest first."""
    query = Project.filter(project_scope(viewer))
    if where.text and len(where.text) > MAX_SEARCH_CHARS:
        raise invalid(
            f"the search text has {len(where.text)} characters; search with at most "
            f"{MAX_SEARCH_CHARS} (a part of the project's name or code)",
            field="text",
        )
    if where.text:
        query = query.filter(Q(name__icontains=where.text) | Q(code__icontains=where.text))
    if where.region_code:
        query = query.filter(region__code=where.region_code)
    if where.agent_username:
        query = query.filter(agent__username=where.agent_username)
    if where.stage_code or where.stage_status:
        stage_q = Stage.all()
        if where.stage_code:
            stage_q = stage_q.filter(definition__code=where.stage_code)
        if where.stage_status:
            stage_q = stage_q.filter(status=where.stage_status)
        query = query.filter(id__in=Subquery(stage_q.values("project_id")))
    if where.overdue_on is not None:
        today = local_day(where.overdue_on)
        late = Task.filter(
            decided_at__isnull=True, paused_at__isnull=True, deadline__lt=today
        ).values("stage__project_id")
        query = query.filter(id__in=Subquery(late))
    return query


async def project_by_code(*, viewer: Viewer, code: str) -> Project | None:
    """The project with this national code if the viewer may see it; None when there is none.

    A malformed code is an input error that says what is wrong, not an unknown project.
    """
    try:
        canonical = str(parse_project_code(code))
    except InvalidCodeError as exc:
        hint = "copy the code from the project's record or receipt"
        raise invalid(f"{exc} {hint}", field="code") from None
    return await Project.filter(project_scope(viewer), code=canonical).first()
