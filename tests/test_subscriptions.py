"""Live supervision events: the in-process bus and the graphql-transport-ws subscription.

The end-to-end tests serve the real GraphQL routes with uvicorn on a free port and talk to
them with the ``websockets`` client. The server runs as a task in the tests' own event loop
(not in a thread), because the database connection the test session opened belongs to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from approval.core.auth import create_user, issue_token
from approval.core.bus import EventBus
from server.app import create_app, graphql_routes
from server.settings import Settings
from storage.enums import Role, WarningLevel
from storage.models import Department, SupervisionEvent
from tests.conftest import Clock

TIMEOUT = 10
SUBSCRIBE = "subscription { supervisionEvents { key kind levelLabel departmentCode message } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def event(key: str, department: str | None = "fgw", **extra: Any) -> SupervisionEvent:
    department_id = (await Department.get(code=department)).id if department else None
    values: dict[str, Any] = {
        "key": key,
        "kind": "task",
        "level": WarningLevel.RED,
        "entity_type": "task",
        "entity_id": 1,
        "department_id": department_id,
        "message": f"【红色预警】{key} 已到期",
        **extra,
    }
    return await SupervisionEvent.create(at=datetime.now(UTC), **values)


# --- the bus alone ---------------------------------------------------------------------------


async def test_every_subscriber_gets_each_event_in_order(catalog: None) -> None:
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    reads = [asyncio.ensure_future(anext(s)) for s in (first, second)]
    await asyncio.sleep(0)  # both subscribed
    assert bus.subscriber_count == 2
    rows = [await event("bus:1"), await event("bus:2")]
    assert bus.publish(rows) == 2
    assert [r.key for r in await asyncio.gather(*reads)] == ["bus:1", "bus:1"]
    assert (await anext(first)).key == (await anext(second)).key == "bus:2"
    await first.aclose()
    assert bus.subscriber_count == 1
    bus.close()  # at shutdown every subscription ends
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(second), TIMEOUT)
    assert bus.publish([rows[0]]) == 0


async def test_a_slow_subscriber_is_dropped_with_a_log_line(
    catalog: None, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(queue_size=2)
    slow, fast = bus.subscribe(), bus.subscribe()
    slow_read = asyncio.ensure_future(anext(slow))
    fast_read = asyncio.ensure_future(anext(fast))
    await asyncio.sleep(0)
    rows = [await event(f"slow:{n}") for n in range(4)]
    with caplog.at_level(logging.WARNING, logger="onewindow.bus"):
        bus.publish(rows[:2])  # one batch of two: one queue entry
        assert (await slow_read).key == (await fast_read).key == "slow:0"
        assert (await anext(fast)).key == "slow:1"
        bus.publish(rows[2:3])  # the slow one stops reading: its queue holds two batches
        assert (await anext(fast)).key == "slow:2"
        bus.publish(rows[3:])
        assert (await anext(fast)).key == "slow:3"
        assert bus.subscriber_count == 2
        bus.publish(rows[:1])  # a third unread batch: too slow
        assert (await anext(fast)).key == "slow:0"
    assert any("dropping slow subscriber" in r.getMessage() for r in caplog.records)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(slow), TIMEOUT)
    assert bus.subscriber_count == 1


async def test_publish_from_another_thread_reaches_the_subscriber(catalog: None) -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    read = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0)
    row = await event("thread:1")
    await asyncio.to_thread(bus.publish, [row])
    assert (await asyncio.wait_for(read, TIMEOUT)).key == "thread:1"
    await subscription.aclose()


# --- end to end over a websocket -------------------------------------------------------------


class Served:
    def __init__(self, bus: EventBus, url: str) -> None:
        self.bus = bus
        self.url = url


@pytest.fixture
async def served(catalog: None, clock: Clock) -> AsyncIterator[Served]:
    bus = EventBus()
    app = Starlette(routes=graphql_routes(Settings(), clock, bus))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(bus, f"ws://127.0.0.1:{port}/graphql")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)


async def token_for(username: str, role: Role, clock: Clock, department: str | None = None) -> str:
    user = await create_user(
        username=username,
        password="test-password",
        display_name=username,
        role=role,
        department_code=department,
    )
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=1))
    return token


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return message


async def open_subscription(url: str, token: str | None) -> ClientConnection:
    ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert (await receive(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
    return ws


async def until_subscribed(bus: EventBus, count: int) -> None:
    for _ in range(500):
        if bus.subscriber_count >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{bus.subscriber_count} subscriber(s), expected {count}")


async def test_a_dashboard_receives_a_published_event(served: Served, clock: Clock) -> None:
    token = await token_for("dashboard", Role.SUPERVISOR, clock)
    ws = await open_subscription(served.url, token)
    try:
        await until_subscribed(served.bus, 1)
        row = await event("live:1", level=WarningLevel.YELLOW, message="【黄色预警】明日到期")
        served.bus.publish([row])
        message = await receive(ws)
        assert message["type"] == "next" and message["id"] == "1", message
        assert message["payload"]["data"]["supervisionEvents"] == {
            "key": "live:1",
            "kind": "task",
            "levelLabel": "黄色预警",
            "departmentCode": "fgw",
            "message": "【黄色预警】明日到期",
        }
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
    finally:
        await ws.close()
    for _ in range(500):  # the server side of the subscription ends with the socket
        if served.bus.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert served.bus.subscriber_count == 0


async def test_a_reviewer_receives_only_their_departments_events(
    served: Served, clock: Clock
) -> None:
    token = await token_for("reviewer-live", Role.REVIEWER, clock, department="fgw")
    ws = await open_subscription(served.url, token)
    try:
        await until_subscribed(served.bus, 1)
        served.bus.publish([await event("other:1", department="zrzy"), await event("own:1")])
        message = await receive(ws)
        assert message["payload"]["data"]["supervisionEvents"]["key"] == "own:1"
    finally:
        await ws.close()


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_a_subscription_without_a_valid_token_is_refused(
    served: Served, token: str | None
) -> None:
    ws = await open_subscription(served.url, token)
    try:
        message = await receive(ws)
        assert message["type"] in ("next", "error"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await ws.close()
    assert served.bus.subscriber_count == 0


async def test_an_agent_may_not_watch(served: Served, clock: Clock) -> None:
    token = await token_for("agent-live", Role.AGENT, clock)
    ws = await open_subscription(served.url, token)
    try:
        message = await receive(ws)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await ws.close()


def test_the_app_wires_one_bus_to_its_routes() -> None:
    app = create_app(Settings(database_url="sqlite://:memory:"))
    assert isinstance(app.state.bus, EventBus)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/graphql", "/projects/{code}/notice", "/ledger.xlsx"} <= paths
