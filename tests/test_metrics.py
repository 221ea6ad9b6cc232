"""Prometheus metrics: GraphQL operations timed by a bounded set of names, the outbox counted
from the database, figures read from their owners at each scrape, and the whole app's /metrics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Doc
from starlette.applications import Starlette

from server.app import create_app, graphql_routes
from server.metrics import MAX_OPERATION_NAMES, Metrics, metrics_route
from server.settings import Settings
from storage.enums import NotificationStatus
from storage.models import Notification
from sync.server import Connection, SyncServer
from sync.store import UpdateStore
from tests.conftest import Clock
from tests.sync_support import PermissivePolicy, access, set_key


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_operation_names_from_clients_are_bounded() -> None:
    metrics = Metrics()
    assert metrics.operation_label(None) == "anonymous"
    names = [f"Query{n}" for n in range(MAX_OPERATION_NAMES + 50)]
    labels = [metrics.operation_label(name) for name in names]
    assert labels[:MAX_OPERATION_NAMES] == names[:MAX_OPERATION_NAMES]
    assert set(labels[MAX_OPERATION_NAMES:]) == {"other"}
    assert metrics.operation_label("Query3") == "Query3"  # a known name stays itself


async def test_graphql_operations_are_timed_by_name(catalog: None, clock: Clock) -> None:
    metrics = Metrics()
    app = Starlette(
        routes=[*graphql_routes(Settings(), clock, metrics=metrics), metrics_route(metrics)]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        for _ in range(3):
            await http.post("/graphql", json={"query": "query Hello { __typename }"})
        await http.post("/graphql", json={"query": "{ __typename }"})
        await http.post("/graphql", json={"query": "query {"})
        text = (await http.get("/metrics")).text
    found = samples(text)
    count = "onewindow_graphql_request_seconds_count"
    assert found[(count, (("operation", "Hello"), ("type", "query")))] == 3
    assert found[(count, (("operation", "anonymous"), ("type", "query")))] == 1
    assert found[(count, (("operation", "anonymous"), ("type", "invalid")))] == 1
    assert found[("onewindow_catalog_snapshots_total", ())] == 1


async def test_the_outbox_is_counted_from_the_database(catalog: None) -> None:
    now = datetime.now(UTC)
    for n, status in enumerate(
        [NotificationStatus.PENDING] * 3 + [NotificationStatus.FAILED] + [NotificationStatus.SENT]
    ):
        await Notification.create(
            key=f"metrics:{n}",
            moment="received",
            recipient="13800000000",
            text="您的申请已受理",
            status=status,
            next_attempt_at=now,
            created_at=now - timedelta(minutes=1),
        )
    metrics = Metrics()
    await metrics.refresh()
    found = samples(metrics.render().decode())
    assert found[("onewindow_outbox_messages", (("status", "pending"),))] == 3
    assert found[("onewindow_outbox_messages", (("status", "failed"),))] == 1


async def test_watched_figures_are_read_at_each_scrape_and_a_broken_one_is_left_out() -> None:
    metrics = Metrics()
    rooms = [1, 2]
    metrics.watch("onewindow_sync_rooms_open", "rooms", lambda: len(rooms))
    metrics.watch("broken", "fails", lambda: 1 / 0)
    assert samples(metrics.render().decode())[("onewindow_sync_rooms_open", ())] == 2
    rooms.append(3)
    found = samples(metrics.render().decode())
    assert found[("onewindow_sync_rooms_open", ())] == 3
    assert not any(name == "broken" for name, _ in found)
    assert any(name == "process_resident_memory_bytes" for name, _ in found)


async def test_the_app_serves_metrics_without_redis(database: str) -> None:
    app = create_app(Settings(database_url=database, supervise_seconds=0, notify_seconds=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.get("/metrics")  # no lifespan here: the figures it owns are absent
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("onewindow_subscriptions_open", ())] == 0
    assert not any(name == "onewindow_redis_up" for name, _ in found)


async def test_sync_figures_count_commits_refusals_acks_and_the_rows_lag(database: str) -> None:
    policy = PermissivePolicy()
    metrics = Metrics()
    server = SyncServer(
        store=UpdateStore(),
        policy_for=lambda _: policy,
        poll_seconds=0,
        materialise_delay=30,
        materialise_max_wait=30,
        rest_after=0.05,
        on_ack=metrics.sync_ack_seconds.observe,
    )
    metrics.watch_sync(server)
    try:
        room = await server._acquire(f"metrics/{uuid.uuid4().hex[:8]}")
        writer: Doc = Doc()
        made: list[bytes] = []
        writer.observe(lambda event: made.append(event.update))
        set_key("fine", 1)(writer)
        set_key("forbidden", 1)(writer)
        connection = Connection(channel=None, access=access(), acks=True)  # type: ignore[arg-type]
        await server._commit(room, connection, made)
        found = samples(metrics.render().decode())
        assert found[("onewindow_sync_updates_committed_total", ())] == 1
        assert found[("onewindow_sync_updates_refused_total", ())] == 1
        assert found[("onewindow_sync_rooms_open", ())] == 1
        assert found[("onewindow_sync_rooms_resting", ())] == 0  # just written
        assert found[("onewindow_sync_ack_seconds_count", ())] == 1
        assert found[("onewindow_sync_materialisation_lag_seconds", ())] > 0
        await room.materialise()
        found = samples(metrics.render().decode())
        assert found[("onewindow_sync_materialisation_lag_seconds", ())] == 0
        for _ in range(200):  # unused for rest_after (bounded wait)
            if room.resting:
                break
            await asyncio.sleep(0.05)
        found = samples(metrics.render().decode())
        assert found[("onewindow_sync_rooms_resting", ())] == 1
        server._release(room)
    finally:
        await server.close()
    metrics.forget_sync()
    assert not any(
        name.startswith("onewindow_sync_updates") for name, _ in samples(metrics.render().decode())
    )
