"""The center's oversight in GraphQL: 联合告知 (joint notice), 联审联办 (joint review meetings),
电子监察 (warnings, overdue items, department figures, stage durations) and the live
supervision events (a subscription over graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry import relay

from approval.core.errors import DomainError, ErrorCode
from approval.core.labels import label
from approval.oversight import meetings, notice, reports
from schema.core.context import Info, query_error
from schema.core.errors import UserError
from schema.core.nodes import DepartmentNode
from schema.core.payloads import attempt, decode_id
from schema.projects.types import ProjectTypeEnum
from storage import enums, models

MeetingStatusEnum = strawberry.enum(enums.MeetingStatus, name="MeetingStatus")
WarningLevelEnum = strawberry.enum(enums.WarningLevel, name="WarningLevel")
KIND_LABELS = {
    "task": "事项期限",
    "stage": "阶段期限",
    "commitment": "容缺承诺",
    "formal_opinion": "正式意见",
    "default_approval": "超时默认",
    "calendar": "节假日安排",
    "calendar_ahead": "下一年节假日未载入",
    "setup_task": "企业设立许可期限",
    "site_check": "现场踏勘期限",
}


# --- 联合告知 ---------------------------------------------------------------------------------


@strawberry.type(description="须办理的审批事项")
class NoticeItem:
    code: str
    name: str
    department_code: str
    department_name: str
    statutory_days: int = strawberry.field(description="法定时限(工作日)")
    promised_days: int = strawberry.field(description="承诺时限(工作日)")
    site_check: bool = strawberry.field(description="需现场踏勘")


@strawberry.type(description="因区域评估免于单独办理的事项")
class ExemptItem:
    code: str
    name: str
    department_code: str
    department_name: str
    assessment: str = strawberry.field(description="区域评估类别: energy/environment/water/seismic")
    reason: str


@strawberry.type(description="联合告知: 一个阶段")
class NoticeStage:
    code: str
    name: str
    order: int
    lead_department_name: str
    time_limit_days: int = strawberry.field(description="阶段时限(工作日)")
    longest_promised_days: int = strawberry.field(description="最长事项承诺时限(工作日)")
    items: list[NoticeItem]
    exempted: list[ExemptItem]


@strawberry.type(description="需要某材料的事项")
class MaterialNeed:
    stage_code: str
    item_code: str
    item_name: str
    department_code: str
    department_name: str
    core: bool


@strawberry.type(description="一套材料中的一种: 各部门共用, 只收一次")
class NoticeMaterial:
    code: str
    name: str
    description: str
    core: bool = strawberry.field(description="有事项将其列为核心材料")
    needs: list[MaterialNeed]
    department_names: list[str]


@strawberry.type(description="设计要求: 联合验收时该部门将核查的内容")
class DesignRequirement:
    department_code: str
    department_name: str
    checklist_code: str
    checklist_name: str
    requirements: list[str]


@strawberry.type(description="联合告知书")
class JointNotice:
    project_code: str | None
    project_name: str | None
    region_code: str
    region_name: str
    project_type: ProjectTypeEnum  # type: ignore[valid-type]
    project_type_label: str
    land_area: Decimal
    investment: Decimal = strawberry.field(description="总投资(万元)")
    stages: list[NoticeStage]
    materials: list[NoticeMaterial]
    design_requirements: list[DesignRequirement]
    notes: list[str]
    total_time_limit_days: int
    total_longest_promised_days: int

    @classmethod
    def of(cls, n: notice.JointNotice) -> JointNotice:
        return cls(
            project_code=n.project_code,
            project_name=n.project_name,
            region_code=n.region_code,
            region_name=n.region_name,
            project_type=n.project_type,
            project_type_label=n.project_type_label,
            land_area=n.land_area_m2,
            investment=n.investment_10k_yuan,
            stages=[
                NoticeStage(
                    code=s.code,
                    name=s.name,
                    order=s.order,
                    lead_department_name=s.lead_department_name,
                    time_limit_days=s.time_limit_days,
                    longest_promised_days=s.longest_promised_days,
                    items=[NoticeItem(**vars(i)) for i in s.items],
                    exempted=[ExemptItem(**vars(e)) for e in s.exempted],
                )
                for s in n.stages
            ],
            materials=[
                NoticeMaterial(
                    code=m.code,
                    name=m.name,
                    description=m.description,
                    core=m.core,
                    needs=[MaterialNeed(**vars(need)) for need in m.needs],
                    department_names=list(m.department_names),
                )
                for m in n.materials
            ],
            design_requirements=[
                DesignRequirement(
                    department_code=d.department_code,
                    department_name=d.department_name,
                    checklist_code=d.checklist_code,
                    checklist_name=d.checklist_name,
                    requirements=list(d.requirements),
                )
                for d in n.design_requirements
            ],
            notes=list(n.notes),
            total_time_limit_days=n.total_time_limit_days,
            total_longest_promised_days=n.total_longest_promised_days,
        )


@strawberry.input(description="拟建项目: 申报前的联合告知")
class JointNoticeInput:
    region: str = strawberry.field(description="区域或园区代码")
    project_type: ProjectTypeEnum  # type: ignore[valid-type]
    land_area: Decimal = strawberry.field(description="用地面积(平方米)")
    investment: Decimal = strawberry.field(description="总投资(万元)")


# --- 联审联办 ---------------------------------------------------------------------------------


@strawberry.type(name="MeetingInvitation", description="受邀部门及其意见")
class MeetingInvitationType:
    department: DepartmentNode
    attended: bool | None
    agrees: bool | None
    opinion: str
    promised_days: int | None = strawberry.field(description="承诺办理时限(工作日)")
    absent_default: bool = strawberry.field(description="缺席默认同意")
    recorded_at: datetime | None
    status_label: str


@strawberry.type(name="ReviewMeeting", description="联审联办会议")
class ReviewMeetingType:
    id: relay.GlobalID
    stage_code: str | None
    stage_name: str | None
    scheduled_for: datetime
    place: str
    status: MeetingStatusEnum  # type: ignore[valid-type]
    status_label: str
    held_at: datetime | None
    invitations: list[MeetingInvitationType]

    @classmethod
    def of(cls, view: meetings.MeetingView) -> ReviewMeetingType:
        m = view.meeting
        return cls(
            id=relay.GlobalID("ReviewMeeting", str(m.id)),
            stage_code=view.stage_code,
            stage_name=view.stage_name,
            scheduled_for=m.scheduled_for,
            place=m.place,
            status=m.status,
            status_label=label(m.status),
            held_at=m.held_at,
            invitations=[
                MeetingInvitationType(
                    department=DepartmentNode.from_row(i.department),
                    attended=i.attended,
                    agrees=i.agrees,
                    opinion=i.opinion,
                    promised_days=i.promised_days,
                    absent_default=i.absent_default,
                    recorded_at=i.recorded_at,
                    status_label=meetings.invitation_label(i),
                )
                for i in view.invitations
            ],
        )


@strawberry.input(description="召集联审联办会议")
class ScheduleMeetingInput:
    project_id: relay.GlobalID
    stage: str = strawberry.field(description="阶段代码")
    at: datetime = strawberry.field(description="会议时间(含时区)")
    place: str
    departments: list[str] = strawberry.field(description="受邀部门代码")


@strawberry.input(description="部门在联审会上的意见及承诺时限")
class RecordMeetingOpinionInput:
    meeting_id: relay.GlobalID
    department: str = strawberry.field(description="部门代码")
    agrees: bool
    opinion: str = ""
    promised_days: int | None = strawberry.field(default=None, description="承诺时限(工作日)")


@strawberry.type
class MeetingPayload:
    meeting: ReviewMeetingType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


# --- 电子监察 ---------------------------------------------------------------------------------


@strawberry.type(description="临期或超期的部门任务")
class TaskAlert:
    task_id: relay.GlobalID
    project_code: str
    project_name: str
    stage_code: str
    stage_name: str
    item_code: str
    item_name: str
    department_code: str
    department_name: str
    deadline: date
    working_days_left: int = strawberry.field(description="剩余工作日; 负数为已超期工作日")
    level: WarningLevelEnum  # type: ignore[valid-type]
    level_label: str


@strawberry.type(name="SupervisionEvent", description="电子监察事件: 预警、超期、超时默认")
class SupervisionEventType:
    id: strawberry.ID
    key: str
    kind: str
    kind_label: str
    level: WarningLevelEnum | None  # type: ignore[valid-type]
    level_label: str | None
    entity_type: str
    entity_id: int
    project_code: str | None
    project_name: str | None
    department_code: str | None
    department_name: str | None
    message: str
    at: datetime


async def events_out(rows: list[models.SupervisionEvent]) -> list[SupervisionEventType]:
    """Events with their project and department names (two statements for any number)."""
    project_ids = {r.project_id for r in rows if r.project_id}
    department_ids = {r.department_id for r in rows if r.department_id}
    projects = (
        {p.id: p for p in await models.Project.filter(id__in=project_ids)} if project_ids else {}
    )
    departments = (
        {d.id: d for d in await models.Department.filter(id__in=department_ids)}
        if department_ids
        else {}
    )
    result = []
    for r in rows:
        project = projects.get(r.project_id) if r.project_id else None
        department = departments.get(r.department_id) if r.department_id else None
        result.append(
            SupervisionEventType(
                id=strawberry.ID(str(r.id)),
                key=r.key,
                kind=r.kind,
                kind_label=KIND_LABELS.get(r.kind, r.kind),
                level=r.level,
                level_label=label(r.level) if r.level else None,
                entity_type=r.entity_type,
                entity_id=r.entity_id,
                project_code=project.code if project else None,
                project_name=project.name if project else None,
                department_code=department.code if department else None,
                department_name=department.name if department else None,
                message=r.message,
                at=r.at,
            )
        )
    return result


@strawberry.type(description="预警或超期清单: 按任务计算的, 及监察程序记录的事件")
class Alerts:
    tasks: list[TaskAlert]
    events: list[SupervisionEventType]


@strawberry.type(description="部门办件统计")
class DepartmentFigure:
    department_code: str
    department_name: str
    decided: int = strawberry.field(description="已决定事项数")
    on_time: int = strawberry.field(description="按期办结数")
    on_time_rate: float | None = strawberry.field(description="按期办结率 0..1")
    default_approved: int = strawberry.field(description="超时默认数")
    average_working_days: float | None = strawberry.field(description="平均用时(工作日)")
    open_now: int
    overdue_now: int


@strawberry.type(description="阶段用时(每月一调度)")
class StageDuration:
    stage_code: str
    stage_name: str
    order: int
    time_limit_days: int
    completed: int
    average_working_days: float | None
    max_working_days: int | None
    open_now: int
    overdue_now: int


async def alerts_out(alerts: reports.Alerts) -> Alerts:
    return Alerts(
        tasks=[
            TaskAlert(
                task_id=relay.GlobalID("Task", str(a.task_id)),
                project_code=a.project_code,
                project_name=a.project_name,
                stage_code=a.stage_code,
                stage_name=a.stage_name,
                item_code=a.item_code,
                item_name=a.item_name,
                department_code=a.department_code,
                department_name=a.department_name,
                deadline=a.deadline,
                working_days_left=a.working_days_left,
                level=a.level,
                level_label=a.level_label,
            )
            for a in alerts.tasks
        ],
        events=await events_out(alerts.events),
    )


# --- roots -----------------------------------------------------------------------------------


@strawberry.type
class OversightQuery:
    @strawberry.field(description="联合告知: 本项目各阶段事项、一套材料、设计要求和预计时限")
    async def joint_notice(self, info: Info, project_id: relay.GlobalID) -> JointNotice:
        viewer = info.context.query_viewer()
        try:
            result = await notice.project_notice(
                viewer=viewer, project_id=decode_id(project_id, "Project", "projectId")
            )
        except DomainError as error:
            raise query_error(error) from None
        return JointNotice.of(result)

    @strawberry.field(description="联合告知: 拟建项目(申报前)")
    async def joint_notice_for(self, info: Info, input: JointNoticeInput) -> JointNotice:
        info.context.query_viewer()
        try:
            result = await notice.joint_notice(
                region_code=input.region,
                project_type=input.project_type,
                land_area_m2=input.land_area,
                investment_10k_yuan=input.investment,
            )
        except DomainError as error:
            raise query_error(error) from None
        return JointNotice.of(result)

    @strawberry.field(description="项目的联审联办会议")
    async def meetings(self, info: Info, project_id: relay.GlobalID) -> list[ReviewMeetingType]:
        viewer = info.context.query_viewer()
        try:
            views = await meetings.project_meetings(
                viewer=viewer, project_id=decode_id(project_id, "Project", "projectId")
            )
        except DomainError as error:
            raise query_error(error) from None
        return [ReviewMeetingType.of(v) for v in views]

    @strawberry.field(description="临期预警: 期限内剩余工作日不多于 withinDays 的未决任务")
    async def warnings(self, info: Info, within_days: int = reports.DEFAULT_WARNING_DAYS) -> Alerts:
        viewer = info.context.query_viewer()
        try:
            result = await reports.warnings(
                viewer=viewer, now=info.context.now(), within_days=within_days
            )
        except DomainError as error:
            raise query_error(error) from None
        return await alerts_out(result)

    @strawberry.field(description="超期: 已过期限的未决任务")
    async def overdue(self, info: Info) -> Alerts:
        viewer = info.context.query_viewer()
        try:
            result = await reports.overdue(viewer=viewer, now=info.context.now())
        except DomainError as error:
            raise query_error(error) from None
        return await alerts_out(result)

    @strawberry.field(description="部门办件统计; month 形如 2026-03, 省略为全部")
    async def department_figures(
        self, info: Info, month: str | None = None
    ) -> list[DepartmentFigure]:
        viewer = info.context.query_viewer()
        try:
            rows = await reports.department_figures(
                viewer=viewer, now=info.context.now(), month=month
            )
        except DomainError as error:
            raise query_error(error) from None
        return [
            DepartmentFigure(
                department_code=f.department_code,
                department_name=f.department_name,
                decided=f.decided,
                on_time=f.on_time,
                on_time_rate=f.on_time_rate,
                default_approved=f.default_approved,
                average_working_days=f.average_working_days,
                open_now=f.open_now,
                overdue_now=f.overdue_now,
            )
            for f in rows
        ]

    @strawberry.field(description="各阶段用时(每月一调度); month 形如 2026-03")
    async def stage_durations(self, info: Info, month: str | None = None) -> list[StageDuration]:
        viewer = info.context.query_viewer()
        try:
            rows = await reports.stage_durations(viewer=viewer, now=info.context.now(), month=month)
        except DomainError as error:
            raise query_error(error) from None
        return [StageDuration(**vars(s)) for s in rows]


@strawberry.type
class OversightMutation:
    @strawberry.mutation(description="召集联审联办会议(综合窗口或中心管理办)")
    async def schedule_meeting(self, info: Info, input: ScheduleMeetingInput) -> MeetingPayload:
        ctx = info.context

        async def run() -> ReviewMeetingType:
            viewer = ctx.require_viewer()
            row = await meetings.schedule_meeting(
                viewer=viewer,
                project_id=decode_id(input.project_id, "Project", "projectId"),
                stage_code=input.stage,
                at=input.at,
                place=input.place,
                department_codes=input.departments,
                now=ctx.now(),
            )
            return ReviewMeetingType.of(
                await meetings.meeting_view(viewer=viewer, meeting_id=row.id)
            )

        meeting, errors = await attempt(run)
        return MeetingPayload(meeting=meeting, errors=errors)

    @strawberry.mutation(description="记录部门在联审会上的意见及承诺时限")
    async def record_meeting_opinion(
        self, info: Info, input: RecordMeetingOpinionInput
    ) -> MeetingPayload:
        ctx = info.context

        async def run() -> ReviewMeetingType:
            viewer = ctx.require_viewer()
            meeting_id = decode_id(input.meeting_id, "ReviewMeeting", "meetingId")
            await meetings.record_opinion(
                viewer=viewer,
                meeting_id=meeting_id,
                department_code=input.department,
                agrees=input.agrees,
                opinion=input.opinion,
                promised_days=input.promised_days,
                now=ctx.now(),
            )
            return ReviewMeetingType.of(
                await meetings.meeting_view(viewer=viewer, meeting_id=meeting_id)
            )

        meeting, errors = await attempt(run)
        return MeetingPayload(meeting=meeting, errors=errors)

    @strawberry.mutation(description="会议结束: 未表态的受邀部门按缺席默认同意记录")
    async def close_meeting(self, info: Info, meeting_id: relay.GlobalID) -> MeetingPayload:
        ctx = info.context

        async def run() -> ReviewMeetingType:
            viewer = ctx.require_viewer()
            row = await meetings.close_meeting(
                viewer=viewer,
                meeting_id=decode_id(meeting_id, "ReviewMeeting", "meetingId"),
                now=ctx.now(),
            )
            return ReviewMeetingType.of(
                await meetings.meeting_view(viewer=viewer, meeting_id=row.id)
            )

        meeting, errors = await attempt(run)
        return MeetingPayload(meeting=meeting, errors=errors)


@strawberry.type
class OversightSubscription:
    @strawberry.subscription(description="电子监察事件实时推送(预警、超期、系统动作)")
    async def supervision_events(self, info: Info) -> AsyncGenerator[SupervisionEventType, None]:
        viewer = info.context.query_viewer()
        try:
            reports.require_watcher(viewer)
        except DomainError as error:
            raise query_error(error) from None
        bus = info.context.bus
        if bus is None:
            raise query_error(
                DomainError(
                    ErrorCode.INVALID_STATE,
                    "live events are not enabled on this server; poll the warnings and "
                    "overdue queries instead",
                )
            )
        async for event in bus.subscribe():
            if await reports.event_visible(viewer, event):
                [out] = await events_out([event])
                yield out
