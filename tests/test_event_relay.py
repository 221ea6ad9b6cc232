"""The event bus across instances: supervision events through a Redis stream (real Redis).

Two relays in this process stand for two instances (each with its own bus and Redis client);
tests/test_instances.py does the same with real server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from approval.core.bus import EventBus
from server.cluster import key, open_redis
from server.event_relay import EventRelay, decode_events, encode_events, running_relay
from storage.enums import WarningLevel
from storage.models import SupervisionEvent
from tests.cluster_support import cut_redis_clients

TIMEOUT = 10


def made(number: int, level: WarningLevel | None = WarningLevel.RED) -> SupervisionEvent:
    return SupervisionEvent(
        id=number,
        key=f"task:{number}:red",
        kind="task",
        level=level,
        entity_type="task",
        entity_id=number,
        project_id=None,
        department_id=None,
        message=f"【红色预警】任务 {number} 已到期",
        at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
    )


@dataclass
class Instance:
    """One instance's bus and relay, and what a subscriber of its bus heard."""

    name: str
    bus: EventBus
    relay: EventRelay
    heard: list[str]
    news: asyncio.Event

    async def until_heard(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.heard) < count:
                self.news.clear()
                await self.news.wait()


@contextlib.asynccontextmanager
async def instance(redis_url: str, prefix: str, name: str) -> AsyncIterator[Instance]:
    bus = EventBus()
    heard: list[str] = []
    news = asyncio.Event()
    subscription = bus.subscribe()

    async def listen() -> None:
        async for event in subscription:
            heard.append(event.key)
            news.set()

    redis = open_redis(redis_url, name=name)
    listener = asyncio.create_task(listen())
    try:
        async with running_relay(redis=redis, prefix=prefix, bus=bus, origin=name) as relay:
            await asyncio.sleep(0)  # the listener runs up to its first wait: subscribed
            assert bus.subscriber_count == 1
            yield Instance(name, bus, relay, heard, news)
    finally:
        bus.close()
        await asyncio.wait_for(listener, TIMEOUT)
        await redis.aclose()


def test_events_survive_the_trip_through_json(database: str) -> None:
    events = [made(1), made(2, level=None)]
    back = decode_events(encode_events(events))
    assert [(e.id, e.key, e.level, e.message, e.at) for e in back] == [
        (e.id, e.key, e.level, e.message, e.at) for e in events
    ]


async def test_every_instance_hears_every_event_once_in_one_order(
    database: str, redis_url: str, redis_prefix: str
) -> None:
    async with (
        instance(redis_url, redis_prefix, "a") as a,
        instance(redis_url, redis_prefix, "b") as b,
        instance(redis_url, redis_prefix, "c") as c,
    ):
        publishers = [a, b, c]
        await asyncio.gather(
            *(publishers[n % 3].relay.publish([made(n), made(n + 100)]) for n in range(30))
        )
        for each in publishers:
            await each.until_heard(60)
        expected = {made(n).key for n in range(30)} | {made(n + 100).key for n in range(30)}
        assert set(a.heard) == expected and len(a.heard) == 60
        assert a.heard == b.heard == c.heard  # one order: the stream's


async def test_an_instance_reads_on_after_its_connection_drops(
    database: str, redis_url: str, redis_prefix: str
) -> None:
    async with (
        instance(redis_url, redis_prefix, "writer") as writer,
        instance(redis_url, redis_prefix, "reader") as reader,
    ):
        await writer.relay.publish([made(1)])
        await reader.until_heard(1)
        # The reader's connection blocked in XREAD is cut; what is published meanwhile is
        # read from where it stopped once it is back.
        await cut_redis_clients(redis_url, "onewindow-reader")
        await writer.relay.publish([made(2)])
        await writer.relay.publish([made(3)])
        await reader.until_heard(3)
        assert reader.heard == [made(1).key, made(2).key, made(3).key]
        assert writer.heard == reader.heard


async def test_an_entry_appended_twice_is_delivered_once(
    database: str, redis_url: str, redis_prefix: str
) -> None:
    async with instance(redis_url, redis_prefix, "a") as a:
        redis = open_redis(redis_url, name="raw")
        try:
            stream = key(redis_prefix, "events")
            for _ in range(2):  # e.g. a retried append whose first answer was lost
                await redis.xadd(stream, {"origin": "x", "events": encode_events([made(7)])})
            await redis.xadd(stream, {"origin": "x", "events": "not json"})
            await redis.xadd(stream, {"origin": "x", "events": encode_events([made(8)])})
        finally:
            await redis.aclose()
        await a.until_heard(2)
        assert a.heard == [made(7).key, made(8).key]


async def test_without_redis_an_instance_still_tells_its_own_subscribers(
    database: str, redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with instance(redis_url, redis_prefix, "a") as a:
        a.relay.redis = open_redis("redis://127.0.0.1:1/0", name="gone")  # nobody listens there
        with caplog.at_level(logging.WARNING, logger="onewindow.server.events"):
            await a.relay.publish([made(5)])
        await a.until_heard(1)
        assert a.heard == [made(5).key]
        assert any("could not append 1 supervision event" in r.getMessage() for r in caplog.records)
        await a.relay.redis.aclose()
