"""Liveness and readiness: /livez asks nothing, /readyz asks the database, the object store and
(when set) Redis, and says which part is missing; an instance set to use Redis does not start
without it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette

from server.app import create_app
from server.cluster import open_redis
from server.health import REDIS_KEY, health_routes
from server.objects_endpoint import STATE_KEY as OBJECT_STORE_KEY
from server.settings import Settings
from storage.db import open_database
from storage.local_store import LocalObjectStore, load_or_create_secret
from tests.sync_support import serving
from tests.test_cli import assert_clean_failure, onewindow

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_live_and_ready_with_redis(
    database: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        object_dir=tmp_path,
        supervise_seconds=0,
        notify_seconds=0,
    )
    try:
        async with serving(create_app(settings)) as base:
            http_base = base.replace("ws://", "http://", 1)
            async with httpx.AsyncClient(base_url=http_base, timeout=10) as http:
                assert (await http.get("/livez")).json() == {"status": "ok"}
                for path in ("/readyz", "/healthz"):
                    ready = await http.get(path)
                    assert ready.status_code == 200
                    assert ready.json() == {
                        "status": "ok",
                        "database": "ok",
                        "objects": "ok",
                        "redis": "ok",
                    }
                assert "onewindow_redis_up 1.0" in (await http.get("/metrics")).text
    finally:
        await open_database(database)  # the app's lifespan closed the session's connections


async def test_not_ready_without_redis_says_so(database: str, tmp_path: Path) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        store = LocalObjectStore(tmp_path, secret=load_or_create_secret(tmp_path / ".secret"))
        redis = open_redis(UNREACHABLE_REDIS, name="gone")
        yield {OBJECT_STORE_KEY: store, REDIS_KEY: redis}
        await redis.aclose()

    app = Starlette(routes=health_routes(), lifespan=lifespan)
    async with serving(app) as base:
        http_base = base.replace("ws://", "http://", 1)
        async with httpx.AsyncClient(base_url=http_base, timeout=30) as http:
            assert (await http.get("/livez")).status_code == 200
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["database"], body["objects"], body["redis"]) == (
        "error",
        "ok",
        "ok",
        "unavailable",
    )
    assert body["reason"].startswith("redis: ")


def test_serve_refuses_to_start_when_its_redis_does_not_answer(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    assert onewindow("migrate", database_url=url, cwd=tmp_path).returncode == 0
    result = onewindow(
        "serve", database_url=url, cwd=tmp_path, ONEWINDOW_REDIS_URL="redis://:pw@127.0.0.1:1/0"
    )
    line = assert_clean_failure(result)
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in line
    assert "unset it to run a single instance" in line
    assert "pw@" not in result.stderr
