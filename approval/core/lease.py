"""Leases: which server process runs a periodic job now.

A lease is one row per job name. :func:`acquire` takes it when it is free or expired and
renews it when the caller already holds it, in one conditional UPDATE (or one INSERT for a
name never taken): the database decides, so two processes never both hold a lease. A lease
only saves work; the jobs themselves stay exactly-once through their own unique keys and
conditional updates, because a process may stall past its lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from storage.models import Lease


async def acquire(*, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``.

    True when ``holder`` holds it afterwards, False when another holder's lease runs.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"a lease needs a positive time to live, got {ttl}")
    expires_at = now + ttl
    taken = await Lease.filter(Q(name=name) & (Q(holder=holder) | Q(expires_at__lte=now))).update(
        holder=holder, expires_at=expires_at
    )
    if taken:
        return True
    try:
        async with in_transaction():  # a savepoint when the caller is in a transaction
            await Lease.create(name=name, holder=holder, expires_at=expires_at)
    except IntegrityError:  # the row exists: another holder's lease still runs
        return False
    return True


async def release(*, name: str, holder: str) -> bool:
    """Give the lease back (only the holder can); True when it was held."""
    return bool(await Lease.filter(name=name, holder=holder).delete())


async def holder_of(*, name: str, now: datetime) -> str | None:
    """Who holds the lease ``name`` at ``now``, or None."""
    lease = await Lease.get_or_none(name=name, expires_at__gt=now)
    return lease.holder if lease is not None else None
