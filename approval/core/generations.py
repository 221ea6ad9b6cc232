"""Generations: how a server instance knows its in-memory copy of reference data is stale.

Whoever changes reference data (the catalog) raises its generation in the same transaction
(:func:`advance`); an instance that keeps a copy remembers the generation it read it at and
compares it now and then with :func:`current` (one primary-key lookup). Nothing is sent
between instances, so a change made by any process (another instance, the ``onewindow
load-catalog`` command) reaches every instance the same way, with or without Redis.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.models import Generation

CATALOG = "catalog"


async def current(name: str) -> int:
    """The generation of ``name`` (0 until it first changes)."""
    values = await Generation.filter(name=name).values_list("value", flat=True)
    return int(values[0]) if values else 0  # type: ignore[call-overload]


async def advance(name: str) -> None:
    """Raise the generation of ``name`` by one; call it in the transaction of the change, so
    that a reader never sees the new generation with the old data."""
    if await Generation.filter(name=name).update(value=F("value") + 1):
        return
    try:
        async with in_transaction():  # a savepoint inside the caller's transaction
            await Generation.create(name=name, value=1)
    except IntegrityError:  # another process created the row first: count on it
        await Generation.filter(name=name).update(value=F("value") + 1)
