"""Production mode (``ONEWINDOW_ENV=production``): what changes, and what stops a start.

In production the GraphiQL page is not served (a browser opening it is anonymous), the schema
refuses introspection, responses carry a Content-Security-Policy, and the server refuses to
start while a demo account still has the demo password or a setting still holds a default
secret (the values of ``deploy/env.example``, MinIO's ``minioadmin``).
"""

from __future__ import annotations

from approval.core.auth import Hashing
from approval.demo import APPLICANT, DEMO_PASSWORD, FIXED_USERS
from server.settings import Settings
from storage.models import Department, User

# Values no production secret may hold or contain.
DEFAULT_SECRETS = ("CHANGE-me", "minioadmin", "onewindow-demo")


class InsecureStart(RuntimeError):
    """The server refuses to start in production; the message names every problem."""


def secret_problems(settings: Settings) -> list[str]:
    secrets = {
        "ONEWINDOW_DATABASE_URL": settings.database_url,
        "ONEWINDOW_REDIS_URL": settings.redis_url,
        "ONEWINDOW_MINIO_ACCESS_KEY": settings.minio_access_key,
        "ONEWINDOW_MINIO_SECRET_KEY": settings.minio_secret_key,
        "ONEWINDOW_SMS_GATEWAY_KEY": settings.sms_gateway_key,
    }
    return [
        f"{name} holds a default secret ({default!r}); set a secret of your own"
        for name, value in secrets.items()
        for default in DEFAULT_SECRETS
        if default.lower() in value.lower()
    ]


async def demo_problems(hashing: Hashing) -> list[str]:
    """Demo accounts (the fixed ones, the applicant, the reviewers named after their
    department's code) still on the demo password."""
    names = {u.username for u in (*FIXED_USERS, APPLICANT)}
    names |= {str(code) for code in await Department.all().values_list("code", flat=True)}
    problems = []
    for user in await User.filter(active=True, username__in=sorted(names)).order_by("username"):
        if await hashing.verify(user.password_hash, DEMO_PASSWORD):
            problems.append(
                f"user {user.username!r} still has the demo password; change it "
                f"(onewindow set-password {user.username}) or deactivate the account"
            )
    return problems


async def refuse_insecure_start(settings: Settings) -> None:
    """InsecureStart naming every problem; nothing when production may start."""
    problems = secret_problems(settings) + await demo_problems(Hashing.bounded())
    if problems:
        raise InsecureStart(
            "refusing to start in production (ONEWINDOW_ENV=production): " + "; ".join(problems)
        )
