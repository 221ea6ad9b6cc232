"""The ASGI application: Starlette routes around the GraphQL app, the database in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp
from tortoise import Tortoise

from schema.app import graphql_app
from server.settings import Settings, ensure_database_folder
from storage.db import close_database, open_database

log = logging.getLogger("onewindow.server")

Clock = Callable[[], datetime]


def tune_gc(threshold: int) -> None:
    """Collect less often: a GraphQL request makes many short-lived objects, and with Python's
    default threshold (700) the collector ran so often it more than doubled the cost of a
    page of projects (bench/graphql_bench.py). ``gc.freeze`` first moves everything alive
    after start-up out of the collector's way. 0 keeps Python's defaults."""
    if threshold > 0:
        gc.collect()
        gc.freeze()
        gc.set_threshold(threshold, 20, 100)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def database_problem() -> str | None:
    """None when a trivial query answers, else what went wrong (one line)."""
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
    except Exception as error:  # any failure of the driver means "down" here
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


async def healthz(request: Request) -> Response:
    problem = await database_problem()
    if problem is not None:
        return JSONResponse(
            {"status": "error", "database": "unavailable", "reason": problem}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


async def home(request: Request) -> Response:
    return RedirectResponse("/graphql", status_code=307)


def graphql_routes(settings: Settings, clock: Clock) -> list[BaseRoute]:
    """``/graphql`` for HTTP (GraphiQL on GET) and websockets, served by ``schema.app``."""
    app: ASGIApp = graphql_app(token_ttl=settings.token_ttl, clock=clock)
    return [Route("/graphql", app), WebSocketRoute("/graphql", app)]


def create_app(settings: Settings, *, clock: Clock | None = None) -> Starlette:
    """The whole HTTP face; the database opens when the server starts and closes at its end."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        ensure_database_folder(settings.database_url)
        await open_database(settings.database_url)
        log.info("database opened")
        try:
            yield {}
        finally:
            await close_database()
            log.info("database closed")

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *graphql_routes(settings, clock or utc_now),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
