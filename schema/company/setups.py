"""The company-setup face of the API (企业设立 1+4+X): the flows by business type, setups,
their department tasks and materials; intake, decisions and unified issuing. A permit's site
check is an Inspection (schema/fieldwork), recorded in the field app."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay
from tortoise.expressions import Subquery

from approval.company import intake, issuing, review
from approval.core.access import setup_scope
from approval.core.dates import local_day
from approval.core.errors import DomainError, not_found
from approval.core.labels import label
from approval.oversight import ratings
from approval.oversight.setup_figures import setup_figures
from schema.core.context import Info, query_error
from schema.core.errors import UserError
from schema.core.nodes import DecisionEnum, MaterialStatusEnum, PauseReasonEnum, RatingAnswer
from schema.core.payloads import attempt
from storage import enums, models

SetupStatusEnum = strawberry.enum(enums.SetupStatus, name="SetupStatus")


@strawberry.type(description="所需材料")
class SetupMaterialNeed:
    code: str
    name: str
    core: bool = strawberry.field(description="核心材料(不可容缺)")


@strawberry.type(description="许可证照: 一照三证(核心) 或 X 部门的许可")
class SetupPermit:
    code: str
    name: str
    core: bool = strawberry.field(description="一照三证之一(4个工作日)")
    department: str = strawberry.field(description="审批部门")
    site_check: str | None = strawberry.field(description="现场踏勘核查表, 无则不需踏勘")
    default_approval: bool = strawberry.field(description="超时默认适用")
    materials: list[SetupMaterialNeed]


@strawberry.type(description="经营类型")
class BusinessTypeInfo:
    code: str
    name: str


@strawberry.type(description="企业设立流程图")
class SetupFlowInfo:
    code: str
    name: str
    starts_project: bool = strawberry.field(description="同时启动建设项目(外资工业)")
    business_types: list[BusinessTypeInfo]


@strawberry.type(description="流程情形(6种)")
class SetupFlowGroupInfo:
    code: str
    name: str
    flows: list[SetupFlowInfo]


@strawberry.type(description="量体裁衣: 一种经营类型的最优流程")
class SetupPlan:
    business_type: BusinessTypeInfo
    flow: SetupFlowInfo
    permits: list[SetupPermit]
    materials: list[SetupMaterialNeed] = strawberry.field(description="一套材料, 一次收取")
    core_days: int = strawberry.field(description="一照三证办结时限(工作日)")
    x_days: int = strawberry.field(description="X 部门许可办结时限(工作日)")
    site_check_days: int = strawberry.field(description="现场踏勘时限(工作日)")


@strawberry.type(description="补正要求")
class SetupSupplementInfo:
    reason: str
    material_type: str | None = strawberry.field(description="要求补正的材料代码")
    material_name: str | None
    requested_at: datetime
    resolved_at: datetime | None = strawberry.field(description="已补正(材料收到或恢复计时)")


@strawberry.type(description="退回的材料(补正)")
class SetupReturnedMaterial:
    code: str
    name: str
    reason: str = strawberry.field(description="补正理由")


@strawberry.type(description="许可的上一轮审查: 以需补正等决定结束, 补正后重新受理")
class SetupTaskRoundInfo:
    round: int = strawberry.field(description="轮次")
    decision: DecisionEnum  # type: ignore[valid-type]
    decision_label: str
    opinion: str
    deadline: date = strawberry.field(description="该轮的办结期限")
    decided_at: datetime | None
    default_approved: bool = strawberry.field(description="超时默认")
    returned_materials: list[SetupReturnedMaterial] = strawberry.field(
        description="该轮退回要求补正的材料"
    )
    reopened_at: datetime = strawberry.field(description="重新受理时间")
    decided_by_id: strawberry.Private[int | None]

    @strawberry.field(description="决定人(超时默认或已无此人时为空)")
    async def decided_by(self, info: Info) -> str | None:
        if self.decided_by_id is None:
            return None
        user = await info.context.loaders.user.load(self.decided_by_id)
        return user.display_name if user else None


def _round(row: models.SetupTaskRound) -> SetupTaskRoundInfo:
    return SetupTaskRoundInfo(
        round=row.round,
        decision=row.decision,
        decision_label=label(row.decision),
        opinion=row.opinion,
        deadline=row.deadline,
        decided_at=row.decided_at,
        default_approved=row.default_approved,
        returned_materials=[
            SetupReturnedMaterial(
                code=str(m.get("code", "")),
                name=str(m.get("name", "")),
                reason=str(m.get("reason", "")),
            )
            for m in row.returned_materials
        ],
        reopened_at=row.reopened_at,
        decided_by_id=row.decided_by_id,
    )


@strawberry.type(description="企业设立的部门审批任务")
class SetupTaskInfo:
    task_id: int
    permit: str
    permit_code: str
    department: str
    department_code: str
    core: bool
    status: str
    status_label: str
    decision: DecisionEnum | None  # type: ignore[valid-type]
    decision_label: str | None
    opinion: str
    deadline: date = strawberry.field(description="办结期限(计时中止的工作日顺延)")
    paused_at: datetime | None = strawberry.field(description="计时中止于")
    pause_reason: str
    default_approved: bool
    site_check_due: date | None
    site_check_done_at: datetime | None
    decided_at: datetime | None
    round: int = strawberry.field(description="审查轮次: 补正后重新受理, 要求补正的部门进入新一轮")

    @strawberry.field(description="此前各轮的审查(补正后重新受理前的决定), 按轮次")
    async def history(self, info: Info) -> list[SetupTaskRoundInfo]:
        rows = await info.context.loaders.rounds_by_setup_task.load(self.task_id)
        return [_round(row) for row in rows]

    @strawberry.field(
        description="现场踏勘的检查单(Inspection, 最新一轮): 检查员在现场App离线记录并签署结论"
    )
    async def site_check_id(self, info: Info) -> relay.GlobalID | None:
        rows = await info.context.loaders.inspections_by_setup_task.load(self.task_id)
        return relay.GlobalID("Inspection", str(rows[-1].id)) if rows else None

    @strawberry.field(description="补正要求(部门要求补交或更正的材料)")
    async def supplements(self) -> list[SetupSupplementInfo]:
        rows = (
            await models.SetupSupplementRequest.filter(task_id=self.task_id)
            .select_related("material_type")
            .order_by("id")
        )
        return [
            SetupSupplementInfo(
                reason=row.reason,
                material_type=row.material_type.code if row.material_type else None,
                material_name=row.material_type.name if row.material_type else None,
                requested_at=row.requested_at,
                resolved_at=row.resolved_at,
            )
            for row in rows
        ]


@strawberry.type(description="企业设立的材料")
class SetupMaterialInfo:
    code: str
    name: str
    status: MaterialStatusEnum  # type: ignore[valid-type]
    status_label: str
    commitment_due: date | None
    commitment_signed_by: str


@strawberry.type(description="企业设立申请(一窗受理)")
class CompanySetupInfo:
    code: str = strawberry.field(description="受理编号")
    company_name: str
    business_type: BusinessTypeInfo
    flow: str
    region: str
    contact_name: str
    status: SetupStatusEnum  # type: ignore[valid-type]
    status_label: str
    outcome: DecisionEnum | None  # type: ignore[valid-type]
    accepted_at: datetime
    core_deadline: date = strawberry.field(description="一照三证时限")
    x_deadline: date = strawberry.field(description="X 部门许可时限")
    completed_at: datetime | None
    issued_at: datetime | None = strawberry.field(description="统一发证时间")
    project_code: str | None = strawberry.field(description="关联的建设项目(外资)")
    setup_id: strawberry.Private[int]

    @strawberry.field(description="各部门并联审批任务")
    async def tasks(self) -> list[SetupTaskInfo]:
        rows = (
            await models.SetupTask.filter(setup_id=self.setup_id)
            .select_related("permit", "department")
            .order_by("id")
        )
        return [_task(row) for row in rows]

    @strawberry.field(description="一套材料")
    async def materials(self) -> list[SetupMaterialInfo]:
        rows = (
            await models.SetupMaterial.filter(setup_id=self.setup_id)
            .select_related("material_type")
            .order_by("material_type_id")
        )
        return [
            SetupMaterialInfo(
                code=row.material_type.code,
                name=row.material_type.name,
                status=row.status,
                status_label=label(row.status),
                commitment_due=row.commitment_due,
                commitment_signed_by=row.commitment_signed_by,
            )
            for row in rows
        ]


def _task(row: models.SetupTask) -> SetupTaskInfo:
    return SetupTaskInfo(
        task_id=row.id,
        permit=row.permit.name,
        permit_code=row.permit.code,
        department=row.department.short_name,
        department_code=row.department.code,
        core=row.core,
        status=row.status.value,
        status_label=label(row.status),
        decision=row.decision,
        decision_label=label(row.decision) if row.decision else None,
        opinion=row.opinion,
        deadline=row.deadline,
        paused_at=row.paused_at,
        pause_reason=row.pause_reason,
        default_approved=row.default_approved,
        site_check_due=row.site_check_due,
        site_check_done_at=row.site_check_done_at,
        decided_at=row.decided_at,
        round=row.round,
    )


async def setup_info(row: models.CompanySetup) -> CompanySetupInfo:
    await row.fetch_related("business_type", "flow", "region", "project")
    return CompanySetupInfo(
        code=row.code,
        company_name=row.company_name,
        business_type=BusinessTypeInfo(code=row.business_type.code, name=row.business_type.name),
        flow=row.flow.name,
        region=row.region.name,
        contact_name=row.contact_name,
        status=row.status,
        status_label=label(row.status),
        outcome=row.outcome,
        accepted_at=row.accepted_at,
        core_deadline=row.core_deadline,
        x_deadline=row.x_deadline,
        completed_at=row.completed_at,
        issued_at=row.issued_at,
        project_code=row.project.code if row.project else None,
        setup_id=row.id,
    )


def _flow_info(flow: models.SetupFlow, types: list[models.BusinessType]) -> SetupFlowInfo:
    return SetupFlowInfo(
        code=flow.code,
        name=flow.name,
        starts_project=flow.starts_project,
        business_types=[BusinessTypeInfo(code=t.code, name=t.name) for t in types],
    )


@strawberry.type(description="好差评: 申请人对一次企业设立服务的评价")
class SetupRatingInfo(RatingAnswer):
    rating_id: int
    setup_code: str = strawberry.field(description="受理编号")
    company_name: str


@strawberry.type(description="某一分值的评价数")
class ScoreCount:
    score: int = strawberry.field(description="分值(1-5)")
    count: int


@strawberry.type(description="企业设立好差评汇总: 辖区内全部评价, 由数据库统计")
class SetupRatingSummary:
    sent: int = strawberry.field(description="已发评价码(办结的企业设立)")
    rated: int = strawberry.field(description="已评价")
    average: float | None = strawberry.field(description="平均分(已评价的), 无评价时为空")
    bad: int = strawberry.field(description="差评(2分及以下)")
    by_score: list[ScoreCount] = strawberry.field(description="各分值的评价数, 1至5分")
    follow_ups_open: int = strawberry.field(description="差评待回访")
    follow_ups_overdue: int = strawberry.field(description="待回访中已过回访期限")
    follow_ups_closed: int = strawberry.field(description="已回访")

    @staticmethod
    def of(summary: ratings.RatingSummary) -> SetupRatingSummary:
        return SetupRatingSummary(
            sent=summary.sent,
            rated=summary.rated,
            average=summary.average,
            bad=summary.bad,
            by_score=[ScoreCount(score=s, count=n) for s, n in sorted(summary.by_score.items())],
            follow_ups_open=summary.follow_ups_open,
            follow_ups_overdue=summary.follow_ups_overdue,
            follow_ups_closed=summary.follow_ups_closed,
        )


def _rating(row: models.Rating) -> SetupRatingInfo:
    assert row.setup is not None, "a construction stage's rating is a Rating"
    return SetupRatingInfo(
        rating_id=row.id,
        setup_code=row.setup.code,
        company_name=row.setup.company_name,
        score=row.score,
        comment=row.comment,
        rated_at=row.rated_at,
        follow_up_due=row.follow_up_due,
        follow_up_done_at=row.follow_up_done_at,
        follow_up_note=row.follow_up_note,
    )


@strawberry.type
class SetupRatingPayload:
    rating: SetupRatingInfo | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="企业设立: 一个部门的办件统计")
class SetupDepartmentFigure:
    department_code: str
    department_name: str
    decided: int
    on_time: int
    default_approved: int = strawberry.field(description="超时默认")
    open_now: int
    overdue_now: int


@strawberry.type(description="企业设立统计(与建设项目分开计数)")
class SetupFiguresInfo:
    accepted: int = strawberry.field(description="受理的企业设立")
    in_review: int
    ready: int = strawberry.field(description="待统一发证")
    issued: int
    refused: int
    supplement_required: int = strawberry.field(description="待补正(等待申请人补正材料)")
    issued_within_promise: int = strawberry.field(description="承诺时限内统一发证")
    departments: list[SetupDepartmentFigure]


@strawberry.type
class CompanyQuery:
    @strawberry.field(description="企业设立统计; month 形如 2026-03, 省略为全部(中心管理办)")
    async def setup_figures(self, info: Info, month: str | None = None) -> SetupFiguresInfo:
        try:
            figures = await setup_figures(
                viewer=info.context.query_viewer(), now=info.context.now(), month=month
            )
        except DomainError as error:
            raise query_error(error) from None
        by = figures.by_status
        return SetupFiguresInfo(
            accepted=figures.accepted,
            in_review=by[enums.SetupStatus.IN_REVIEW],
            ready=by[enums.SetupStatus.READY],
            issued=by[enums.SetupStatus.ISSUED],
            refused=by[enums.SetupStatus.REFUSED],
            supplement_required=by[enums.SetupStatus.SUPPLEMENT_REQUIRED],
            issued_within_promise=figures.issued_within_promise,
            departments=[
                SetupDepartmentFigure(
                    department_code=f.department_code,
                    department_name=f.department_name,
                    decided=f.decided,
                    on_time=f.on_time,
                    default_approved=f.default_approved,
                    open_now=f.open_now,
                    overdue_now=f.overdue_now,
                )
                for f in figures.departments
            ],
        )

    @strawberry.field(description="企业设立: 6种情形的流程图")
    async def setup_flow_groups(self, info: Info) -> list[SetupFlowGroupInfo]:
        info.context.query_viewer()
        groups = await models.SetupFlowGroup.all().order_by("order")
        flows = await models.SetupFlow.filter(active=True).order_by("order")
        types = await models.BusinessType.filter(active=True).order_by("id")
        return [
            SetupFlowGroupInfo(
                code=g.code,
                name=g.name,
                flows=[
                    _flow_info(f, [t for t in types if t.flow_id == f.id])
                    for f in flows
                    if f.group_id == g.id
                ],
            )
            for g in groups
        ]

    @strawberry.field(description="量体裁衣: 经营类型对应的最优流程、许可、材料和踏勘")
    async def setup_plan(self, info: Info, business_type: str) -> SetupPlan:
        info.context.query_viewer()
        try:
            plan = await intake.flow_plan(business_type=business_type)
        except DomainError as error:
            raise query_error(error) from None
        types = await models.BusinessType.filter(flow_id=plan.flow.id, active=True)
        return SetupPlan(
            business_type=BusinessTypeInfo(
                code=plan.business_type.code, name=plan.business_type.name
            ),
            flow=_flow_info(plan.flow, list(types)),
            permits=[
                SetupPermit(
                    code=need.permit.code,
                    name=need.permit.name,
                    core=need.permit.core,
                    department=need.permit.department.short_name,
                    site_check=need.permit.site_check.name if need.permit.site_check else None,
                    default_approval=need.permit.default_approval,
                    materials=[
                        SetupMaterialNeed(code=t.code, name=t.name, core=core)
                        for t, core in need.materials
                    ],
                )
                for need in plan.permits
            ],
            materials=[
                SetupMaterialNeed(code=t.code, name=t.name, core=core)
                for t, core in plan.material_types().values()
            ],
            core_days=plan.rules.core_days,
            x_days=plan.rules.x_days,
            site_check_days=plan.rules.site_check_days,
        )

    @strawberry.field(description="企业设立申请, 最新的在前")
    async def company_setups(
        self,
        info: Info,
        status: SetupStatusEnum | None = None,  # type: ignore[valid-type]
        first: int = 50,
    ) -> list[CompanySetupInfo]:
        viewer = info.context.query_viewer()
        query = models.CompanySetup.filter(setup_scope(viewer))
        if status is not None:
            query = query.filter(status=status)
        rows = await query.order_by("-id").limit(max(1, min(first, 200)))
        return [await setup_info(row) for row in rows]

    @strawberry.field(description="按受理编号查询企业设立")
    async def company_setup(self, info: Info, code: str) -> CompanySetupInfo | None:
        viewer = info.context.query_viewer()
        row = await models.CompanySetup.filter(setup_scope(viewer), code=code.strip()).first()
        return await setup_info(row) if row else None

    @strawberry.field(
        description="企业设立的好差评(中心管理办), 最新的在前; 可只看未办结的差评回访"
    )
    async def setup_ratings(
        self,
        info: Info,
        rated: bool | None = None,
        follow_up_open: bool | None = None,
        first: int = 50,
    ) -> list[SetupRatingInfo]:
        viewer = info.context.query_viewer()
        try:
            query = ratings.setup_rating_query(viewer)
        except DomainError as error:
            raise query_error(error) from None
        if rated is not None:
            query = query.filter(rated_at__isnull=not rated)
        if follow_up_open is True:
            query = query.filter(follow_up_due__isnull=False, follow_up_done_at__isnull=True)
        elif follow_up_open is False:
            query = query.filter(follow_up_done_at__isnull=False)
        rows = await query.select_related("setup").order_by("-id").limit(max(1, min(first, 200)))
        return [_rating(row) for row in rows]

    @strawberry.field(
        description="企业设立好差评汇总(中心管理办): 辖区内全部评价的总数, 平均分, 各分值和回访"
    )
    async def setup_rating_summary(self, info: Info) -> SetupRatingSummary:
        try:
            summary = await ratings.setup_rating_summary(
                viewer=info.context.query_viewer(), today=local_day(info.context.now())
            )
        except DomainError as error:
            raise query_error(error) from None
        return SetupRatingSummary.of(summary)

    @strawberry.field(description="本部门的企业设立审批任务(审批人员, 本辖区内)")
    async def setup_tasks(self, info: Info, open_only: bool = True) -> list[SetupTaskInfo]:
        viewer = info.context.query_viewer()
        query = models.SetupTask.filter(
            department_id=viewer.department_id or -1,
            setup_id__in=Subquery(models.CompanySetup.filter(setup_scope(viewer)).values("id")),
        )
        if open_only:
            query = query.filter(status__not=enums.TaskStatus.DECIDED)
        rows = await query.select_related("permit", "department").order_by("deadline", "id")
        return [_task(row) for row in rows]


@strawberry.input(description="容缺承诺")
class SetupCommitmentInput:
    material_type: str
    due: date
    signed_by: str


@strawberry.input(description="企业设立申请表(一窗受理)")
class AcceptCompanySetupInput:
    company_name: str
    business_type: str = strawberry.field(description="经营类型代码, 如 restaurant")
    region: str = strawberry.field(description="区域代码")
    contact_name: str
    contact_phone: str = strawberry.field(description="领件通知短信发往此号码")
    materials: list[str] = strawberry.field(description="窗口收取的材料类型代码")
    commitments: list[SetupCommitmentInput] = strawberry.field(default_factory=list)
    project_code: str | None = strawberry.field(default=None, description="外资: 建设项目代码")


@strawberry.input(description="部门对一项企业设立许可的决定")
class DecideSetupTaskInput:
    task_id: int
    decision: DecisionEnum  # type: ignore[valid-type]
    opinion: str = ""


@strawberry.type
class CompanySetupPayload:
    setup: CompanySetupInfo | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _payload(row: models.CompanySetup | None, errors: list[UserError]) -> CompanySetupPayload:
    return CompanySetupPayload(setup=await setup_info(row) if row else None, errors=errors)


async def _setup_of(task: models.SetupTask | None) -> models.CompanySetup | None:
    return await models.CompanySetup.get(id=task.setup_id) if task else None


@strawberry.type
class CompanyMutation:
    @strawberry.mutation(description="一窗受理企业设立: 各部门同时收到任务")
    async def accept_company_setup(
        self, info: Info, input: AcceptCompanySetupInput
    ) -> CompanySetupPayload:
        form = intake.SetupApplication(
            company_name=input.company_name,
            business_type=input.business_type,
            region_code=input.region,
            contact_name=input.contact_name,
            contact_phone=input.contact_phone,
            materials=list(input.materials),
            commitments=[
                intake.SetupCommitment(
                    material_type_code=c.material_type, due=c.due, signed_by=c.signed_by
                )
                for c in input.commitments
            ],
            project_code=input.project_code,
        )
        row, errors = await attempt(
            lambda: intake.accept_setup(
                viewer=info.context.require_viewer(), form=form, now=info.context.now()
            )
        )
        return await _payload(row, errors)

    @strawberry.mutation(description="部门对企业设立许可作出决定(同步审批)")
    async def decide_setup_task(
        self, info: Info, input: DecideSetupTaskInput
    ) -> CompanySetupPayload:
        task, errors = await attempt(
            lambda: review.decide_setup_task(
                viewer=info.context.require_viewer(),
                task_id=input.task_id,
                decision=input.decision,
                opinion=input.opinion,
                now=info.context.now(),
            )
        )
        return await _payload(await _setup_of(task), errors)

    @strawberry.mutation(description="中止企业设立许可的计时(专家评审、听证、检验、补正)")
    async def stop_setup_clock(
        self,
        info: Info,
        task_id: int,
        reason: PauseReasonEnum,  # type: ignore[valid-type]
        note: str,
    ) -> CompanySetupPayload:
        task, errors = await attempt(
            lambda: review.stop_setup_clock(
                viewer=info.context.require_viewer(),
                task_id=task_id,
                reason=str(reason),
                note=note,
                now=info.context.now(),
            )
        )
        return await _payload(await _setup_of(task), errors)

    @strawberry.mutation(description="恢复计时: 期限按中止的工作日顺延")
    async def resume_setup_clock(self, info: Info, task_id: int) -> CompanySetupPayload:
        task, errors = await attempt(
            lambda: review.resume_setup_clock(
                viewer=info.context.require_viewer(), task_id=task_id, now=info.context.now()
            )
        )
        return await _payload(await _setup_of(task), errors)

    @strawberry.mutation(description="补正: 部门要求补交或更正材料, 计时中止至材料收到")
    async def request_setup_supplement(
        self, info: Info, task_id: int, reason: str, material_type: str | None = None
    ) -> CompanySetupPayload:
        task, errors = await attempt(
            lambda: review.request_setup_supplement(
                viewer=info.context.require_viewer(),
                task_id=task_id,
                reason=reason,
                material_type_code=material_type,
                now=info.context.now(),
            )
        )
        return await _payload(await _setup_of(task), errors)

    @strawberry.mutation(description="收取材料: 容缺承诺补交的, 或部门要求补正的")
    async def deliver_setup_material(
        self, info: Info, code: str, material_type: str
    ) -> CompanySetupPayload:
        async def act() -> models.CompanySetup:
            material = await intake.deliver_setup_material(
                viewer=info.context.require_viewer(),
                code=code,
                material_type_code=material_type,
                now=info.context.now(),
            )
            return await models.CompanySetup.get(id=material.setup_id)

        row, errors = await attempt(act)
        return await _payload(row, errors)

    @strawberry.mutation(
        description="补正后重新受理: 待补正的企业设立收取补正材料, 要求补正的部门重新审查(新一轮)"
    )
    async def reaccept_company_setup(
        self, info: Info, code: str, materials: list[str]
    ) -> CompanySetupPayload:
        row, errors = await attempt(
            lambda: intake.reaccept_setup(
                viewer=info.context.require_viewer(),
                code=code,
                materials=list(materials),
                now=info.context.now(),
            )
        )
        return await _payload(row, errors)

    @strawberry.mutation(description="中心管理办办结企业设立差评的回访")
    async def close_setup_follow_up(
        self, info: Info, rating_id: int, note: str
    ) -> SetupRatingPayload:
        async def run() -> SetupRatingInfo:
            viewer = info.context.require_viewer()
            if not await ratings.setup_rating_query(viewer).filter(id=rating_id).exists():
                raise not_found("setup rating", rating_id, field="ratingId")
            row = await ratings.close_follow_up(
                viewer=viewer, rating_id=rating_id, note=note, now=info.context.now()
            )
            return _rating(await models.Rating.get(id=row.id).select_related("setup"))

        rating, errors = await attempt(run)
        return SetupRatingPayload(rating=rating, errors=errors)

    @strawberry.mutation(description="统一发证: 各部门均准予后窗口一并发放证照")
    async def issue_company_setup(self, info: Info, code: str) -> CompanySetupPayload:
        row, errors = await attempt(
            lambda: issuing.issue_setup(
                viewer=info.context.require_viewer(), code=code, now=info.context.now()
            )
        )
        return await _payload(row, errors)
