"""Several instances of the server: the Redis connection they cooperate through.

With ``ONEWINDOW_REDIS_URL`` empty (the default) an instance shares nothing but the database and
needs no Redis. With it set, the lifespan opens one client (:func:`redis_client`, a pool of
connections) for everything the instances share through Redis; every key and channel name
starts with ``ONEWINDOW_REDIS_PREFIX`` (:func:`key`), so several deployments (or test runs) can
use one Redis server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

# A blocked stream read waits at most this long for news; the socket allows more.
BLOCK_MILLISECONDS = 1000
SOCKET_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0


def instance_name() -> str:
    """A name unique to this process, for logs and messages between instances."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def key(prefix: str, *parts: str) -> str:
    """The Redis key (or channel) ``<prefix>:<part>:...``."""
    return ":".join((prefix, *parts))


def redacted_redis_url(url: str) -> str:
    """The URL without its password, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))


def open_redis(url: str, *, name: str) -> Redis:
    """A client (with its own pool) for ``url``; nothing connects until the first command."""
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        health_check_interval=30,
        client_name=f"onewindow-{name}".replace(" ", "-")[:64],
    )


async def redis_problem(client: Redis | None) -> str | None:
    """None when Redis answers a PING (or none is configured), else what went wrong."""
    if client is None:
        return None
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        return f"redis: {type(error).__name__}: {error}".splitlines()[0]
    return None


@asynccontextmanager
async def redis_client(url: str, *, name: str) -> AsyncIterator[Redis]:
    """A client that answered a PING, closed at the end; RuntimeError naming the server (not
    the password) and what to do when it does not answer."""
    client = open_redis(url, name=name)
    try:
        problem = await redis_problem(client)
        if problem is not None:
            raise RuntimeError(
                f"cannot reach Redis at {redacted_redis_url(url)} ({problem}); start Redis, "
                "fix ONEWINDOW_REDIS_URL, or unset it to run a single instance"
            )
        yield client
    finally:
        await client.aclose()
