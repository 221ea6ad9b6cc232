"""Liveness and readiness, for load balancers, orchestrators and people.

- ``GET /livez``: the process answers (its event loop runs). Nothing else is asked, so a
  database outage never makes an orchestrator restart every instance at once.
- ``GET /readyz``: this instance can serve: the database answers, the object store answers and,
  with ``ONEWINDOW_REDIS_URL`` set, Redis answers. 200 with ``"status": "ok"``, else 503 with
  each part's state and the reasons. A balancer sends traffic only to ready instances.
- ``GET /healthz``: the same as ``/readyz`` (what earlier versions and the image's health check
  ask). Either with ``?detail=1`` adds ``warnings``: what an administrator should do soon
  without the instance being unready, e.g. next year's official holiday calendar not loaded
  from 1 November on (naming ``onewindow load-holidays``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import Tortoise

from approval.core.calendar import next_year_warning
from approval.core.dates import local_day
from server.cluster import redis_problem
from server.objects_endpoint import STATE_KEY as OBJECT_STORE_KEY
from storage.objects import ObjectStore, ObjectStoreError

REDIS_KEY = "redis"  # the lifespan's state: the Redis client, or None without Redis


async def database_problem() -> str | None:
    """None when a trivial query answers, else what went wrong (one line)."""
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
    except Exception as error:  # any failure of the driver means "down" here
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


async def objects_problem(store: ObjectStore | None) -> str | None:
    """None when the object store answers a lookup, else what went wrong (one line)."""
    if store is None:
        return "no object store in this app"
    try:
        await store.stat("healthz/probe")
    except ObjectStoreError as error:
        return str(error).splitlines()[0]
    return None


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


Clock = Callable[[], datetime]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


async def readyz(request: Request, clock: Clock = _wall_clock) -> Response:
    problems = {
        "database": await database_problem(),
        "objects": await objects_problem(getattr(request.state, OBJECT_STORE_KEY, None)),
    }
    redis: Redis | None = getattr(request.state, REDIS_KEY, None)
    if redis is not None:
        problems["redis"] = await redis_problem(redis)
    body: dict[str, str] = {
        part: "ok" if problem is None else "unavailable" for part, problem in problems.items()
    }
    reasons = [problem for problem in problems.values() if problem is not None]
    extra: dict[str, object] = {}
    if request.query_params.get("detail") == "1" and problems["database"] is None:
        warning = await next_year_warning(today=local_day(clock()))
        extra["warnings"] = [warning] if warning else []
    if not reasons:
        return JSONResponse({"status": "ok", **body, **extra})
    return JSONResponse(
        {"status": "error", **body, "reason": "; ".join(reasons), **extra}, status_code=503
    )


def health_routes(clock: Clock = _wall_clock) -> list[Route]:
    """The three routes; ``clock`` dates the warnings of ``?detail=1``."""

    async def ready(request: Request) -> Response:
        return await readyz(request, clock)

    return [
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/healthz", ready, methods=["GET"]),
    ]
