"""Relay cursor connections over a Tortoise query, newest first, keyset by id."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from strawberry import relay
from tortoise.queryset import QuerySet

from approval.core.errors import invalid
from approval.core.inputs import row_id

T = TypeVar("T", bound=relay.Node)
MAX_PAGE = 100


def encode_cursor(row_id: int) -> str:
    return base64.b64encode(f"cursor:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
        number = row_id(value)
        if kind == "cursor" and number is not None:
            return number
    except ValueError:
        pass
    raise invalid(
        f"cursor {cursor!r} is not one this API gave out; use an endCursor from a previous page",
        field="after",
    )


async def page(
    query: QuerySet[Any],
    *,
    first: int,
    after: str | None,
    node: Callable[[Any], T],
) -> tuple[list[relay.Edge[T]], relay.PageInfo]:
    if not 1 <= first <= MAX_PAGE:
        raise invalid(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")
    window = query.order_by("-id")
    if after is not None:
        window = window.filter(id__lt=decode_cursor(after))
    rows = await window.limit(first + 1)
    edges = [relay.Edge(node=node(row), cursor=encode_cursor(row.pk)) for row in rows[:first]]
    info = relay.PageInfo(
        has_next_page=len(rows) > first,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return edges, info
