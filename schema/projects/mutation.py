"""Mutations: each one a thin call to a keyword-only service; failures come back as data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry import relay

from approval.core import auth
from approval.core.errors import ErrorCode
from approval.files import uploads
from approval.projects import agents, materials, projects, stages, tasks
from schema.core.context import Info
from schema.core.errors import UserError
from schema.core.nodes import DecisionEnum, PersonNode
from schema.core.payloads import attempt, decode_id
from schema.projects.types import MaterialNode, ProjectNode, ProjectTypeEnum, StageNode, TaskNode
from storage import models


async def task_result(action: Callable[[], Awaitable[models.Task]]) -> TaskPayload:
    """The payload of a mutation on one task: the task and its stage, or the errors."""
    row, errors = await attempt(action)
    if row is None:
        return TaskPayload(errors=errors)
    stage = await models.Stage.get(id=row.stage_id)
    return TaskPayload(task=TaskNode.from_row(row), stage=StageNode.from_row(stage))


@strawberry.input(description="一表制申报: 项目申请表")
class CreateProjectInput:
    name: str
    credit_code: str = strawberry.field(description="统一社会信用代码")
    enterprise_name: str
    region: str = strawberry.field(description="区域代码")
    project_type: ProjectTypeEnum  # type: ignore[valid-type]
    industry_code: str = strawberry.field(description="国民经济行业门类两位代码")
    land_area: Decimal = strawberry.field(description="用地面积(平方米)")
    floor_area: Decimal = strawberry.field(description="规划建筑面积(平方米)")
    investment: Decimal = strawberry.field(description="总投资(万元)")
    address: str = ""
    agent: str | None = strawberry.field(default=None, description="代办员用户名")
    contact_name: str = ""
    contact_phone: str = ""


@strawberry.input(description="容缺承诺")
class CommitmentInput:
    material_type: str = strawberry.field(description="材料类型代码")
    due: date
    signed_by: str


@strawberry.input
class AcceptStageInput:
    project_id: relay.GlobalID
    stage: str = strawberry.field(description="阶段代码")
    commitments: list[CommitmentInput] = strawberry.field(default_factory=list)


@strawberry.input
class SubmitMaterialInput:
    project_id: relay.GlobalID
    material_type: str = strawberry.field(description="材料类型代码")
    upload_id: strawberry.ID | None = strawberry.field(
        default=None, description="已确认的上传(电子材料); 与 fileName 二选一"
    )
    file_name: str | None = strawberry.field(default=None, description="纸质材料的文件名")
    size_bytes: int | None = None
    sha256: str | None = None
    note: str = ""


@strawberry.input
class ReviewMaterialInput:
    material_id: relay.GlobalID
    accept: bool
    reason: str = ""


@strawberry.input
class DecideTaskInput:
    task_id: relay.GlobalID
    decision: DecisionEnum  # type: ignore[valid-type]
    opinion: str = ""


@strawberry.input
class RequestSupplementInput:
    task_id: relay.GlobalID
    reason: str
    material_type: str | None = strawberry.field(default=None, description="材料类型代码")


@strawberry.type
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    viewer: PersonNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="更换代办员")
class ReassignAgentInput:
    project_id: relay.GlobalID
    agent: str | None = strawberry.field(description="新代办员用户名; 空为不再代办")
    reason: str


@strawberry.type
class ProjectPayload:
    project: ProjectNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StagePayload:
    stage: StageNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MaterialPayload:
    material: MaterialNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TaskPayload:
    task: TaskNode | None = None
    stage: StageNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="登录, 返回访问令牌")
    async def login(self, info: Info, username: str, password: str) -> LoginPayload:
        ctx = info.context
        result, errors = await attempt(
            lambda: auth.login(
                username=username,
                password=password,
                now=ctx.now(),
                ttl=ctx.token_ttl,
                hashing=ctx.hashing,
                client=ctx.client,
            )
        )
        if result is None:
            if ctx.refusal_pause > 0 and any(e.code is ErrorCode.TOO_MANY_ATTEMPTS for e in errors):
                await asyncio.sleep(ctx.refusal_pause)  # a brute force waits, for free
            return LoginPayload(errors=errors)
        token, expires_at, user = result
        return LoginPayload(token=token, expires_at=expires_at, viewer=PersonNode.from_row(user))

    @strawberry.mutation(description="更换项目代办员(记入审计)")
    async def reassign_agent(self, info: Info, input: ReassignAgentInput) -> ProjectPayload:
        async def run() -> ProjectNode:
            row = await agents.reassign_agent(
                viewer=info.context.require_viewer(),
                project_id=decode_id(input.project_id, "Project", "projectId"),
                agent_username=input.agent,
                reason=input.reason,
                now=info.context.now(),
            )
            return ProjectNode.from_row(row)

        node, errors = await attempt(run)
        return ProjectPayload(project=node, errors=errors)

    @strawberry.mutation(description="一表制申报, 生成项目代码")
    async def create_project(self, info: Info, input: CreateProjectInput) -> ProjectPayload:
        ctx = info.context

        async def run() -> ProjectNode:
            form = projects.ProjectApplication(
                name=input.name,
                credit_code=input.credit_code,
                enterprise_name=input.enterprise_name,
                region_code=input.region,
                project_type=input.project_type,
                industry_code=input.industry_code,
                land_area_m2=input.land_area,
                floor_area_m2=input.floor_area,
                investment_10k_yuan=input.investment,
                address=input.address,
                agent_username=input.agent,
                contact_name=input.contact_name,
                contact_phone=input.contact_phone,
            )
            row = await projects.create_project(
                viewer=ctx.require_viewer(), form=form, now=ctx.now()
            )
            return ProjectNode.from_row(row)

        project, errors = await attempt(run)
        return ProjectPayload(project=project, errors=errors)

    @strawberry.mutation(description="综合窗口受理阶段申请, 分发到各部门并联审批")
    async def accept_stage_application(self, info: Info, input: AcceptStageInput) -> StagePayload:
        ctx = info.context

        async def run() -> StageNode:
            row = await stages.accept_stage(
                viewer=ctx.require_viewer(),
                project_id=decode_id(input.project_id, "Project", "projectId"),
                stage_code=input.stage,
                now=ctx.now(),
                commitments=[
                    stages.Commitment(
                        material_type_code=c.material_type, due=c.due, signed_by=c.signed_by
                    )
                    for c in input.commitments
                ],
            )
            return StageNode.from_row(row)

        stage, errors = await attempt(run)
        return StagePayload(stage=stage, errors=errors)

    @strawberry.mutation(description="提交材料(一套材料、一次收取)")
    async def submit_material(self, info: Info, input: SubmitMaterialInput) -> MaterialPayload:
        ctx = info.context

        async def run() -> MaterialNode:
            row = await materials.submit_material(
                viewer=ctx.require_viewer(),
                project_id=decode_id(input.project_id, "Project", "projectId"),
                material_type_code=input.material_type,
                file=None
                if input.file_name is None
                else materials.MaterialFile(
                    file_name=input.file_name,
                    size_bytes=input.size_bytes,
                    sha256=input.sha256,
                    note=input.note,
                ),
                upload_id=None
                if input.upload_id is None
                else uploads.parse_upload_id(str(input.upload_id)),
                now=ctx.now(),
            )
            return MaterialNode.from_row(row)

        material, errors = await attempt(run)
        return MaterialPayload(material=material, errors=errors)

    @strawberry.mutation(description="窗口审核材料: 收取或退回")
    async def review_material(self, info: Info, input: ReviewMaterialInput) -> MaterialPayload:
        ctx = info.context

        async def run() -> MaterialNode:
            row = await materials.review_material(
                viewer=ctx.require_viewer(),
                material_id=decode_id(input.material_id, "Material", "materialId"),
                accept=input.accept,
                reason=input.reason,
                now=ctx.now(),
            )
            return MaterialNode.from_row(row)

        material, errors = await attempt(run)
        return MaterialPayload(material=material, errors=errors)

    @strawberry.mutation(description="部门作出审批决定")
    async def decide_task(self, info: Info, input: DecideTaskInput) -> TaskPayload:
        ctx = info.context
        return await task_result(
            lambda: tasks.decide_task(
                viewer=ctx.require_viewer(),
                task_id=decode_id(input.task_id, "Task", "taskId"),
                decision=input.decision,
                opinion=input.opinion,
                now=ctx.now(),
            )
        )

    @strawberry.mutation(description="要求补正材料, 任务挂起直至材料补齐")
    async def request_supplement(self, info: Info, input: RequestSupplementInput) -> TaskPayload:
        ctx = info.context

        async def run() -> models.Task:
            request = await tasks.request_supplement(
                viewer=ctx.require_viewer(),
                task_id=decode_id(input.task_id, "Task", "taskId"),
                reason=input.reason,
                material_type_code=input.material_type,
                now=ctx.now(),
            )
            return await request.task

        return await task_result(run)
