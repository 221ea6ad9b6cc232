"""一窗受理 at the company-setup window: a business type picks its flow, the materials are
collected once (容缺 where allowed), and every department gets its task at the same moment.

The flow of a business type (量体裁衣) is the core permits every setup gets (一照三证, within
the rules' core working days) and the X permits of its flow (within the X working days); a
permit with a site check gets its check's due date, the site-check working days after
acceptance, and its inspection (the department's checklist, recorded offline in the field app)
the moment the application is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from tortoise.transactions import in_transaction

from approval.company import review
from approval.company.access import visible_setup
from approval.core import audit
from approval.core.access import Viewer, require_role, visible_project
from approval.core.codes import InvalidCodeError, parse_project_code
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.labels import label
from approval.core.workdays import CalendarUnknownError
from approval.fieldwork.inspections import open_setup_site_check
from approval.review import rules
from approval.review.engine import calendar_error
from storage.enums import MaterialStatus, Role, SetupStatus
from storage.models import (
    BusinessType,
    CompanySetup,
    MaterialType,
    Project,
    Region,
    SetupFlow,
    SetupFlowPermit,
    SetupMaterial,
    SetupPermit,
    SetupPermitMaterial,
    SetupRules,
    SetupTask,
)

NAME_MAX = 128
_PHONE_DIGITS = (7, 20)


@dataclass(frozen=True)
class PermitNeed:
    """One permit of a flow: its department, whether it is core, its materials."""

    permit: SetupPermit
    materials: list[tuple[MaterialType, bool]]  # (type, core)


@dataclass(frozen=True)
class FlowPlan:
    """What a business type needs: its flow, its permits (core first), the merged materials."""

    business_type: BusinessType
    flow: SetupFlow
    rules: SetupRules
    permits: list[PermitNeed]

    def material_types(self) -> dict[str, tuple[MaterialType, bool]]:
        """Every material type once, core if any permit needs it as core (一套材料)."""
        merged: dict[str, tuple[MaterialType, bool]] = {}
        for need in self.permits:
            for material_type, core in need.materials:
                was = merged.get(material_type.code)
                merged[material_type.code] = (material_type, core or bool(was and was[1]))
        return merged


@dataclass(frozen=True)
class SetupCommitment:
    """容缺: the applicant's signed promise to deliver a non-core material by a date."""

    material_type_code: str
    due: date
    signed_by: str


@dataclass(frozen=True)
class SetupApplication:
    company_name: str
    business_type: str
    region_code: str
    contact_name: str
    contact_phone: str
    materials: list[str]  # the material type codes handed in at the window
    commitments: list[SetupCommitment] = field(default_factory=list)
    project_code: str | None = None  # a foreign-capital setup's construction project


async def loaded_rules() -> SetupRules:
    """The company catalog's time limits, INVALID_STATE while the catalog is not loaded."""
    setup_rules = await SetupRules.get_or_none(id=1)
    if setup_rules is None:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            "the company-setup catalog is not loaded; run onewindow load-company-catalog",
        )
    return setup_rules


async def flow_plan(*, business_type: str) -> FlowPlan:
    """The one flow of a business type with its permits and their materials."""
    row = await BusinessType.get_or_none(code=business_type.strip(), active=True).select_related(
        "flow__group"
    )
    if row is None or not row.flow.active:
        raise invalid(
            f"business type {business_type!r} is not in the company catalog; pick one listed "
            "by the setupFlowGroups query",
            field="businessType",
        )
    setup_rules = await loaded_rules()
    x_ids = await SetupFlowPermit.filter(flow_id=row.flow_id).values_list("permit_id", flat=True)
    permits = await SetupPermit.filter(active=True).select_related("department", "site_check")
    chosen = [p for p in permits if p.core or p.id in set(x_ids)]
    chosen.sort(key=lambda p: (not p.core, p.id))
    links = await SetupPermitMaterial.filter(permit_id__in=[p.id for p in chosen]).select_related(
        "material_type"
    )
    needs = [
        PermitNeed(
            permit=p,
            materials=[
                (link.material_type, link.core)
                for link in sorted(links, key=lambda link: link.material_type_id)
                if link.permit_id == p.id
            ],
        )
        for p in chosen
    ]
    return FlowPlan(business_type=row, flow=row.flow, rules=setup_rules, permits=needs)


def _checked_phone(phone: str) -> str:
    text = phone.strip()
    digits = text.removeprefix("+").replace("-", "").replace(" ", "")
    low, high = _PHONE_DIGITS
    if not digits.isdigit() or not low <= len(digits) <= high:
        raise invalid(
            f"contact phone {phone!r} is not a phone number; the 领件通知 SMS goes to it, "
            "write digits only, e.g. 13800000000",
            field="contactPhone",
        )
    return text


async def _linked_project(viewer: Viewer, flow: SetupFlow, code: str | None) -> Project | None:
    if code is None or not code.strip():
        return None
    if not flow.starts_project:
        raise invalid(
            f"flow {flow.name} does not start a construction project; only a foreign-capital "
            "industrial setup links one, leave projectCode empty",
            field="projectCode",
        )
    try:
        canonical = str(parse_project_code(code))
    except InvalidCodeError as exc:
        raise invalid(str(exc), field="projectCode") from None
    project = await Project.get_or_none(code=canonical)
    if project is None:
        raise invalid(
            f"no construction project has code {canonical}; create it first (createProject)",
            field="projectCode",
        )
    return await visible_project(viewer, project.id)


async def accept_setup(*, viewer: Viewer, form: SetupApplication, now: datetime) -> CompanySetup:
    """The window accepts a setup once; every permit of its flow becomes a task at once."""
    require_role(viewer, Role.WINDOW_CLERK)
    name = form.company_name.strip()
    if not name or len(name) > NAME_MAX:
        raise invalid(
            f"the company name must be 1 to {NAME_MAX} characters; write the approved name "
            "(名称预先核准)",
            field="companyName",
        )
    if not form.contact_name.strip():
        raise invalid("name the applicant's contact person", field="contactName")
    phone = _checked_phone(form.contact_phone)
    plan = await flow_plan(business_type=form.business_type)
    region = await Region.get_or_none(code=form.region_code)
    if region is None:
        raise invalid(f"region {form.region_code!r} is not in the catalog", field="regionCode")
    if viewer.region_ids is not None and region.id not in viewer.region_ids:
        raise DomainError(
            ErrorCode.FORBIDDEN, f"region {region.name} is outside your scope", field="regionCode"
        )
    project = await _linked_project(viewer, plan.flow, form.project_code)
    today = local_day(now)
    limits = {
        "core": plan.rules.core_days,
        "x": plan.rules.x_days,
        "site_check": plan.rules.site_check_days,
    }
    due = await rules.deadlines(today=today, working_days=limits, field="businessType")
    needed = plan.material_types()
    handed = set(form.materials)
    unknown = sorted(handed - set(needed))
    if unknown:
        raise invalid(
            f"materials {', '.join(unknown)} are not needed by flow {plan.flow.name}; hand in "
            "only what its permits list (the setupFlow query)",
            field="materials",
        )
    promised = {c.material_type_code: c for c in form.commitments}
    for code, commitment in promised.items():
        entry = needed.get(code)
        if entry is None or entry[1] or code in handed:
            raise invalid(
                f"a commitment (容缺) is only for a missing non-core material of this flow; "
                f"{code!r} is not one",
                field="commitments",
            )
        latest = min(
            due["core"] if need.permit.core else due["x"]
            for need in plan.permits
            if any(t.code == code for t, _ in need.materials)
        )
        if not today < commitment.due <= latest:
            raise invalid(
                f"the commitment for {code!r} is due {commitment.due}; it must fall after today "
                f"and no later than {latest}, the deadline of the permits that need it",
                field="commitments",
            )
        if not commitment.signed_by.strip():
            raise invalid(f"the commitment for {code!r} has no signatory", field="commitments")
    missing_core = [t for code, (t, core) in needed.items() if core and code not in handed]
    if missing_core:
        raise DomainError(
            ErrorCode.MISSING_CORE_MATERIALS,
            "core materials are missing, the setup cannot be accepted: "
            + "、".join(f"{t.name}({t.code})" for t in missing_core)
            + "; hand them in first",
            field="materials",
        )
    uncommitted = [
        t for code, (t, _) in needed.items() if code not in handed and code not in promised
    ]
    if uncommitted:
        raise DomainError(
            ErrorCode.MISSING_CORE_MATERIALS,
            "non-core materials are missing without a signed commitment (容缺): "
            + "、".join(f"{t.name}({t.code})" for t in uncommitted)
            + "; hand them in or add a commitment for each",
            field="commitments",
        )
    async with in_transaction():
        setup = await CompanySetup.create(
            code=f"pending-{viewer.user_id}-{now.timestamp()}",
            company_name=name,
            business_type_id=plan.business_type.id,
            flow_id=plan.flow.id,
            region_id=region.id,
            contact_name=form.contact_name.strip(),
            contact_phone=phone,
            accepted_at=now,
            accepted_by_id=viewer.user_id,
            core_deadline=due["core"],
            x_deadline=due["x"],
            project_id=project.id if project else None,
        )
        setup.code = f"QS{today.year}{setup.id:06d}"
        await setup.save(update_fields=["code"])
        await SetupMaterial.bulk_create(
            [
                SetupMaterial(
                    setup_id=setup.id,
                    material_type_id=material_type.id,
                    status=MaterialStatus.SUBMITTED if code in handed else MaterialStatus.COMMITTED,
                    commitment_due=promised[code].due if code in promised else None,
                    commitment_signed_by=promised[code].signed_by.strip()
                    if code in promised
                    else "",
                )
                for code, (material_type, _) in needed.items()
            ]
        )
        await SetupTask.bulk_create(
            [
                SetupTask(
                    setup_id=setup.id,
                    permit_id=need.permit.id,
                    department_id=need.permit.department_id,
                    core=need.permit.core,
                    deadline=due["core"] if need.permit.core else due["x"],
                    site_check_requested_at=now if need.permit.site_check_id else None,
                    site_check_due=due["site_check"] if need.permit.site_check_id else None,
                )
                for need in plan.permits
            ]
        )
        checked = await SetupTask.filter(setup_id=setup.id, site_check_due__isnull=False)
        for task in sorted(checked, key=lambda t: t.id):
            await open_setup_site_check(task=task, actor_id=viewer.user_id, now=now)
        await audit.record(
            actor_id=viewer.user_id,
            action="setup.accept",
            entity_type="setup",
            entity_id=setup.id,
            project_id=setup.project_id,
            after={
                "code": setup.code,
                "companyName": name,
                "businessType": plan.business_type.code,
                "flow": plan.flow.code,
                "coreDeadline": due["core"].isoformat(),
                "xDeadline": due["x"].isoformat(),
                "tasks": len(plan.permits),
                "commitments": sorted(promised),
                "project": project.code if project else None,
            },
        )
    return setup


async def deliver_setup_material(
    *, viewer: Viewer, code: str, material_type_code: str, now: datetime
) -> SetupMaterial:
    """The window receives a material promised under 容缺 (the commitment is fulfilled) or
    asked for again by a department (补正: the permits waiting for it resume review)."""
    require_role(viewer, Role.WINDOW_CLERK)
    setup = await visible_setup(viewer, code)
    async with in_transaction():
        # The review engine's lock order: the setup row first, then its tasks.
        setup = await CompanySetup.select_for_update().get(id=setup.id)
        material = (
            await SetupMaterial.select_for_update()
            .filter(setup_id=setup.id, material_type__code=material_type_code.strip())
            .first()
        )
        if material is None:
            raise invalid(
                f"setup {setup.code} needs no material {material_type_code!r}",
                field="materialType",
            )
        if material.status not in (MaterialStatus.COMMITTED, MaterialStatus.REJECTED):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"material {material_type_code!r} of setup {setup.code} was handed in already",
                field="materialType",
            )
        before = {"status": material.status.value, "due": str(material.commitment_due)}
        material.status = MaterialStatus.SUBMITTED
        await material.save(update_fields=["status"])
        try:
            resumed = await review.answer_supplements(
                setup=setup,
                material_type_id=material.material_type_id,
                now=now,
                actor_id=viewer.user_id,
            )
        except CalendarUnknownError as exc:  # nothing is stored: the transaction rolls back
            raise calendar_error(exc, field="materialType") from None
        await audit.record(
            actor_id=viewer.user_id,
            action="setup_material.deliver",
            entity_type="setup_material",
            entity_id=material.id,
            project_id=setup.project_id,
            before=before,
            after={
                "status": material.status.value,
                "at": now.isoformat(),
                "resumedTasks": resumed,
            },
        )
    return material


async def reaccept_setup(
    *, viewer: Viewer, code: str, materials: list[str], now: datetime
) -> CompanySetup:
    """A new round (一窗受理 again) for a setup whose fan-in said 需补正: the window takes the
    applicant's materials (every one a department returned must be among them), and the
    permits whose departments asked review again with new working-day deadlines from today;
    the others keep their approvals. Audited as ``setup.reaccept``."""
    require_role(viewer, Role.WINDOW_CLERK)
    found = await visible_setup(viewer, code)
    handed = sorted({m.strip() for m in materials})
    if not handed or "" in handed:
        raise invalid(
            "name the materials the applicant supplies (补正材料), at least one",
            field="materials",
        )
    setup_rules = await loaded_rules()
    today = local_day(now)
    due = await rules.deadlines(
        today=today,
        working_days={
            "core": setup_rules.core_days,
            "x": setup_rules.x_days,
            "site_check": setup_rules.site_check_days,
        },
        field="materials",
    )
    async with in_transaction():
        # The review engine's lock order: the setup row first, then its tasks.
        setup = await CompanySetup.select_for_update().get(id=found.id)
        if setup.status is not SetupStatus.SUPPLEMENT_REQUIRED:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"setup {setup.code} is {label(setup.status)}; only a setup waiting for 补正 "
                "(待补正) is accepted again",
                field="code",
            )
        rows = await SetupMaterial.select_for_update().filter(setup_id=setup.id)
        types = {
            t.id: t for t in await MaterialType.filter(id__in=[m.material_type_id for m in rows])
        }
        held = {types[m.material_type_id].code: m for m in rows}
        unknown = [c for c in handed if c not in held]
        if unknown:
            raise invalid(
                f"setup {setup.code} needs no material {', '.join(unknown)}; hand in only "
                "materials of its flow",
                field="materials",
            )
        returned = sorted(
            c for c, m in held.items() if m.status is MaterialStatus.REJECTED and c not in handed
        )
        if returned:
            raise DomainError(
                ErrorCode.MISSING_CORE_MATERIALS,
                "materials the departments returned are missing: "
                + "、".join(f"{types[held[c].material_type_id].name}({c})" for c in returned)
                + "; the applicant supplies them before the setup is accepted again",
                field="materials",
            )
        for c in handed:
            material = held[c]
            if material.status is not MaterialStatus.COMMITTED:  # 容缺 stays promised
                material.status = MaterialStatus.SUBMITTED
                await material.save(update_fields=["status"])
        before = {"status": setup.status.value, "outcome": setup.outcome.value}
        reopened = await review.reopen_round(
            setup=setup, deadlines=due, now=now, actor_id=viewer.user_id
        )
        round_rows = await SetupTask.filter(id__in=reopened).values_list(
            "core", "deadline", "round"
        )
        reopened_core = any(core for core, _, _ in round_rows)
        setup.status = SetupStatus.IN_REVIEW
        setup.outcome = None  # type: ignore[assignment]
        setup.completed_at = None
        if reopened_core:
            setup.core_deadline = max(setup.core_deadline, due["core"])
        setup.x_deadline = max(setup.x_deadline, due["x"])
        await setup.save(
            update_fields=["status", "outcome", "completed_at", "core_deadline", "x_deadline"]
        )
        await audit.record(
            actor_id=viewer.user_id,
            action="setup.reaccept",
            entity_type="setup",
            entity_id=setup.id,
            project_id=setup.project_id,
            before=before,
            after={
                "status": setup.status.value,
                "materials": handed,
                "reopenedTasks": reopened,
                # The new round as the applicant's 办件确认 tells it (oversight.notifications).
                "round": max((r for _, _, r in round_rows), default=2),
                "roundDeadline": max((d for _, d, _ in round_rows), default=due["x"]).isoformat(),
                "coreDeadline": setup.core_deadline.isoformat(),
                "xDeadline": setup.x_deadline.isoformat(),
            },
        )
    return setup
