"""Commits of CRDT documents told to every instance through Redis pub/sub (real Redis).

Two relays in this process stand for two instances; tests/test_instances.py runs the whole
path with real server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from server.cluster import open_redis
from server.document_relay import (
    DocumentRelay,
    decode_commit,
    encode_commit,
    running_document_relay,
)
from tests.cluster_support import cut_redis_clients

TIMEOUT = 10


@dataclass
class Heard:
    commits: list[tuple[str, int, int, bytes | None]] = field(default_factory=list)
    polls: int = 0
    news: asyncio.Event = field(default_factory=asyncio.Event)

    def follow(self, doc: str, after: int, upto: int, update: bytes | None) -> None:
        self.commits.append((doc, after, upto, update))
        self.news.set()

    def poll(self) -> None:
        self.polls += 1
        self.news.set()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not condition():
                self.news.clear()
                await self.news.wait()


@contextlib.asynccontextmanager
async def relay(
    redis_url: str, prefix: str, name: str
) -> AsyncIterator[tuple[DocumentRelay, Heard]]:
    redis = open_redis(redis_url, name=name)
    heard = Heard()
    try:
        async with running_document_relay(redis=redis, prefix=prefix, origin=name) as made:
            made.bind(heard.follow, heard.poll)
            await heard.until(lambda: made.listening, "listening")
            yield made, heard
    finally:
        await redis.aclose()


def test_a_commit_survives_the_trip_and_nonsense_is_refused() -> None:
    message = encode_commit("a", 7, 9, b"\x01\x02")
    assert decode_commit(message) == ("a", 7, 9, b"\x01\x02")
    for bad in (b"", b"\x05ab", encode_commit("a", 9, 9, b"x"), encode_commit("a", 9, 3, b"")):
        with pytest.raises(ValueError):
            decode_commit(bad)


async def test_each_instance_hears_the_others_commits_in_order_and_not_its_own(
    database: str, redis_url: str, redis_prefix: str
) -> None:
    async with (
        relay(redis_url, redis_prefix, "a") as (a, heard_a),
        relay(redis_url, redis_prefix, "b") as (b, heard_b),
    ):
        assert heard_a.polls == heard_b.polls == 1  # listening: a poll for what was missed
        for position in range(1, 6):
            a.publish("inspection/1", position - 1, position, bytes([position]))
        b.publish("agency/2", 10, 12, b"\x00\x00")
        await heard_b.until(lambda: len(heard_b.commits) == 5, "a's five commits")
        await heard_a.until(lambda: len(heard_a.commits) == 1, "b's commit")
        assert heard_b.commits == [("inspection/1", p - 1, p, bytes([p])) for p in range(1, 6)]
        assert heard_a.commits == [("agency/2", 10, 12, b"\x00\x00")]
        admin = Redis.from_url(redis_url)
        try:  # somebody else's nonsense on the channel is skipped
            await admin.publish(f"{redis_prefix}:doc:inspection/1", b"\xff")
        finally:
            await admin.aclose()
        a.publish("inspection/1", 5, 6, b"\x06")
        await heard_b.until(lambda: len(heard_b.commits) == 6, "the commit after the nonsense")
        assert a.published == 6 and b.received == 6


async def test_a_listener_cut_off_polls_once_it_listens_again(
    database: str, redis_url: str, redis_prefix: str
) -> None:
    async with relay(redis_url, redis_prefix, "cut") as (cut, heard):
        await cut_redis_clients(redis_url, "onewindow-cut")
        await heard.until(lambda: heard.polls == 2, "listening again")
        assert cut.listening
