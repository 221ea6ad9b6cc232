"""电子监察 in the API: the supervision events, and the clock stops and formal opinions."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from approval.core.access import Viewer, project_scope
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.oversight.supervision import KINDS
from approval.projects import tasks
from schema.core.context import Info, query_error
from schema.core.nodes import PauseReasonEnum
from schema.core.pagination import MAX_PAGE, decode_cursor, encode_cursor
from schema.core.payloads import decode_id
from schema.oversight.center import SupervisionEventType, WarningLevelEnum, events_out
from schema.projects.mutation import TaskPayload, task_result
from storage import models
from storage.enums import Role


def events_visible_to(viewer: Viewer) -> QuerySet[models.SupervisionEvent]:
    """Supervisors see every event (of their region); reviewers their department's."""
    if viewer.role is Role.SUPERVISOR:
        query = models.SupervisionEvent.all()
        if viewer.region_ids is not None:
            visible = models.Project.filter(project_scope(viewer)).values("id")
            query = query.filter(Q(project_id__isnull=True) | Q(project_id__in=Subquery(visible)))
        return query
    if viewer.role is Role.REVIEWER:
        return models.SupervisionEvent.filter(department_id=viewer.department_id or -1)
    raise DomainError(
        ErrorCode.FORBIDDEN,
        "supervision events are for the center's supervisors (中心管理办) and department "
        "reviewers; your role does not see them",
    )


@strawberry.type
class SupervisionEventEdge:
    node: SupervisionEventType
    cursor: str


@strawberry.type(description="电子监察事件, 新的在前")
class SupervisionEventConnection:
    edges: list[SupervisionEventEdge]
    page_info: relay.PageInfo
    total_count: int


@strawberry.type
class SupervisionQuery:
    @strawberry.field(description="电子监察事件, 新的在前: 管理办看全部, 审批人员看本部门")
    async def supervision_events(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        level: WarningLevelEnum | None = None,  # type: ignore[valid-type]
        kind: Annotated[
            str | None, strawberry.argument(description=f"种类: {', '.join(KINDS)}")
        ] = None,
        department: Annotated[str | None, strawberry.argument(description="部门代码")] = None,
    ) -> SupervisionEventConnection:
        viewer = info.context.query_viewer()
        try:
            if not 1 <= first <= MAX_PAGE:
                raise invalid(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")
            query = events_visible_to(viewer)
            if level is not None:
                query = query.filter(level=level)
            if kind:
                if kind not in KINDS:
                    raise invalid(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
                query = query.filter(kind=kind)
            if department:
                query = query.filter(department__code=department)
            total = await query.count()
            window = query.order_by("-id")
            if after is not None:
                window = window.filter(id__lt=decode_cursor(after))
            rows = await window.limit(first + 1)
        except DomainError as error:
            raise query_error(error) from None
        shown = rows[:first]
        nodes = await events_out(shown)
        edges = [
            SupervisionEventEdge(node=node, cursor=encode_cursor(row.id))
            for node, row in zip(nodes, shown, strict=True)
        ]
        page_info = relay.PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return SupervisionEventConnection(edges=edges, page_info=page_info, total_count=total)


@strawberry.input
class PauseTaskInput:
    task_id: relay.GlobalID
    reason: PauseReasonEnum  # type: ignore[valid-type]
    note: str = ""


@strawberry.input
class ResumeTaskInput:
    task_id: relay.GlobalID


@strawberry.input
class FileFormalOpinionInput:
    task_id: relay.GlobalID
    opinion: str


@strawberry.type
class SupervisionMutation:
    @strawberry.mutation(description="中止计时: 专家评审、听证、检验检测或补正期间不计入期限")
    async def pause_task(self, info: Info, input: PauseTaskInput) -> TaskPayload:
        ctx = info.context
        return await task_result(
            lambda: tasks.pause_task(
                viewer=ctx.require_viewer(),
                task_id=decode_id(input.task_id, "Task", "taskId"),
                reason=input.reason,
                note=input.note,
                now=ctx.now(),
            )
        )

    @strawberry.mutation(description="恢复计时: 期限顺延中止的工作日数")
    async def resume_task(self, info: Info, input: ResumeTaskInput) -> TaskPayload:
        ctx = info.context
        return await task_result(
            lambda: tasks.resume_task(
                viewer=ctx.require_viewer(),
                task_id=decode_id(input.task_id, "Task", "taskId"),
                now=ctx.now(),
            )
        )

    @strawberry.mutation(description="超时默认通过后, 部门补交正式意见")
    async def file_formal_opinion(self, info: Info, input: FileFormalOpinionInput) -> TaskPayload:
        ctx = info.context
        return await task_result(
            lambda: tasks.file_formal_opinion(
                viewer=ctx.require_viewer(),
                task_id=decode_id(input.task_id, "Task", "taskId"),
                opinion=input.opinion,
                now=ctx.now(),
            )
        )
