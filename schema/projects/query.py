"""Queries: thin resolvers over the approval services and stored rows."""

from __future__ import annotations

import strawberry
from strawberry import relay
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from approval.core.access import project_scope
from approval.core.dates import local_day
from approval.core.errors import DomainError
from approval.projects.projects import ProjectFilter, project_by_code, project_query
from schema.core.context import Info, query_error
from schema.core.nodes import (
    DepartmentNode,
    MaterialTypeNode,
    PersonNode,
    RegionNode,
    ServiceItemNode,
)
from schema.core.pagination import page
from schema.projects.types import ProjectNode, StageStatusEnum, TaskNode, TaskStatusEnum
from storage import models
from storage.enums import Role


@strawberry.type
class ProjectConnection(relay.Connection[ProjectNode]):
    matching: strawberry.Private[QuerySet[models.Project]]

    @strawberry.field(description="符合条件的项目总数")
    async def total_count(self) -> int:
        return await self.matching.count()


@strawberry.type
class TaskConnection(relay.Connection[TaskNode]):
    matching: strawberry.Private[QuerySet[models.Task]]

    @strawberry.field(description="符合条件的任务总数")
    async def total_count(self) -> int:
        return await self.matching.count()


@strawberry.input(description="项目筛选条件")
class ProjectFilterInput:
    stage: str | None = strawberry.field(default=None, description="阶段代码")
    stage_status: StageStatusEnum | None = None  # type: ignore[valid-type]
    region: str | None = strawberry.field(default=None, description="区域代码")
    agent: str | None = strawberry.field(default=None, description="代办员用户名")
    overdue: bool | None = strawberry.field(default=None, description="有超期未决任务")
    text: str | None = strawberry.field(default=None, description="项目名称或代码")


@strawberry.input(description="任务筛选条件")
class TaskFilterInput:
    status: TaskStatusEnum | None = None  # type: ignore[valid-type]
    overdue: bool | None = None
    department: str | None = strawberry.field(default=None, description="部门代码")


@strawberry.type
class Query:
    @strawberry.field(description="当前登录用户")
    async def viewer(self, info: Info) -> PersonNode:
        viewer = info.context.query_viewer()
        row = await info.context.loaders.user.load(viewer.user_id)
        assert row is not None
        return PersonNode.from_row(row)

    @strawberry.field(description="项目列表, 按受理时间倒序")
    async def projects(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: ProjectFilterInput | None = None,
    ) -> ProjectConnection:
        viewer = info.context.query_viewer()
        f = filter or ProjectFilterInput()
        where = ProjectFilter(
            stage_code=f.stage,
            stage_status=f.stage_status,
            region_code=f.region,
            agent_username=f.agent,
            text=f.text,
            overdue_on=info.context.now() if f.overdue else None,
        )
        matching = project_query(viewer=viewer, where=where)
        try:
            edges, page_info = await page(
                matching, first=first, after=after, node=ProjectNode.from_row
            )
        except DomainError as error:
            raise query_error(error) from None
        return ProjectConnection(edges=edges, page_info=page_info, matching=matching)

    @strawberry.field(description="按项目代码查询")
    async def project(self, info: Info, code: str) -> ProjectNode | None:
        try:
            row = await project_by_code(viewer=info.context.query_viewer(), code=code)
        except DomainError as error:
            raise query_error(error) from None
        return ProjectNode.from_row(row) if row else None

    @strawberry.field(description="部门任务: 审批人员默认只看本部门")
    async def tasks(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: TaskFilterInput | None = None,
    ) -> TaskConnection:
        viewer = info.context.query_viewer()
        f = filter or TaskFilterInput()
        visible = models.Project.filter(project_scope(viewer)).values("id")
        query = models.Task.filter(stage__project_id__in=Subquery(visible))
        if viewer.role is Role.REVIEWER:
            query = query.filter(department_id=viewer.department_id)
        if f.department:
            query = query.filter(department__code=f.department)
        if f.status:
            query = query.filter(status=f.status)
        if f.overdue:
            today = local_day(info.context.now())
            query = query.filter(
                decided_at__isnull=True, paused_at__isnull=True, deadline__lt=today
            )
        try:
            edges, page_info = await page(query, first=first, after=after, node=TaskNode.from_row)
        except DomainError as error:
            raise query_error(error) from None
        return TaskConnection(edges=edges, page_info=page_info, matching=query)

    @strawberry.field(description="区域")
    async def regions(self, info: Info) -> list[RegionNode]:
        info.context.query_viewer()
        return [RegionNode.from_row(r) for r in await models.Region.all().order_by("code")]

    @strawberry.field(description="部门")
    async def departments(self, info: Info) -> list[DepartmentNode]:
        info.context.query_viewer()
        rows = await models.Department.all().order_by("code")
        return [DepartmentNode.from_row(r) for r in rows]

    @strawberry.field(description="材料类型")
    async def material_types(self, info: Info) -> list[MaterialTypeNode]:
        info.context.query_viewer()
        rows = await models.MaterialType.all().order_by("code")
        return [MaterialTypeNode.from_row(r) for r in rows]

    @strawberry.field(description="审批事项, 可按阶段代码筛选")
    async def service_items(self, info: Info, stage: str | None = None) -> list[ServiceItemNode]:
        info.context.query_viewer()
        query = models.ServiceItem.filter(active=True)
        if stage:
            query = query.filter(stage__code=stage)
        return [ServiceItemNode.from_row(r) for r in await query.order_by("code")]
