"""Failed attempts slow down, then lock out, the account and the client address they came from.

A key (``account:<name>`` or ``address:<ip>``, or ``rating:<ip>`` for rating codes) may fail a
few times freely; after that each further attempt must wait a delay that doubles with every
failure, and past a ceiling the key is locked for a while (an administrator can lift an
account's lock: ``clear``). Failures older than the window are forgotten. A throttled attempt
is refused before any password is hashed, so a brute force costs the server almost nothing.
The counts live in the database, so every instance sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from approval.core.errors import DomainError, ErrorCode
from storage.models import LoginThrottle


@dataclass(frozen=True)
class Policy:
    free_failures: int  # failures before any delay
    lock_after: int  # failures that lock the key
    max_delay: timedelta = timedelta(seconds=60)
    lock_for: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(minutes=15)  # failures older than this are forgotten

    def delay(self, failures: int) -> timedelta:
        """How long after the last failure the next attempt may come."""
        extra = failures - self.free_failures
        if extra < 0:
            return timedelta(0)
        return min(timedelta(seconds=2 ** min(extra, 30)), self.max_delay)


ACCOUNT = Policy(free_failures=3, lock_after=10)
ADDRESS = Policy(free_failures=10, lock_after=50)
RATING = Policy(free_failures=5, lock_after=30)  # rating codes guessed from one address


def account_key(username: str) -> str:
    return f"account:{username.strip().lower()[:180]}"


def address_key(address: str | None) -> str:
    return f"address:{(address or 'unknown')[:180]}"


def rating_key(address: str | None) -> str:
    return f"rating:{(address or 'unknown')[:180]}"


async def check(*, key: str, policy: Policy, now: datetime) -> None:
    """TOO_MANY_ATTEMPTS while the key is locked or must still wait; otherwise nothing."""
    row = await LoginThrottle.get_or_none(key=key)
    if row is None:
        return
    if row.locked_until is not None and row.locked_until > now:
        raise DomainError(
            ErrorCode.TOO_MANY_ATTEMPTS,
            f"too many failed attempts: locked until {row.locked_until.isoformat()}; wait, or "
            "ask an administrator to unlock it",
        )
    if row.last_failure_at <= now - policy.window:
        return
    ready_at = row.last_failure_at + policy.delay(row.failures)
    if ready_at > now:
        seconds = max(1, int((ready_at - now).total_seconds() + 0.999))
        raise DomainError(
            ErrorCode.TOO_MANY_ATTEMPTS,
            f"too many failed attempts; try again in {seconds} s",
        )


async def failed(*, key: str, policy: Policy, now: datetime) -> bool:
    """Count a failure; True when it locked the key."""
    for _ in range(2):  # a row made by a concurrent failure between the read and the insert
        row = await LoginThrottle.get_or_none(key=key)
        if row is None:
            try:
                row = await LoginThrottle.create(key=key, failures=0, last_failure_at=now)
            except IntegrityError:
                continue
        failures = 1 if row.last_failure_at <= now - policy.window else row.failures + 1
        locked = failures >= policy.lock_after
        await LoginThrottle.filter(id=row.id).update(
            failures=failures,
            last_failure_at=now,
            locked_until=now + policy.lock_for if locked else row.locked_until,
        )
        return locked
    return False


async def clear(*, key: str) -> bool:
    """Forget the key's failures and lift its lock; True when there was something to forget."""
    return await LoginThrottle.filter(key=key).delete() > 0
