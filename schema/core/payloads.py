"""What every mutation does with its input and its failures: global ids decoded to row ids
with a typed error naming the field, and a domain failure turned into data (``errors``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry import relay

from approval.core.errors import DomainError, invalid
from approval.core.inputs import row_id
from schema.core.errors import UserError

T = TypeVar("T")


async def attempt(action: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    try:
        return await action(), []
    except DomainError as error:
        return None, [UserError.of(error)]


def decode_id(global_id: relay.GlobalID, type_name: str, field: str) -> int:
    number = row_id(global_id.node_id)
    if global_id.type_name != type_name or number is None:
        raise invalid(
            f"{field} must be the id of a {type_name} from this API, got "
            f"{global_id.type_name}:{global_id.node_id[:40]!r}",
            field=field,
        )
    return number
