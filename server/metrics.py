"""Prometheus metrics of one server instance, served at ``GET /metrics``.

Each app has a registry of its own (:class:`Metrics`, made in ``create_app``; nothing global),
holding the process's own figures (memory, CPU, open files, garbage collections) and:

- ``onewindow_graphql_request_seconds{type,operation}``: each GraphQL query's and mutation's
  time, by operation name;
- ``onewindow_sync_rooms_open``, ``onewindow_sync_connections_open``: CRDT documents loaded in
  this instance, and sync connections (tablets, browsers) to it;
  ``onewindow_sync_rooms_resting``: those of the open rooms kept as their encoded state (unused
  for a few seconds: no pycrdt document in memory, see ``sync.room``);
- ``onewindow_sync_updates_committed_total``, ``onewindow_sync_updates_refused_total``:
  document updates from connections stored, and answered with an error, by this instance;
  ``onewindow_sync_commits_followed_total``: other instances' commits applied to rooms here;
- ``onewindow_sync_ack_seconds``: from a connection's group of updates read to its ack sent;
- ``onewindow_sync_materialisation_lag_seconds``: how long the oldest commit of an open room
  has waited for its rows (0 when every room's rows are written);
- ``onewindow_subscriptions_open``: GraphQL subscriptions of live supervision events here;
- ``onewindow_supervision_events_total``: supervision events delivered to them;
- ``onewindow_catalog_snapshots_total``: catalog snapshots read (one at start, one after each
  catalog change);
- ``onewindow_outbox_messages{status}``: the SMS outbox, messages ``pending`` delivery and
  ``failed`` for good (the database's figure, the same on every instance);
- ``onewindow_redis_up``: 1 when Redis answered this scrape's PING, else 0 (only with Redis).

Operation names come from clients, so the ``operation`` label takes at most
``MAX_OPERATION_NAMES`` distinct names per process; later new names count as ``other``, and an
operation without a name as ``anonymous``. Figures that live elsewhere (rooms, subscribers) are
read when Prometheus scrapes (:meth:`Metrics.watch`), never copied on every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.functions import Count

from storage.enums import NotificationStatus
from storage.models import Notification
from sync.server import SyncServer

log = logging.getLogger("onewindow.server.metrics")

MAX_OPERATION_NAMES = 200
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCRAPE_QUERY_SECONDS = 2.0
SYNC_FIGURES = (
    "onewindow_sync_rooms_open",
    "onewindow_sync_updates_committed",
    "onewindow_sync_updates_refused",
    "onewindow_sync_commits_followed",
    "onewindow_sync_materialisation_lag_seconds",
    "onewindow_sync_rooms_resting",
)


@dataclass(frozen=True)
class _Watched:
    name: str
    help: str
    counter: bool
    read: Callable[[], float]


class _Watcher(Collector):
    """Figures read from their owners at each scrape."""

    def __init__(self) -> None:
        self.watched: dict[str, _Watched] = {}

    def collect(self) -> Iterator[Metric]:
        for item in list(self.watched.values()):
            try:
                value = float(item.read())
            except Exception:  # an owner closing while scraped: leave the figure out
                continue
            family = CounterMetricFamily if item.counter else GaugeMetricFamily
            yield family(item.name, item.help, value=value)


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)
        self._watcher = _Watcher()
        registry.register(self._watcher)
        self.graphql_seconds = Histogram(
            "onewindow_graphql_request_seconds",
            "Time of GraphQL queries and mutations, by operation",
            ["type", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.connections_open = Gauge(
            "onewindow_sync_connections_open",
            "Sync connections (tablets, browsers) to this instance",
            registry=registry,
        )
        self.sync_ack_seconds = Histogram(
            "onewindow_sync_ack_seconds",
            "From a sync connection's group of updates read to its acknowledgement sent",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.outbox = Gauge(
            "onewindow_outbox_messages",
            "SMS outbox messages by status (pending: to deliver; failed: given up)",
            ["status"],
            registry=registry,
        )
        # Gauges asked at each scrape (e.g. Redis's PING), with what answers them.
        self._probes: dict[str, tuple[Gauge, Callable[[], Awaitable[float]]]] = {}
        self._operation_names: set[str] = set()

    def watch(
        self, name: str, help: str, read: Callable[[], float], *, counter: bool = False
    ) -> None:
        """Report ``read()`` as ``name`` at each scrape (a counter's name gets ``_total``)."""
        self._watcher.watched[name] = _Watched(name, help, counter, read)

    def forget(self, name: str) -> None:
        self._watcher.watched.pop(name, None)

    def watch_sync(self, server: SyncServer) -> None:
        """The sync server's figures (``SYNC_FIGURES``), read at each scrape."""
        figures = server.figures
        self.watch(
            SYNC_FIGURES[0], "CRDT documents loaded in this instance", lambda: len(server.rooms)
        )
        self.watch(
            SYNC_FIGURES[1],
            "Document updates from connections stored by this instance",
            lambda: figures.committed,
            counter=True,
        )
        self.watch(
            SYNC_FIGURES[2],
            "Document updates from connections answered with an error by this instance",
            lambda: figures.refused,
            counter=True,
        )
        self.watch(
            SYNC_FIGURES[3],
            "Other instances' commits applied to rooms of this instance",
            lambda: figures.followed,
            counter=True,
        )
        self.watch(
            SYNC_FIGURES[4],
            "How long the oldest commit of an open room has waited for its rows",
            server.materialisation_lag,
        )
        self.watch(
            SYNC_FIGURES[5],
            "Open CRDT documents kept as their encoded state (unused for a few seconds)",
            lambda: sum(1 for room in list(server.rooms.values()) if room.resting),
        )

    def forget_sync(self) -> None:
        for name in SYNC_FIGURES:
            self.forget(name)

    def probe(self, name: str, help: str, ask: Callable[[], Awaitable[float]]) -> None:
        """Await ``ask()`` at each scrape and report its answer as the gauge ``name``."""
        known = self._probes.get(name)
        gauge = known[0] if known else Gauge(name, help, registry=self.registry)
        self._probes[name] = (gauge, ask)

    # --- GraphQL -------------------------------------------------------------------------

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._operation_names:
            return name
        if len(self._operation_names) >= MAX_OPERATION_NAMES:
            return "other"
        self._operation_names.add(name)
        return name

    def observe_operation(self, kind: str, name: str | None, seconds: float) -> None:
        self.graphql_seconds.labels(kind, self.operation_label(name)).observe(seconds)

    # --- a scrape ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """What is read from elsewhere at each scrape: the outbox and the probes. A slow or
        failing source is logged and left as it was; the scrape still answers."""
        for name, (gauge, ask) in list(self._probes.items()):
            try:
                async with asyncio.timeout(SCRAPE_QUERY_SECONDS):
                    gauge.set(await ask())
            except Exception as error:
                log.warning("probe %s failed for /metrics: %s", name, error)
                gauge.set(0)
        try:
            async with asyncio.timeout(SCRAPE_QUERY_SECONDS):
                rows = (
                    await Notification.filter(
                        status__in=[NotificationStatus.PENDING, NotificationStatus.FAILED]
                    )
                    .annotate(count=Count("id"))
                    .group_by("status")
                    .values_list("status", "count")
                )
        except Exception as error:  # a scrape must answer even with the database away
            log.warning("could not count the outbox for /metrics: %s", error)
            return
        counts = {NotificationStatus(status): int(count) for status, count in rows}
        for status in (NotificationStatus.PENDING, NotificationStatus.FAILED):
            self.outbox.labels(status.value).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_route(metrics: Metrics) -> Route:
    """``GET /metrics`` in Prometheus's text format. Keep it off the public proxy (the
    compose file's nginx refuses it); Prometheus scrapes each instance directly."""

    async def endpoint(request: Request) -> Response:
        await metrics.refresh()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", endpoint, methods=["GET"])
