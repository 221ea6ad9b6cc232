"""Users, passwords (argon2) and bearer tokens with an expiry; logins throttled per account and
per client address (``approval.core.throttle``), every failure audited."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from approval.core import audit, throttle
from approval.core.access import Viewer, require_role
from approval.core.errors import DomainError, ErrorCode, invalid
from storage.enums import Role
from storage.models import AccessToken, Department, Enterprise, PageTicket, Region, User

# argon2id with RFC 9106's low-memory parameters (t=3, 64 MiB) in one lane: the lanes of one
# hash would run as as many threads and take every core at once; in one lane a hash takes one
# core, the same work for a guesser (hashes made with more lanes are redone at the next login).
_hasher = PasswordHasher(parallelism=1)

MIN_PASSWORD_LENGTH = 8
HASHING_SLOTS = 2  # at most this many argon2 hashes at once per process (~0.2 s of one core each)


def hashing_slots(cores: int | None = None) -> int:
    """Hashes at once: one core is always left to the event loop (and at most HASHING_SLOTS)."""
    return max(1, min(HASHING_SLOTS, (cores or os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class Hashing:
    """argon2 off the event loop (in worker threads), at most ``slots`` at once, so logins
    never stall other requests and a flood of them queues instead of taking every core.

    ``turn(key)`` serialises the attempts on one account in this process: an attempt checks
    the throttle, hashes and records its failure before the next one checks, so concurrent
    guesses cannot all pass the check before the first failure is counted."""

    slots: asyncio.Semaphore
    turns: dict[str, tuple[asyncio.Lock, list[int]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def bounded(cls, slots: int | None = None) -> Hashing:
        return cls(asyncio.Semaphore(slots if slots is not None else hashing_slots()))

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s turn, then a hashing slot (hash inside with ``verify_held``)."""
        lock, users = self.turns.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock, self.slots:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self.turns[key]

    async def verify_held(self, password_hash: str, password: str) -> bool:
        """Verify while a slot is held (inside ``turn``)."""
        hasher = _hasher
        try:
            return await asyncio.to_thread(hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self.slots:
            return await self.verify_held(password_hash, password)

    async def hash_held(self, password: str) -> str:
        return await asyncio.to_thread(_hasher.hash, password)

    async def hash(self, password: str) -> str:
        async with self.slots:
            return await self.hash_held(password)


@functools.cache
def _stand_in_hash(hasher: PasswordHasher) -> str:
    """A hash no password matches, made with the hasher's parameters: an unknown user's login
    verifies against it, so it costs as much as a known user's."""
    return hasher.hash(secrets.token_urlsafe(32))


def _check_new_password(password: str, *, field: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid(
            f"password is shorter than {MIN_PASSWORD_LENGTH} characters; choose a longer one",
            field=field,
        )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    *,
    username: str,
    password: str,
    display_name: str,
    role: Role,
    department_code: str | None = None,
    region_code: str | None = None,
    enterprise_id: int | None = None,
) -> User:
    username = username.strip()
    if not username:
        raise invalid("username is empty; give a login name", field="username")
    _check_new_password(password, field="password")
    if await User.filter(username=username).exists():
        raise DomainError(
            ErrorCode.CONFLICT,
            f"user {username!r} already exists; pick another name",
            field="username",
        )
    department = None
    if department_code is not None:
        department = await Department.get_or_none(code=department_code)
        if department is None:
            raise invalid(
                f"department {department_code!r} is not in the catalog", field="department"
            )
    if role in (Role.REVIEWER, Role.INSPECTOR) and department is None:
        raise invalid(f"a {role.value} must belong to a department; give one", field="department")
    region = None
    if region_code is not None:
        region = await Region.get_or_none(code=region_code)
        if region is None:
            raise invalid(f"region {region_code!r} is not in the catalog", field="region")
    if role is Role.APPLICANT and enterprise_id is None:
        raise invalid("an applicant must belong to an enterprise; give its id", field="enterprise")
    if enterprise_id is not None and not await Enterprise.exists(id=enterprise_id):
        raise invalid(f"enterprise {enterprise_id} does not exist", field="enterprise")
    user = await User.create(
        username=username,
        display_name=display_name or username,
        password_hash=_hasher.hash(password),
        role=role,
        department=department,
        region=region,
        enterprise_id=enterprise_id,
    )
    await audit.record(
        actor_id=None,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        after={"username": username, "role": role.value},
    )
    return user


async def issue_token(*, user: User, now: datetime, ttl: timedelta) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires_at = now + ttl
    await AccessToken.create(token_hash=_token_hash(token), user=user, expires_at=expires_at)
    return token, expires_at


def _wrong_credentials() -> DomainError:
    return DomainError(
        ErrorCode.INVALID_CREDENTIALS,
        "username or password is wrong; check both and try again",
    )


async def _failed(*, name: str, user: User | None, client: str | None, now: datetime) -> None:
    """Count a failed password against the account and the address, and audit it."""
    locked = await throttle.failed(key=throttle.account_key(name), policy=throttle.ACCOUNT, now=now)
    await throttle.failed(key=throttle.address_key(client), policy=throttle.ADDRESS, now=now)
    await audit.record(
        actor_id=None,
        action="user.login_failed",
        entity_type="user",
        entity_id=user.id if user is not None else 0,
        after={"username": name[:64], "address": client, "locked": locked},
    )


async def login(
    *,
    username: str,
    password: str,
    now: datetime,
    ttl: timedelta,
    hashing: Hashing,
    client: str | None = None,
) -> tuple[str, datetime, User]:
    """A new token; INVALID_CREDENTIALS, or TOO_MANY_ATTEMPTS (before any hashing) while the
    account or the client address must wait or is locked.

    The throttle is read once at once (a refused guess waits for nothing), then again in the
    account's turn with a hashing slot held, so that attempts made at the same time are
    counted one after another, never all let through by the same reading."""
    name = username.strip()
    account, address = throttle.account_key(name), throttle.address_key(client)

    async def checked() -> None:
        await throttle.check(key=account, policy=throttle.ACCOUNT, now=now)
        await throttle.check(key=address, policy=throttle.ADDRESS, now=now)

    await checked()
    user = await User.get_or_none(username=name[:64], active=True)
    stored = user.password_hash if user is not None else _stand_in_hash(_hasher)
    async with hashing.turn(account):
        await checked()
        right = await hashing.verify_held(stored, password) and user is not None
        if not right:
            await _failed(name=name, user=user, client=client, now=now)
        elif _hasher.check_needs_rehash(stored):  # older parameters: redo it with today's
            assert user is not None
            user.password_hash = await hashing.hash_held(password)
            await user.save(update_fields=["password_hash"])
    if not right or user is None:
        raise _wrong_credentials()
    await throttle.clear(key=account)
    token, expires_at = await issue_token(user=user, now=now, ttl=ttl)
    await audit.record(actor_id=user.id, action="user.login", entity_type="user", entity_id=user.id)
    return token, expires_at, user


async def logout(*, viewer: Viewer) -> None:
    """Revoke the token the viewer came with."""
    await AccessToken.filter(id=viewer.token_id or 0).update(revoked=True)
    await audit.record(
        actor_id=viewer.user_id, action="user.logout", entity_type="user", entity_id=viewer.user_id
    )


async def change_password(
    *,
    viewer: Viewer,
    current_password: str,
    new_password: str,
    now: datetime,
    hashing: Hashing,
    client: str | None = None,
) -> int:
    """Set a new password (the current one checked and throttled like a login) and revoke every
    other token of the user; the number revoked."""
    user = await User.get(id=viewer.user_id)
    account = throttle.account_key(user.username)
    async with hashing.turn(account):
        await throttle.check(key=account, policy=throttle.ACCOUNT, now=now)
        right = await hashing.verify_held(user.password_hash, current_password)
        if not right:
            await _failed(name=user.username, user=user, client=client, now=now)
    if not right:
        raise DomainError(
            ErrorCode.INVALID_CREDENTIALS,
            "the current password is wrong; type it again",
            field="currentPassword",
        )
    return await _set_password(
        user,
        new_password,
        field="newPassword",
        hashing=hashing,
        keep_token_id=viewer.token_id,
        actor_id=user.id,
        action="user.password_change",
    )


async def _set_password(
    user: User,
    password: str,
    *,
    field: str,
    hashing: Hashing,
    keep_token_id: int | None,
    actor_id: int | None,
    action: str,
) -> int:
    """Store the new password and revoke the user's tokens but ``keep_token_id``; audited."""
    _check_new_password(password, field=field)
    user.password_hash = await hashing.hash(password)
    await user.save(update_fields=["password_hash"])
    revoked = (
        await AccessToken.filter(user_id=user.id, revoked=False)
        .exclude(id=keep_token_id or 0)
        .update(revoked=True)
    )
    await audit.record(
        actor_id=actor_id,
        action=action,
        entity_type="user",
        entity_id=user.id,
        after={"tokens_revoked": revoked},
    )
    return revoked


async def _administered(*, by: Viewer | None, username: str) -> User:
    """The user an administrator acts on: a supervisor (within their region) in the API; the
    server's operator (``by`` None) on the command line."""
    if by is not None:
        require_role(by, Role.SUPERVISOR)
    user = await User.get_or_none(username=username.strip()[:64])
    if user is None or (
        by is not None and by.region_ids is not None and user.region_id not in by.region_ids
    ):
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"user {username!r} does not exist or is not yours to administer; check the name",
            field="username",
        )
    return user


async def revoke_tokens(*, by: Viewer | None, username: str) -> int:
    """Revoke every token of the user (they must log in again); the number revoked."""
    user = await _administered(by=by, username=username)
    revoked = await AccessToken.filter(user_id=user.id, revoked=False).update(revoked=True)
    await audit.record(
        actor_id=by.user_id if by is not None else None,
        action="user.tokens_revoked",
        entity_type="user",
        entity_id=user.id,
        after={"tokens_revoked": revoked},
    )
    return revoked


async def reset_password(*, username: str, password: str, hashing: Hashing) -> int:
    """The server's operator sets a user's password (forgotten); every token is revoked."""
    user = await _administered(by=None, username=username)
    await throttle.clear(key=throttle.account_key(user.username))
    return await _set_password(
        user,
        password,
        field="password",
        hashing=hashing,
        keep_token_id=None,
        actor_id=None,
        action="user.password_reset",
    )


async def unlock(*, by: Viewer | None, username: str) -> bool:
    """Lift the user's login lockout and forget their failures; True when there was one."""
    user = await _administered(by=by, username=username)
    cleared = await throttle.clear(key=throttle.account_key(user.username))
    await audit.record(
        actor_id=by.user_id if by is not None else None,
        action="user.unlock",
        entity_type="user",
        entity_id=user.id,
        after={"cleared": cleared},
    )
    return cleared


async def authenticate(*, token: str, now: datetime) -> Viewer:
    """The viewer a bearer token stands for; TOKEN_EXPIRED or UNAUTHENTICATED otherwise."""
    row = await AccessToken.filter(token_hash=_token_hash(token)).select_related("user").first()
    if row is None or row.revoked or not row.user.active:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED,
            "the bearer token is unknown or revoked; log in again to get a new one",
        )
    if row.expires_at <= now:
        raise DomainError(
            ErrorCode.TOKEN_EXPIRED,
            f"the bearer token expired at {row.expires_at.isoformat()}; log in again",
        )
    return dataclasses.replace(await viewer_of(row.user), token_id=row.id)


# The pages a browser opens by link (server.pages): a ticket opens one of them, nothing else.
PAGE_PATHS = (re.compile(r"/projects/[^/?#\s]{1,64}/notice"), re.compile(r"/ledger\.xlsx"))
PAGE_TICKET_TTL = timedelta(seconds=60)


async def issue_page_ticket(*, viewer: Viewer, path: str, now: datetime) -> tuple[str, datetime]:
    """A ticket for one page (``?ticket=`` in its link), valid for a minute: a bearer token
    never goes into a URL, where access logs, histories and Referer headers would keep it."""
    if not any(pattern.fullmatch(path) for pattern in PAGE_PATHS):
        raise invalid(
            f"{path[:80]!r} is not a page a ticket opens; give /projects/<code>/notice or "
            "/ledger.xlsx",
            field="path",
        )
    ticket = secrets.token_urlsafe(32)
    expires_at = now + PAGE_TICKET_TTL
    await PageTicket.create(
        ticket_hash=_token_hash(ticket), user_id=viewer.user_id, path=path, expires_at=expires_at
    )
    await PageTicket.filter(expires_at__lt=now).delete()  # the spent ones
    return ticket, expires_at


async def redeem_page_ticket(*, ticket: str, path: str, now: datetime) -> Viewer:
    """The viewer a page ticket stands for on ``path``; UNAUTHENTICATED or TOKEN_EXPIRED."""
    row = (
        await PageTicket.filter(ticket_hash=_token_hash(ticket), path=path)
        .select_related("user")
        .first()
    )
    if row is None or not row.user.active:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED,
            "the ticket is unknown or made for another page; ask for a new one (pageTicket)",
        )
    if row.expires_at <= now:
        raise DomainError(
            ErrorCode.TOKEN_EXPIRED,
            "the ticket expired (tickets last a minute); ask for a new one (pageTicket)",
        )
    return await viewer_of(row.user)


async def viewer_of(user: User) -> Viewer:
    region_ids: frozenset[int] | None = None
    if user.region_id is not None:
        region_ids = await _region_subtree(user.region_id)
    return Viewer(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        department_id=user.department_id,
        enterprise_id=user.enterprise_id,
        region_ids=region_ids,
    )


async def _region_subtree(root_id: int) -> frozenset[int]:
    parents = dict(await Region.all().values_list("id", "parent_id"))
    found = {root_id}
    changed = True
    while changed:
        changed = False
        for region_id, parent_id in parents.items():
            if parent_id in found and region_id not in found:
                found.add(region_id)
                changed = True
    return frozenset(found)


def malformed_header() -> DomainError:
    return DomainError(
        ErrorCode.UNAUTHENTICATED,
        "the Authorization header is not 'Bearer <token>'; send the token from the login mutation",
    )
