"""One's own session and password; an administrator's revocation and unlock."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import strawberry

from approval.core import auth
from schema.core.context import Info
from schema.core.errors import UserError
from schema.core.payloads import attempt


@strawberry.type
class AccountPayload:
    ok: bool = False
    tokens_revoked: int = strawberry.field(default=0, description="撤销的令牌数")
    errors: list[UserError] = strawberry.field(default_factory=list)


def _payload(result: int | bool | None, errors: list[UserError]) -> AccountPayload:
    if result is None:
        return AccountPayload(errors=errors)
    return AccountPayload(ok=True, tokens_revoked=0 if isinstance(result, bool) else result)


@strawberry.type
class PageTicketPayload:
    url: str | None = strawberry.field(default=None, description="带票据的页面地址, 一分钟内有效")
    expires_at: datetime | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="打开打印页面 (联合告知书、台账) 的一次性短时票据")
    async def page_ticket(self, info: Info, path: str) -> PageTicketPayload:
        ctx = info.context
        page, _, query = path.partition("?")
        result, errors = await attempt(
            lambda: auth.issue_page_ticket(viewer=ctx.require_viewer(), path=page, now=ctx.now())
        )
        if result is None:
            return PageTicketPayload(errors=errors)
        ticket, expires_at = result
        tail = urlencode([*parse_qsl(query), ("ticket", ticket)])
        return PageTicketPayload(url=f"{page}?{tail}", expires_at=expires_at)

    @strawberry.mutation(description="退出登录: 撤销本次使用的令牌")
    async def logout(self, info: Info) -> AccountPayload:
        async def run() -> int:
            await auth.logout(viewer=info.context.require_viewer())
            return 1

        return _payload(*await attempt(run))

    @strawberry.mutation(description="修改密码, 并撤销本人其他令牌")
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> AccountPayload:
        ctx = info.context
        return _payload(
            *await attempt(
                lambda: auth.change_password(
                    viewer=ctx.require_viewer(),
                    current_password=current_password,
                    new_password=new_password,
                    now=ctx.now(),
                    hashing=ctx.hashing,
                    client=ctx.client,
                )
            )
        )

    @strawberry.mutation(description="撤销某用户的全部令牌 (中心管理办)")
    async def revoke_user_tokens(self, info: Info, username: str) -> AccountPayload:
        ctx = info.context
        return _payload(
            *await attempt(lambda: auth.revoke_tokens(by=ctx.require_viewer(), username=username))
        )

    @strawberry.mutation(description="解除某用户的登录锁定 (中心管理办)")
    async def unlock_login(self, info: Info, username: str) -> AccountPayload:
        ctx = info.context
        return _payload(
            *await attempt(lambda: auth.unlock(by=ctx.require_viewer(), username=username))
        )
