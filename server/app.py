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

from approval.core.bus import EventBus
from approval.fieldwork.policy import DocumentEditor
from schema.app import graphql_app
from server.fieldsync import FieldSync
from server.notifier import running_notifier
from server.object_store import object_store_of, upload_rules_of
from server.objects_endpoint import STATE_KEY as OBJECT_STORE_KEY
from server.objects_endpoint import object_routes
from server.pages import page_routes
from server.scheduler import OnEvents, running_supervisor
from server.settings import Settings, ensure_database_folder
from server.sync_endpoint import (
    STATE_KEY,
    AccessFor,
    PolicyFor,
    running_sync_server,
    sync_route,
)
from server.web import graphiql_page, home_for, web_routes
from storage.db import close_database, open_database
from storage.models import SupervisionEvent
from storage.objects import ObjectStore, ObjectStoreError

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


async def objects_problem(store: ObjectStore | None) -> str | None:
    """None when the object store answers a lookup, else what went wrong (one line)."""
    if store is None:
        return "no object store in this app"
    try:
        await store.stat("healthz/probe")
    except ObjectStoreError as error:
        return str(error).splitlines()[0]
    return None


async def healthz(request: Request) -> Response:
    database = await database_problem()
    objects = await objects_problem(getattr(request.state, OBJECT_STORE_KEY, None))
    if database is None and objects is None:
        return JSONResponse({"status": "ok", "database": "ok", "objects": "ok"})
    body: dict[str, str] = {
        "status": "error",
        "database": "ok" if database is None else "unavailable",
        "objects": "ok" if objects is None else "unavailable",
    }
    body["reason"] = "; ".join(p for p in (database, objects) if p is not None)
    return JSONResponse(body, status_code=503)


async def home(request: Request) -> Response:
    return RedirectResponse(home_for(request), status_code=307)


def graphql_routes(
    settings: Settings,
    clock: Clock,
    bus: EventBus | None = None,
    documents: DocumentEditor | None = None,
) -> list[BaseRoute]:
    """``/graphql`` for HTTP (the self-hosted GraphiQL for browsers on GET, unless the
    settings turn it off) and websockets (graphql-transport-ws subscriptions fed by ``bus``),
    served by ``schema.app``; mutations of what the field records change field documents
    through ``documents``."""
    app: ASGIApp = graphql_app(
        token_ttl=settings.token_ttl,
        clock=clock,
        bus=bus,
        documents=documents,
        upload_rules=upload_rules_of(settings),
        ide=graphiql_page(settings.web_dir) if settings.graphiql else None,
    )
    return [Route("/graphql", app), WebSocketRoute("/graphql", app)]


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    on_supervision_events: OnEvents | None = None,
    policy_for: PolicyFor | None = None,
    access_for: AccessFor | None = None,
) -> Starlette:
    """The whole HTTP face; the database opens when the server starts and closes at its end.

    Meanwhile the 电子监察 loop runs (``settings.supervise_seconds``; 0 turns it off) and hands
    the events it fires to ``on_supervision_events``.

    The event bus of this app (``app.state.bus``) pushes those events to GraphQL subscribers
    (``supervisionEvents``); it is made here because the routes need it, and closed with the
    lifespan (every subscription ends).

    Photos and material files go to the object store the settings name (a local folder by
    default, served by ``/objects/...``; MinIO when ``ONEWINDOW_MINIO_ENDPOINT`` is set), made
    here in the lifespan and handed to requests as ``request.state.object_store``.

    ``/sync/{doc}`` serves the CRDT documents: ``policy_for`` names each document's policy
    (None: unknown document) and ``access_for`` each viewer's rights on it (None: refused).
    By default they are the field documents' (``server.fieldsync``): ``inspection/{id}`` for
    its assigned inspectors and ``agency/{project id}`` for the project's agent, read-only for
    supervisors. GraphQL's ``recordCheck`` and ``fileConclusion`` edit those documents through
    the same sync server.
    """
    bus = EventBus()
    field_sync = FieldSync(clock=clock or utc_now)

    async def publish(events: list[SupervisionEvent]) -> None:
        bus.publish(events)
        if on_supervision_events is not None:
            await on_supervision_events(events)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        ensure_database_folder(settings.database_url)
        objects = object_store_of(settings)
        await objects.ensure_ready()
        log.info("object store ready: %r", objects)
        await open_database(settings.database_url)
        log.info("database opened")
        try:
            async with (
                running_notifier(settings, clock or utc_now),
                running_supervisor(settings, clock or utc_now, publish),
                running_sync_server(settings, policy_for or field_sync.policy_for) as sync_server,
                field_sync.editor.attached(sync_server),
            ):
                yield {STATE_KEY: sync_server, OBJECT_STORE_KEY: objects}
        finally:
            bus.close()
            await close_database()
            log.info("database closed")

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *graphql_routes(settings, clock or utc_now, bus, field_sync.editor),
        *page_routes(clock=clock or utc_now),
        sync_route(access_for=access_for or field_sync.access_for, clock=clock or utc_now),
        *object_routes(clock=clock or utc_now),
        *web_routes(settings.web_dir),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.bus = bus
    return app
