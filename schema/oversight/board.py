"""What the office console's screens read beyond the plain nodes: the wall chart (挂图作战), a
department's review queue with traffic lights, and a stage application as the window sees it
before accepting (what is held, promised and missing, and by when a 容缺 commitment is due)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay

from approval.core.errors import DomainError
from approval.core.labels import label
from approval.oversight import board, queue
from approval.oversight.lights import LIGHT_LABELS, Light
from approval.projects import intake
from schema.core.context import Info, query_error
from schema.core.nodes import DecisionEnum, DepartmentNode, MaterialTypeNode, ServiceItemNode
from schema.core.payloads import decode_id
from schema.projects.types import (
    MaterialNode,
    ProjectNode,
    ProjectStatusEnum,
    StageStatusEnum,
    TaskNode,
)

LightEnum = strawberry.enum(Light, name="Light", description="红黄绿牌: 超期、临期、正常、计时中止")
HoldingEnum = strawberry.enum(
    intake.Holding, name="MaterialHolding", description="已有、容缺承诺、缺少"
)
HOLDING_LABELS = {
    intake.Holding.HELD: "已收",
    intake.Holding.COMMITTED: "容缺承诺",
    intake.Holding.MISSING: "缺少",
}


# --- 挂图作战 ---------------------------------------------------------------------------------


@strawberry.type(description="挂图作战: 一个部门在一个阶段的办理情况")
class WallDepartment:
    code: str
    short_name: str
    light: LightEnum  # type: ignore[valid-type]
    open_tasks: int


@strawberry.type(description="挂图作战: 一个项目的一个阶段")
class WallCell:
    stage_code: str
    stage_name: str
    order: int
    status: StageStatusEnum  # type: ignore[valid-type]
    status_label: str
    outcome: DecisionEnum | None  # type: ignore[valid-type]
    round: int
    deadline: date | None
    overdue: bool = strawberry.field(description="审批中且已过阶段期限")
    light: LightEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="未决任务中最紧急的红黄绿牌; 无未决任务为空"
    )
    open_tasks: int
    overdue_tasks: int
    departments: list[WallDepartment] = strawberry.field(
        description="有未决任务的部门, 最紧急的在前"
    )


@strawberry.type(description="挂图作战: 一个项目一行, 横跨四个阶段")
class WallRow:
    project_id: relay.GlobalID
    code: str
    name: str
    status: ProjectStatusEnum  # type: ignore[valid-type]
    region_code: str
    region_name: str
    enterprise_name: str
    created_at: datetime
    cells: list[WallCell]
    light: LightEnum | None  # type: ignore[valid-type]
    department_codes: list[str] = strawberry.field(description="本轮有任务的部门代码")


@strawberry.type(description="挂图作战")
class WallChart:
    as_of: datetime
    rows: list[WallRow]


def _row(r: board.BoardRow) -> WallRow:
    return WallRow(
        project_id=relay.GlobalID("Project", str(r.project_id)),
        code=r.code,
        name=r.name,
        status=r.status,
        region_code=r.region_code,
        region_name=r.region_name,
        enterprise_name=r.enterprise_name,
        created_at=r.created_at,
        light=r.light,
        department_codes=r.department_codes,
        cells=[
            WallCell(
                stage_code=c.stage_code,
                stage_name=c.stage_name,
                order=c.order,
                status=c.status,
                status_label=label(c.status),
                outcome=c.outcome,
                round=c.round,
                deadline=c.deadline,
                overdue=c.overdue,
                light=c.light,
                open_tasks=c.open_tasks,
                overdue_tasks=c.overdue_tasks,
                departments=[
                    WallDepartment(
                        code=d.code, short_name=d.short_name, light=d.light, open_tasks=d.open_tasks
                    )
                    for d in c.departments
                ],
            )
            for c in r.cells
        ],
    )


# --- 待办 -------------------------------------------------------------------------------------


@strawberry.type(description="待办: 一项部门任务及其红黄绿牌")
class QueueEntry:
    task: TaskNode
    project: ProjectNode
    stage_code: str
    stage_name: str
    light: LightEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="红黄绿牌; 补交正式意见的待办为空"
    )
    light_label: str
    working_days_left: int | None = strawberry.field(
        description="剩余工作日; 负数为已超期工作日; 计时中止或补交正式意见时为空"
    )
    owes_formal_opinion: bool = strawberry.field(description="超时默认通过后待补交正式意见")


def _entry(e: queue.QueueEntry) -> QueueEntry:
    stage = e.task.stage
    return QueueEntry(
        task=TaskNode.from_row(e.task),
        project=ProjectNode.from_row(stage.project),
        stage_code=stage.definition.code,
        stage_name=stage.definition.name,
        light=e.clock.light if e.clock else None,
        light_label=LIGHT_LABELS[e.clock.light] if e.clock else "待补正式意见",
        working_days_left=e.clock.working_days_left if e.clock else None,
        owes_formal_opinion=e.owes_formal_opinion,
    )


# --- 一窗受理 ---------------------------------------------------------------------------------


@strawberry.type(description="受理后将生成的部门任务")
class ApplicationItem:
    item: ServiceItemNode
    department: DepartmentNode
    deadline: date = strawberry.field(description="今日受理时的办理期限")


@strawberry.type(description="本阶段需要的一种材料及其收取情况")
class ApplicationMaterial:
    material_type: MaterialTypeNode
    core: bool = strawberry.field(description="核心材料: 缺少则不能受理")
    holding: HoldingEnum  # type: ignore[valid-type]
    holding_label: str
    material: MaterialNode | None = strawberry.field(description="项目材料库中的记录")
    latest_commitment_due: date | None = strawberry.field(
        description="缺少的非核心材料: 容缺承诺最晚的补交日期(不晚于需要它的事项期限和阶段期限)"
    )
    set_by_item: str | None = strawberry.field(
        description="决定该日期的事项名称; 为空时由阶段期限决定"
    )
    item_names: list[str] = strawberry.field(description="本阶段需要该材料的事项")


@strawberry.type(description="阶段申请: 受理前核对一套材料")
class StageApplication:
    stage_code: str
    stage_name: str
    stage_status: StageStatusEnum  # type: ignore[valid-type]
    stage_deadline: date = strawberry.field(description="今日受理时的阶段期限")
    items: list[ApplicationItem]
    materials: list[ApplicationMaterial] = strawberry.field(description="核心材料在前")
    missing_core: list[str] = strawberry.field(description="缺少的核心材料名称: 不能受理")
    missing_non_core: list[str] = strawberry.field(description="缺少的非核心材料名称: 须容缺承诺")


def _application(a: intake.StageApplication) -> StageApplication:
    return StageApplication(
        stage_code=a.stage.definition.code,
        stage_name=a.stage.definition.name,
        stage_status=a.stage.status,
        stage_deadline=a.stage_deadline,
        items=[
            ApplicationItem(
                item=ServiceItemNode.from_row(i.item),
                department=DepartmentNode.from_row(i.department),
                deadline=i.deadline,
            )
            for i in a.items
        ],
        materials=[
            ApplicationMaterial(
                material_type=MaterialTypeNode.from_row(m.material_type),
                core=m.core,
                holding=m.holding,
                holding_label=HOLDING_LABELS[m.holding],
                material=MaterialNode.from_row(m.material) if m.material else None,
                latest_commitment_due=m.latest_commitment_due,
                set_by_item=m.set_by.name if m.set_by else None,
                item_names=m.item_names,
            )
            for m in a.materials
        ],
        missing_core=[m.material_type.name for m in a.missing_core],
        missing_non_core=[m.material_type.name for m in a.missing_non_core],
    )


@strawberry.type
class BoardQuery:
    @strawberry.field(description="挂图作战: 每个项目一行横跨四个阶段; projects 只取这些项目代码")
    async def wall_chart(self, info: Info, projects: list[str] | None = None) -> WallChart:
        viewer = info.context.query_viewer()
        now = info.context.now()
        try:
            rows = await board.wall_chart(viewer=viewer, now=now, project_codes=projects)
        except DomainError as error:
            raise query_error(error) from None
        return WallChart(as_of=now, rows=[_row(r) for r in rows])

    @strawberry.field(description="部门待办: 未决任务按期限先后(计时中止的在后), 再列待补正式意见")
    async def review_queue(
        self, info: Info, department: str | None = None, first: int = 500
    ) -> list[QueueEntry]:
        viewer = info.context.query_viewer()
        try:
            entries = await queue.review_queue(
                viewer=viewer, now=info.context.now(), department_code=department, first=first
            )
        except DomainError as error:
            raise query_error(error) from None
        return [_entry(e) for e in entries]

    @strawberry.field(description="阶段申请: 今日受理将生成的任务与期限, 材料已收、容缺、缺少")
    async def stage_application(
        self, info: Info, project_id: relay.GlobalID, stage: str
    ) -> StageApplication:
        viewer = info.context.query_viewer()
        try:
            result = await intake.stage_application(
                viewer=viewer,
                project_id=decode_id(project_id, "Project", "projectId"),
                stage_code=stage,
                now=info.context.now(),
            )
        except DomainError as error:
            raise query_error(error) from None
        return _application(result)
