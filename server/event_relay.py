"""Supervision events of every instance on every instance: the event bus through a Redis stream.

Without Redis, the supervisor's events go straight to this process's :class:`EventBus`. With
Redis, :meth:`EventRelay.publish` appends each batch to one stream (``<prefix>:events``,
``XADD``, trimmed to about ``max_length`` entries) and every instance, this one included,
hands what it reads from the stream to its own bus. So every instance delivers every event once
and all in the same order, whichever instance's supervisor fired it.

Why a stream and not pub/sub: a reader that lost its connection (a Redis restart, a network
hiccup) goes on from the last entry it read, so no event is missed while it reconnects, as
long as the stream still holds it. A batch that cannot be appended (Redis down) is delivered to
this instance's subscribers at once and logged: the other instances miss it, and its key is
remembered so that if the append did go through after all, it is not delivered twice. Every
delivered key is remembered for a while (``remember``), so an entry read twice is delivered
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from approval.core.bus import EventBus
from server.cluster import BLOCK_MILLISECONDS, key
from storage.enums import WarningLevel
from storage.models import SupervisionEvent

log = logging.getLogger("onewindow.server.events")

MAX_STREAM_LENGTH = 10_000  # entries kept for readers that reconnect
READ_COUNT = 100  # entries read at once
REMEMBERED_KEYS = 10_000  # event keys remembered against double delivery
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)  # waits between failed reads, the last repeated


def encode_events(events: Iterable[SupervisionEvent]) -> str:
    """A JSON list of the events' stored fields."""
    return json.dumps(
        [
            {
                "id": e.id,
                "key": e.key,
                "kind": e.kind,
                "level": e.level.value if e.level is not None else None,
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "project_id": e.project_id,
                "department_id": e.department_id,
                "message": e.message,
                "at": e.at.isoformat(),
            }
            for e in events
        ],
        ensure_ascii=False,
    )


def decode_events(text: str | bytes) -> list[SupervisionEvent]:
    """The events of :func:`encode_events` (unsaved model objects with their stored ids)."""
    rows: list[dict[str, Any]] = json.loads(text)
    return [
        SupervisionEvent(
            **{
                **row,
                "level": WarningLevel(row["level"]) if row["level"] is not None else None,
                "at": datetime.fromisoformat(row["at"]),
            }
        )
        for row in rows
    ]


class EventRelay:
    """Publishes supervision events through a Redis stream and feeds every event read from
    it (this instance's own included) to ``bus``; see the module's description."""

    def __init__(
        self,
        *,
        redis: Redis,
        prefix: str,
        bus: EventBus,
        origin: str,
        max_length: int = MAX_STREAM_LENGTH,
        remember: int = REMEMBERED_KEYS,
    ) -> None:
        self.redis = redis
        self.stream = key(prefix, "events")
        self.bus = bus
        self.origin = origin
        self.max_length = max_length
        self.remember = remember
        self.position = "0-0"  # the last entry read
        self.reading = False  # True while reads succeed
        self._delivered: OrderedDict[str, None] = OrderedDict()

    async def start_position(self) -> None:
        """Read from the stream's current end on (earlier entries are old news)."""
        last: Any = await self.redis.xrevrange(self.stream, count=1)
        self.position = last[0][0].decode() if last else "0-0"

    async def publish(self, events: list[SupervisionEvent]) -> None:
        if not events:
            return
        try:
            await self.redis.xadd(
                self.stream,
                {"origin": self.origin, "events": encode_events(events)},
                maxlen=self.max_length,
                approximate=True,
            )
        except (RedisError, OSError) as error:
            log.warning(
                "could not append %d supervision event(s) to Redis (%s); delivering them to "
                "this instance's subscribers only",
                len(events),
                error,
            )
            self._deliver(events)

    def _deliver(self, events: list[SupervisionEvent]) -> None:
        fresh = [e for e in events if e.key not in self._delivered]
        for event in fresh:
            self._delivered[event.key] = None
        while len(self._delivered) > self.remember:
            self._delivered.popitem(last=False)
        if fresh:
            self.bus.publish(fresh)

    def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self.position = entry_id.decode()
        try:
            events = decode_events(fields[b"events"])
        except (KeyError, ValueError, TypeError) as error:
            log.error("skipping unreadable entry %s of %s: %s", self.position, self.stream, error)
            return
        self._deliver(events)

    async def read_once(self, block: int = BLOCK_MILLISECONDS) -> int:
        """Read and deliver what follows ``position`` (waiting up to ``block`` ms for it);
        the number of entries read. Raises what Redis raises."""
        response: Any = await self.redis.xread(
            {self.stream: self.position}, count=READ_COUNT, block=block
        )
        count = 0
        for _, entries in response or []:
            for entry_id, fields in entries:
                self._handle(entry_id, fields)
                count += 1
        return count

    async def run(self) -> None:
        """Read until cancelled; a failed read is logged once and retried with backoff from
        the same position."""
        failures = 0
        while True:
            try:
                await self.read_once()
            except (RedisError, OSError) as error:
                if self.reading or failures == 0:
                    log.warning("reading supervision events from Redis failed: %s", error)
                self.reading = False
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                continue
            if not self.reading:
                if failures:
                    log.info("reading supervision events from Redis again")
                self.reading = True
            failures = 0


@asynccontextmanager
async def running_relay(
    *, redis: Redis, prefix: str, bus: EventBus, origin: str
) -> AsyncIterator[EventRelay]:
    """An :class:`EventRelay` reading in the background while the block runs."""
    relay = EventRelay(redis=redis, prefix=prefix, bus=bus, origin=origin)
    await relay.start_position()
    task = asyncio.create_task(relay.run(), name="onewindow-event-relay")
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
