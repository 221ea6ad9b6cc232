"""The ASGI application: Starlette routes around the GraphQL app, the database in the lifespan."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from approval.core.bus import EventBus
from approval.fieldwork.policy import DocumentEditor
from schema.app import graphql_app
from schema.core.limits import RequestLimits
from server.body_limit import BodyLimit
from server.cluster import instance_name, redis_client, redis_problem
from server.document_relay import DocumentRelay, running_document_relay
from server.event_relay import EventRelay, running_relay
from server.fieldsync import FieldSync
from server.headers import SecurityHeaders, content_security_policy, origin_of
from server.health import REDIS_KEY, health_routes
from server.metrics import Metrics, metrics_route
from server.notifier import running_notifier
from server.object_store import object_store_of, upload_rules_of
from server.objects_endpoint import STATE_KEY as OBJECT_STORE_KEY
from server.objects_endpoint import object_routes
from server.pages import page_routes
from server.production import InsecureStart, refuse_insecure_start
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


TRIM_AFTER_SECONDS = 30.0  # after a room unloads, memory goes back at most this often


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0)


class MemoryTrim:
    """Gives the memory of unloaded rooms back to the system. Freed pycrdt documents stay in
    glibc's heap (a bench: none of it comes back after ``gc.collect()``, all of it after
    ``malloc_trim``, ``bench/README.md``), so ``soon`` (called after each unload) collects and
    trims once, ``delay`` seconds later, however many rooms unloaded meanwhile."""

    def __init__(
        self, *, delay: float = TRIM_AFTER_SECONDS, trim: Callable[[], object] | None = None
    ) -> None:
        self.delay = delay
        self.trim = trim if trim is not None else malloc_trim()
        self.trimmed = 0
        self._handle: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        if self.trim is None or self._handle is not None:
            return
        self._handle = asyncio.get_running_loop().call_later(self.delay, self._run)

    def _run(self) -> None:
        self._handle = None
        if self.trim is not None:
            gc.collect()
            self.trim()
            self.trimmed += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def utc_now() -> datetime:
    return datetime.now(UTC)


async def home(request: Request) -> Response:
    return RedirectResponse(home_for(request), status_code=307)


def graphql_routes(
    settings: Settings,
    clock: Clock,
    bus: EventBus | None = None,
    documents: DocumentEditor | None = None,
    metrics: Metrics | None = None,
) -> list[BaseRoute]:
    """``/graphql`` for HTTP (the self-hosted GraphiQL for browsers on GET, unless the
    settings turn it off) and websockets (graphql-transport-ws subscriptions fed by ``bus``),
    served by ``schema.app``; mutations of what the field records change field documents
    through ``documents``; ``metrics`` times each operation and counts catalog snapshots."""
    app = graphql_app(
        token_ttl=settings.token_ttl,
        clock=clock,
        bus=bus,
        documents=documents,
        upload_rules=upload_rules_of(settings),
        observe_operation=metrics.observe_operation if metrics is not None else None,
        # In production a browser opening GraphiQL is anonymous: no page, no introspection.
        ide=graphiql_page(settings.web_dir)
        if settings.graphiql and not settings.production
        else None,
        limits=RequestLimits(
            time_budget_seconds=settings.request_seconds,
            refusal_pause_seconds=settings.refusal_pause_ms / 1000,
        ),
        introspection=not settings.production,
    )
    if metrics is not None:
        metrics.watch(
            "onewindow_catalog_snapshots",
            "Catalog snapshots read by this instance (one at start, one per catalog change)",
            lambda: app.catalog.reads,
            counter=True,
        )
    asgi: ASGIApp = app
    return [Route("/graphql", asgi), WebSocketRoute("/graphql", asgi)]


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
    lifespan (every subscription ends). With ``ONEWINDOW_REDIS_URL`` set, the events go
    through a Redis stream (``server.event_relay``), so every instance's subscribers hear
    every instance's events, once and in the same order.

    Photos and material files go to the object store the settings name (a local folder by
    default, served by ``/objects/...``; MinIO when ``ONEWINDOW_MINIO_ENDPOINT`` is set), made
    here in the lifespan and handed to requests as ``request.state.object_store``.

    ``/sync/{doc}`` serves the CRDT documents: ``policy_for`` names each document's policy
    (None: unknown document) and ``access_for`` each viewer's rights on it (None: refused).
    By default they are the field documents' (``server.fieldsync``): ``inspection/{id}`` for
    its assigned inspectors and ``agency/{project id}`` for the project's agent, read-only for
    supervisors. GraphQL's ``recordCheck`` and ``fileConclusion`` edit those documents through
    the same sync server.

    ``/livez``, ``/readyz`` (and ``/healthz``) answer load balancers (``server.health``);
    ``/metrics`` answers Prometheus (``server.metrics``, the app's ``app.state.metrics``).
    """
    clock = clock or utc_now
    bus = EventBus()
    metrics = Metrics()
    field_sync = FieldSync(clock=clock)
    name = instance_name()
    metrics.watch(
        "onewindow_supervision_events",
        "Supervision events delivered to this instance's subscribers",
        lambda: bus.published,
        counter=True,
    )
    metrics.watch(
        "onewindow_subscriptions_open",
        "GraphQL subscriptions of live supervision events on this instance",
        lambda: bus.subscriber_count,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        ensure_database_folder(settings.database_url)
        objects = object_store_of(settings)
        await objects.ensure_ready()
        log.info("object store ready: %r", objects)
        await open_database(settings.database_url)
        log.info("database opened")
        if settings.production:
            try:
                await refuse_insecure_start(settings)
            except InsecureStart:
                await close_database()
                raise
        trim = MemoryTrim()
        try:
            async with AsyncExitStack() as stack:
                stack.callback(trim.close)
                redis: Redis | None = None
                relay: EventRelay | None = None
                documents: DocumentRelay | None = None
                if settings.redis_url:
                    redis = await stack.enter_async_context(
                        redis_client(settings.redis_url, name=name)
                    )
                    relay = await stack.enter_async_context(
                        running_relay(
                            redis=redis, prefix=settings.redis_prefix, bus=bus, origin=name
                        )
                    )
                    documents = await stack.enter_async_context(
                        running_document_relay(
                            redis=redis, prefix=settings.redis_prefix, origin=name
                        )
                    )
                    metrics.probe("onewindow_redis_up", "1 when Redis answers", answers(redis))
                    log.info("cooperating with other instances through Redis as %s", name)

                async def publish(events: list[SupervisionEvent]) -> None:
                    if relay is not None:
                        await relay.publish(events)
                    else:
                        bus.publish(events)
                    if on_supervision_events is not None:
                        await on_supervision_events(events)

                await stack.enter_async_context(running_notifier(settings, clock))
                await stack.enter_async_context(
                    running_supervisor(settings, clock, publish, holder=name)
                )
                sync_server = await stack.enter_async_context(
                    running_sync_server(
                        settings,
                        policy_for or field_sync.policy_for,
                        fanout=documents,
                        on_ack=metrics.sync_ack_seconds.observe,
                        holder=name,
                        clock=clock,
                        on_unloaded=trim.soon,
                    )
                )
                if documents is not None:
                    documents.bind(sync_server.follow, sync_server.poll_soon)
                await stack.enter_async_context(field_sync.editor.attached(sync_server))
                metrics.watch_sync(sync_server)
                log.info("instance %s ready", name)
                yield {STATE_KEY: sync_server, OBJECT_STORE_KEY: objects, REDIS_KEY: redis}
                log.info("instance %s stopping: flushing documents, closing connections", name)
        finally:
            metrics.forget_sync()
            bus.close()
            await close_database()
            log.info("database closed")

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        *health_routes(clock),
        metrics_route(metrics),
        *graphql_routes(settings, clock, bus, field_sync.editor, metrics),
        *page_routes(clock=clock),
        sync_route(access_for=access_for or field_sync.access_for, clock=clock, metrics=metrics),
        *object_routes(clock=clock),
        *web_routes(settings.web_dir),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(BodyLimit, max_bytes=settings.max_body_kb * 1024),
            Middleware(SecurityHeaders, csp=production_csp(settings)),
        ],
    )
    app.state.bus = bus
    app.state.metrics = metrics
    return app


def production_csp(settings: Settings) -> str | None:
    """The Content-Security-Policy of production (the object store's public origin allowed
    for photos and uploads); None in development."""
    if not settings.production:
        return None
    files = settings.minio_public_url or (
        f"{'https' if settings.minio_secure else 'http'}://{settings.minio_endpoint}"
        if settings.minio_endpoint
        else ""
    )
    return content_security_policy(files_origin=origin_of(files))


def answers(redis: Redis) -> Callable[[], Awaitable[float]]:
    """1.0 when Redis answers a PING, else 0.0 (for the ``onewindow_redis_up`` gauge)."""

    async def ask() -> float:
        return 0.0 if await redis_problem(redis) else 1.0

    return ask
