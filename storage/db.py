"""Database configuration, start-up and migrations."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api

MODELS_MODULE = "storage.models"
MIGRATIONS_MODULE = "storage.migrations"

# Used only by `tortoise makemigrations` (see [tool.tortoise] in pyproject.toml): a developer's
# tool that diffs the models against the migration files; it never touches a real database.
MIGRATIONS_CONFIG: dict[str, Any] = {
    "connections": {"default": "sqlite://:memory:"},
    "apps": {
        "models": {"models": [MODELS_MODULE], "migrations": MIGRATIONS_MODULE},
    },
}


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "Asia/Shanghai",
    }


async def open_database(database_url: str) -> None:
    # The global fallback lets every task (uvicorn serves the lifespan and the requests in
    # different tasks) see the connections opened here, as Tortoise's own RegisterTortoise does.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate(
    database_url: str, *, progress: Callable[[str, str, str], object] | None = None
) -> None:
    """Apply every migration not yet applied; safe to run on every start."""
    await migrate_api(config=tortoise_config(database_url), progress=progress)


# Every instance's set-up takes this PostgreSQL advisory lock ("onew" in ASCII).
SETUP_LOCK_KEY = 0x6F6E6577
SETUP_LOCK_POLL_SECONDS = 0.2
SETUP_LOCK_REPORT_SECONDS = 10.0


def _postgres_dsn(database_url: str) -> str:
    """The asyncpg DSN of a Tortoise ``postgres://`` URL (Tortoise's own pool options are
    dropped; ``sslmode`` is kept)."""
    parts = urlsplit(database_url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k in ("sslmode", "ssl")]
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), ""))


async def recreate_postgres_database(url: str, name: str, *, create: bool = True) -> str:
    """Drop the database ``name`` on the PostgreSQL server of ``url`` (if it exists) and, unless
    ``create`` is False, create it empty; the URL naming it. For tests and benches: never point
    it at data you keep."""
    import asyncpg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing database name {name!r}: use letters, digits and _")
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit(("postgresql", parts.netloc, "/postgres", "", "")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


@asynccontextmanager
async def setup_lock(
    database_url: str, *, waiting: Callable[[float], object] | None = None
) -> AsyncIterator[None]:
    """Held while the schema, the catalog and the demo data are set up, so that replicas
    starting together on an empty database take turns instead of racing (the first migrates,
    the others find nothing left to do).

    On PostgreSQL, a session advisory lock on a connection of its own: it is given back when
    the block ends or the connection drops, so a process killed mid-way never leaves it taken.
    On SQLite, an exclusive ``flock`` of a file next to the database, given back by the
    kernel when the process ends. An in-memory database has nobody to share with.
    ``waiting(seconds)`` hears that another process holds the lock, at once and every
    ``SETUP_LOCK_REPORT_SECONDS`` while this one waits.
    """
    if database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        async with _postgres_lock(database_url, waiting):
            yield
        return
    location = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if not database_url.startswith("sqlite://") or location in ("", ":memory:"):
        yield
        return
    async with _file_lock(Path(f"{location}.setup-lock"), waiting):
        yield


async def _wait_for(
    take: Callable[[], Awaitable[bool]], waiting: Callable[[float], object] | None
) -> None:
    started = time.monotonic()
    reported = -SETUP_LOCK_REPORT_SECONDS
    while not await take():
        waited = time.monotonic() - started
        if waiting is not None and waited - reported >= SETUP_LOCK_REPORT_SECONDS:
            reported = waited
            waiting(waited)
        await asyncio.sleep(SETUP_LOCK_POLL_SECONDS)


@asynccontextmanager
async def _postgres_lock(
    database_url: str, waiting: Callable[[float], object] | None
) -> AsyncIterator[None]:
    import asyncpg

    connection = await asyncpg.connect(_postgres_dsn(database_url))
    try:

        async def take() -> bool:
            taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", SETUP_LOCK_KEY)
            return bool(taken)

        await _wait_for(take, waiting)
        yield
    finally:
        await connection.close()  # gives the lock back with the session


@asynccontextmanager
async def _file_lock(path: Path, waiting: Callable[[float], object] | None) -> AsyncIterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        async def take() -> bool:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        await _wait_for(take, waiting)
        yield
    finally:
        os.close(descriptor)  # gives the lock back
