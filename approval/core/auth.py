"""Users, passwords (argon2) and bearer tokens with an expiry."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from approval.core import audit
from approval.core.access import Viewer
from approval.core.errors import DomainError, ErrorCode, invalid
from storage.enums import Role
from storage.models import AccessToken, Department, Enterprise, Region, User

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8


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
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid(
            f"password is shorter than {MIN_PASSWORD_LENGTH} characters; choose a longer one",
            field="password",
        )
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


async def login(
    *, username: str, password: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime, User]:
    user = await User.get_or_none(username=username.strip(), active=True)
    try:
        if user is None:
            raise VerificationError()
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise DomainError(
            ErrorCode.INVALID_CREDENTIALS,
            "username or password is wrong; check both and try again",
        ) from None
    token, expires_at = await issue_token(user=user, now=now, ttl=ttl)
    await audit.record(actor_id=user.id, action="user.login", entity_type="user", entity_id=user.id)
    return token, expires_at, user


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
