"""每月一调度 for company setups, counted apart from construction projects: how many setups
stand in each state, how many certificates went out within the promised working days, per
department its setup permits decided, on time, by 超时默认, open and overdue now; and the
setups' own sheet of the ledger (台账)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from tortoise.expressions import Subquery

from approval.core.access import Viewer, require_role, setup_scope
from approval.core.dates import local_day
from approval.core.labels import label
from approval.oversight.reports import parse_month
from approval.review.rules import OPEN
from storage.enums import Role, SetupStatus
from storage.models import CompanySetup, Department, SetupTask


@dataclass(frozen=True)
class SetupDepartmentFigures:
    department_code: str
    department_name: str
    decided: int
    on_time: int  # decided by the department itself by the deadline
    default_approved: int
    open_now: int
    overdue_now: int


@dataclass(frozen=True)
class SetupFigures:
    accepted: int  # setups accepted (in the month when given)
    by_status: dict[SetupStatus, int]  # of those, where they stand now
    issued_within_promise: int  # issued no later than their X deadline
    departments: list[SetupDepartmentFigures]


async def setup_figures(*, viewer: Viewer, now: datetime, month: str | None = None) -> SetupFigures:
    require_role(viewer, Role.SUPERVISOR)
    today = local_day(now)
    setups = CompanySetup.filter(setup_scope(viewer))
    decided = SetupTask.filter(setup_id__in=Subquery(setups.values("id")), decided_at__isnull=False)
    if month is not None:
        period = parse_month(month)
        setups = setups.filter(accepted_at__gte=period.start, accepted_at__lt=period.end)
        decided = decided.filter(decided_at__gte=period.start, decided_at__lt=period.end)
    rows = await setups.all()
    counts = {status: 0 for status in SetupStatus}
    for setup in rows:
        counts[setup.status] += 1
    issued_in_time = sum(
        1 for s in rows if s.issued_at is not None and local_day(s.issued_at) <= s.x_deadline
    )
    visible = CompanySetup.filter(setup_scope(viewer)).values("id")
    open_rows = await SetupTask.filter(
        setup_id__in=Subquery(visible), status__in=list(OPEN), setup__status=SetupStatus.IN_REVIEW
    )
    by_department: dict[int, list[SetupTask]] = defaultdict(list)
    for task in await decided:
        by_department[task.department_id].append(task)
    open_by: dict[int, list[SetupTask]] = defaultdict(list)
    for task in open_rows:
        open_by[task.department_id].append(task)
    ids = sorted(set(by_department) | set(open_by))
    departments = {d.id: d for d in await Department.filter(id__in=ids)}
    figures = [
        SetupDepartmentFigures(
            department_code=departments[i].code,
            department_name=departments[i].name,
            decided=len(by_department.get(i, [])),
            on_time=sum(
                1
                for t in by_department.get(i, [])
                if t.decided_at is not None
                and not t.default_approved
                and local_day(t.decided_at) <= t.deadline
            ),
            default_approved=sum(1 for t in by_department.get(i, []) if t.default_approved),
            open_now=len(open_by.get(i, [])),
            overdue_now=sum(
                1 for t in open_by.get(i, []) if t.paused_at is None and t.deadline < today
            ),
        )
        for i in ids
    ]
    return SetupFigures(
        accepted=len(rows),
        by_status=counts,
        issued_within_promise=issued_in_time,
        departments=sorted(figures, key=lambda f: f.department_code),
    )


@dataclass(frozen=True)
class SetupLedgerRow:
    """One company setup in the ledger (台账), on a sheet apart from the projects."""

    code: str
    company_name: str
    business_type: str
    flow: str
    region: str
    accepted_on: date
    core_deadline: date
    x_deadline: date
    issued_on: date | None
    status: str
    permits: int
    decided: int
    default_approved: int
    overdue_open: int

    def cells(self) -> tuple[object, ...]:
        return (
            self.code,
            self.company_name,
            self.business_type,
            self.flow,
            self.region,
            self.accepted_on,
            self.core_deadline,
            self.x_deadline,
            self.issued_on,
            self.status,
            self.permits,
            self.decided,
            self.default_approved,
            self.overdue_open,
        )


async def setup_ledger_rows(
    *, viewer: Viewer, now: datetime, month: str | None = None
) -> list[SetupLedgerRow]:
    """Every setup the supervisor sees (accepted in ``month`` when given), oldest first."""
    require_role(viewer, Role.SUPERVISOR)
    today = local_day(now)
    setups = CompanySetup.filter(setup_scope(viewer))
    if month is not None:
        period = parse_month(month)
        setups = setups.filter(accepted_at__gte=period.start, accepted_at__lt=period.end)
    rows = await setups.select_related("business_type", "flow", "region").order_by("id")
    tasks: dict[int, list[SetupTask]] = defaultdict(list)
    for task in await SetupTask.filter(setup_id__in=[s.id for s in rows]):
        tasks[task.setup_id].append(task)
    return [
        SetupLedgerRow(
            code=s.code,
            company_name=s.company_name,
            business_type=s.business_type.name,
            flow=s.flow.name,
            region=s.region.name,
            accepted_on=local_day(s.accepted_at),
            core_deadline=s.core_deadline,
            x_deadline=s.x_deadline,
            issued_on=local_day(s.issued_at) if s.issued_at else None,
            status=label(s.status),
            permits=len(tasks[s.id]),
            decided=sum(1 for t in tasks[s.id] if t.decided_at is not None),
            default_approved=sum(1 for t in tasks[s.id] if t.default_approved),
            overdue_open=sum(
                1
                for t in tasks[s.id]
                if t.status in OPEN and t.paused_at is None and t.deadline < today
            ),
        )
        for s in rows
    ]
