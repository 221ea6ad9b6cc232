"""短信平台 and 好差评 in the API: the outbox and the ratings for supervisors, rating by code."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import relay
from tortoise.queryset import QuerySet

from approval.core.dates import local_day
from approval.core.errors import DomainError, invalid
from approval.oversight import ratings
from approval.oversight.notifications import MOMENT_LABELS
from schema.core.context import Info, query_error
from schema.core.errors import UserError
from schema.core.nodes import RatingAnswer
from schema.core.pagination import MAX_PAGE, page
from schema.core.payloads import attempt, decode_id
from schema.projects.types import ProjectNode, StageNode
from storage import enums, models

NotificationStatusEnum = strawberry.enum(enums.NotificationStatus, name="NotificationStatus")


@strawberry.enum(name="FollowUpState", description="差评回访状态")
class FollowUpState(Enum):
    OPEN = "open"
    OVERDUE = "overdue"
    CLOSED = "closed"


@strawberry.type(name="Notification", description="短信: 一个事件发给一个接收人的一条消息")
class NotificationNode(relay.Node):
    id: relay.NodeID[int]
    key: str
    moment: str = strawberry.field(description="received | midway | ready | rate | warning ...")
    recipient: str = strawberry.field(description="手机号、部门代码或 user:用户名")
    text: str
    status: NotificationStatusEnum  # type: ignore[valid-type]
    attempts: int
    last_error: str
    next_attempt_at: datetime
    sent_at: datetime | None
    created_at: datetime
    project: ProjectNode | None

    @strawberry.field(description="办件确认、中途提醒、领件通知、办结评议 ...")
    def moment_label(self) -> str:
        return MOMENT_LABELS.get(self.moment, self.moment)

    @classmethod
    def from_row(cls, row: models.Notification) -> NotificationNode:
        return cls(
            id=row.id,
            key=row.key,
            moment=row.moment,
            recipient=row.recipient,
            text=row.text,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
            created_at=row.created_at,
            project=ProjectNode.from_row(row.project) if row.project is not None else None,
        )


@strawberry.type(name="Rating", description="好差评: 申请人对一个已办结阶段的评价")
class RatingNode(RatingAnswer, relay.Node):
    id: relay.NodeID[int]
    stage: StageNode
    project: ProjectNode

    @classmethod
    def from_row(cls, row: models.Rating) -> RatingNode:
        assert row.stage is not None, "a company setup's rating is a SetupRating"
        return cls(
            id=row.id,
            score=row.score,
            comment=row.comment,
            rated_at=row.rated_at,
            follow_up_due=row.follow_up_due,
            follow_up_done_at=row.follow_up_done_at,
            follow_up_note=row.follow_up_note,
            stage=StageNode.from_row(row.stage),
            project=ProjectNode.from_row(row.stage.project),
        )


@strawberry.type
class NotificationConnection(relay.Connection[NotificationNode]):
    matching: strawberry.Private[QuerySet[models.Notification]]

    @strawberry.field(description="符合条件的短信总数")
    async def total_count(self) -> int:
        return await self.matching.count()


@strawberry.type
class RatingConnection(relay.Connection[RatingNode]):
    matching: strawberry.Private[QuerySet[models.Rating]]

    @strawberry.field(description="符合条件的评价总数")
    async def total_count(self) -> int:
        return await self.matching.count()


@strawberry.type(description="评价已收到")
class RatingReceipt:
    score: int
    comment: str
    rated_at: datetime
    follow_up_due: date | None = strawberry.field(description="差评时中心回访的期限")


@strawberry.type
class RateServicePayload:
    rating: RatingReceipt | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RatingPayload:
    rating: RatingNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _ratings_page_query(query: QuerySet[models.Rating]) -> QuerySet[models.Rating]:
    return query.select_related("stage__project")


@strawberry.type
class NotificationQuery:
    @strawberry.field(description="短信发送记录(中心管理办), 按生成时间倒序")
    async def notifications(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: NotificationStatusEnum | None = None,  # type: ignore[valid-type]
        project: Annotated[str | None, strawberry.argument(description="项目代码")] = None,
    ) -> NotificationConnection:
        viewer = info.context.query_viewer()
        try:
            matching = ratings.notification_query(viewer, status=status, project_code=project)
            edges, page_info = await page(
                matching.select_related("project"),
                first=first,
                after=after,
                node=NotificationNode.from_row,
            )
        except DomainError as error:
            raise query_error(error) from None
        return NotificationConnection(edges=edges, page_info=page_info, matching=matching)

    @strawberry.field(description="好差评(中心管理办), 按生成时间倒序; 可筛选差评回访")
    async def ratings(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        project: Annotated[str | None, strawberry.argument(description="项目代码")] = None,
        rated: Annotated[bool | None, strawberry.argument(description="是否已评价")] = None,
        follow_up: FollowUpState | None = None,
    ) -> RatingConnection:
        viewer = info.context.query_viewer()
        today = local_day(info.context.now())
        try:
            matching = ratings.rating_query(viewer)
            if project:
                matching = matching.filter(stage__project__code=project.strip())
            if rated is not None:
                matching = matching.filter(rated_at__isnull=not rated)
            if follow_up is FollowUpState.CLOSED:
                matching = matching.filter(follow_up_done_at__isnull=False)
            elif follow_up is not None:
                matching = matching.filter(
                    follow_up_due__isnull=False, follow_up_done_at__isnull=True
                )
                if follow_up is FollowUpState.OVERDUE:
                    matching = matching.filter(follow_up_due__lt=today)
            edges, page_info = await page(
                _ratings_page_query(matching), first=first, after=after, node=RatingNode.from_row
            )
        except DomainError as error:
            raise query_error(error) from None
        return RatingConnection(edges=edges, page_info=page_info, matching=matching)

    @strawberry.field(description="差评回访待办(中心管理办): 未办结的差评, 期限最早的在前")
    async def follow_ups(self, info: Info, first: int = 50) -> list[RatingNode]:
        viewer = info.context.query_viewer()
        try:
            if not 1 <= first <= MAX_PAGE:
                raise invalid(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")
            rows = (
                await _ratings_page_query(ratings.rating_query(viewer))
                .filter(follow_up_due__isnull=False, follow_up_done_at__isnull=True)
                .order_by("follow_up_due", "id")
                .limit(first)
            )
        except DomainError as error:
            raise query_error(error) from None
        return [RatingNode.from_row(r) for r in rows]

    @strawberry.field(description="我的好差评(申请人): 本企业已办结的服务, 待评价的在前")
    async def my_ratings(self, info: Info) -> list[RatingNode]:
        viewer = info.context.query_viewer()
        try:
            rows = (
                await _ratings_page_query(ratings.applicant_ratings(viewer))
                .order_by("-id")
                .limit(MAX_PAGE)
            )
        except DomainError as error:
            raise query_error(error) from None
        rows.sort(key=lambda r: r.rated_at is not None)
        return [RatingNode.from_row(r) for r in rows]


@strawberry.type
class NotificationMutation:
    @strawberry.mutation(description="办结评议: 凭短信评价码对已办结的服务评分(1-5), 无需登录")
    async def rate_service(
        self, info: Info, code: str, score: int, comment: str = ""
    ) -> RateServicePayload:
        ctx = info.context
        row, errors = await attempt(
            lambda: ratings.rate_service(
                code=code, score=score, comment=comment, now=ctx.now(), client=ctx.client
            )
        )
        if row is None or row.score is None or row.rated_at is None:
            return RateServicePayload(errors=errors)
        receipt = RatingReceipt(
            score=row.score,
            comment=row.comment,
            rated_at=row.rated_at,
            follow_up_due=row.follow_up_due,
        )
        return RateServicePayload(rating=receipt)

    @strawberry.mutation(description="申请人登录后评价本企业已办结的服务(1-5)")
    async def rate_my_service(
        self, info: Info, rating_id: relay.GlobalID, score: int, comment: str = ""
    ) -> RatingPayload:
        ctx = info.context

        async def run() -> RatingNode:
            row = await ratings.rate_own_service(
                viewer=ctx.require_viewer(),
                rating_id=decode_id(rating_id, "Rating", "ratingId"),
                score=score,
                comment=comment,
                now=ctx.now(),
            )
            full = await models.Rating.get(id=row.id).select_related("stage__project")
            return RatingNode.from_row(full)

        rating, errors = await attempt(run)
        return RatingPayload(rating=rating, errors=errors)

    @strawberry.mutation(description="中心管理办办结差评回访")
    async def close_follow_up(
        self, info: Info, rating_id: relay.GlobalID, note: str
    ) -> RatingPayload:
        ctx = info.context

        async def run() -> RatingNode:
            row = await ratings.close_follow_up(
                viewer=ctx.require_viewer(),
                rating_id=decode_id(rating_id, "Rating", "ratingId"),
                note=note,
                now=ctx.now(),
            )
            full = await models.Rating.get(id=row.id).select_related("stage__project")
            return RatingNode.from_row(full)

        rating, errors = await attempt(run)
        return RatingPayload(rating=rating, errors=errors)
