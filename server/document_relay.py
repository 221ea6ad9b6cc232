"""Each commit of a CRDT document told to every instance at once: Redis pub/sub.

The log in the database is the one order of a document's updates (``sync.store``); Redis only
wakes the other instances. After a commit, :meth:`DocumentRelay.publish` queues
``(document, position before, position after, the update)`` and a sender task publishes it on
the channel ``<prefix>:doc:<document>``. Every instance listens to ``<prefix>:doc:*`` (one
pattern subscription, so no room waits for a subscription of its own) and hands what another
instance published to ``SyncServer.follow``: a room at the position before applies the update
at once, a room further on ignores it, a room behind reads the missing rows from the log.

Pub/sub drops what is published while a listener reconnects; that costs nothing but time: while
the relay is not ``listening`` the sync server reads its rooms' log positions every second, and
once it listens again it polls at once. Redis holds nothing that must outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.cluster import key
from server.event_relay import RETRY_SECONDS

log = logging.getLogger("onewindow.server.documents")

OUTBOX = 10_000  # commits queued for publishing at most; later ones are left to the poll
LISTEN_SECONDS = 1.0  # a read waits at most this long before looking again
_POSITIONS = struct.Struct(">QQ")

Follow = Callable[[str, int, int, bytes | None], None]


def encode_commit(origin: str, after: int, upto: int, update: bytes) -> bytes:
    """The message of one commit: origin length, origin, positions, the update."""
    name = origin.encode()[:255]
    return bytes([len(name)]) + name + _POSITIONS.pack(after, upto) + update


def decode_commit(data: bytes) -> tuple[str, int, int, bytes]:
    """``encode_commit`` read back; ValueError for anything else."""
    if not data:
        raise ValueError("empty message")
    length = data[0]
    start = 1 + length + _POSITIONS.size
    if len(data) < start:
        raise ValueError("message too short")
    after, upto = _POSITIONS.unpack_from(data, 1 + length)
    if upto <= after:
        raise ValueError(f"positions {after} -> {upto} do not move on")
    return data[1 : 1 + length].decode(errors="replace"), after, upto, data[start:]


class DocumentRelay:
    """The sync server's ``Fanout`` through Redis pub/sub (see the module's description)."""

    def __init__(self, *, redis: Redis, prefix: str, origin: str) -> None:
        self.redis = redis
        self.channel_prefix = key(prefix, "doc", "")
        self.origin = origin
        self.listening = False
        self.published = 0
        self.received = 0
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(OUTBOX)
        self._follow: Follow | None = None
        self._caught_up: Callable[[], object] | None = None

    def bind(self, follow: Follow, listening_again: Callable[[], object]) -> None:
        """Whom to tell of the other instances' commits, and what to run each time the relay
        starts listening (a poll: messages published meanwhile were lost)."""
        self._follow = follow
        self._caught_up = listening_again

    def publish(self, doc: str, after: int, upto: int, update: bytes) -> None:
        try:
            self._outbox.put_nowait(
                (self.channel_prefix + doc, encode_commit(self.origin, after, upto, update))
            )
        except asyncio.QueueFull:
            log.warning("%d commits wait for Redis; %s is left to the poll", OUTBOX, doc)

    async def send(self) -> None:
        """Publish the queued commits in order until cancelled; a failed one is logged and
        dropped (the listeners then find the rows by polling)."""
        failing = False
        while True:
            channel, message = await self._outbox.get()
            try:
                await self.redis.publish(channel, message)
                self.published += 1
                failing = False
            except (RedisError, OSError) as error:
                if not failing:
                    log.warning("publishing a commit to Redis failed: %s", error)
                failing = True

    def handle(self, message: dict[str, Any]) -> None:
        """One pub/sub message: another instance's commit goes to the sync server."""
        if message.get("type") != "pmessage":
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            origin, after, upto, update = decode_commit(bytes(message["data"]))
        except ValueError as error:
            log.error("skipping an unreadable message on %s: %s", channel, error)
            return
        if origin == self.origin or self._follow is None:
            return
        self.received += 1
        self._follow(channel.removeprefix(self.channel_prefix), after, upto, update or None)

    async def listen(self) -> None:
        """Listen until cancelled; after a failure, subscribe again with backoff."""
        failures = 0
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.channel_prefix + "*")
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                    if message is None:
                        continue
                    if message.get("type") == "psubscribe":
                        if failures:
                            log.info("listening to document commits on Redis again")
                        self.listening = True
                        failures = 0
                        if self._caught_up is not None:
                            self._caught_up()
                        continue
                    self.handle(message)
            except (RedisError, OSError) as error:
                if self.listening or failures == 0:
                    log.warning("listening to document commits on Redis failed: %s", error)
                self.listening = False
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
            finally:
                self.listening = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()


@asynccontextmanager
async def running_document_relay(
    *, redis: Redis, prefix: str, origin: str
) -> AsyncIterator[DocumentRelay]:
    """A :class:`DocumentRelay` sending and listening while the block runs."""
    relay = DocumentRelay(redis=redis, prefix=prefix, origin=origin)
    tasks = [
        asyncio.create_task(relay.send(), name="onewindow-document-publisher"),
        asyncio.create_task(relay.listen(), name="onewindow-document-listener"),
    ]
    try:
        yield relay
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
