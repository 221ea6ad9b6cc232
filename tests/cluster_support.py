"""The tests of several instances: Redis, and real server processes on one database.

Redis runs on 127.0.0.1:6379 on these machines (``.ci/run`` starts it when it does not);
``ONEWINDOW_TEST_REDIS_URL`` names another. Without a reachable Redis the tests that need one
are skipped with the reason, unless ``REQUIRE_REDIS=1`` (CI sets it), which makes that a failure.
Other test runs may share the server, so every test gets a prefix of its own, and its keys are
removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from approval.core.auth import issue_token
from approval.fieldwork.inspections import assign_inspectors, schedule_joint_acceptance
from storage.db import recreate_postgres_database
from storage.models import User
from tests.fieldwork_support import at_acceptance, clerk, inspector, stage_departments
from tests.helpers import db_id
from tests.sync_support import free_port

if TYPE_CHECKING:
    from tests.conftest import Clock, GraphQLClient

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
async def redis_url() -> str:
    url = os.environ.get("ONEWINDOW_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        message = f"no Redis answers at {url} ({error}); start redis-server (see .ci/run)"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        await client.aclose()
    return url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"onewindow-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await delete_prefix(redis_url, prefix)


async def delete_prefix(redis_url: str, prefix: str) -> None:
    """Delete the Redis keys under ``prefix`` (a test's own)."""
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def cut_redis_clients(redis_url: str, client_name: str) -> None:
    """Kill the Redis connections of the clients named ``client_name`` (a network cut)."""
    admin = Redis.from_url(redis_url)
    try:
        clients = await admin.client_list()
        named = [c for c in clients if c.get("name") == client_name]
        assert named, clients
        for client in named:
            await admin.client_kill_filter(_id=client["id"])
    finally:
        await admin.aclose()


# --- server instances in processes of their own --------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60


@dataclass
class Instance:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def until_ready(self, seconds: float = START_SECONDS) -> None:
        """Wait until ``/readyz`` answers 200; AssertionError with the log if it never does."""
        async with httpx.AsyncClient(timeout=2) as http:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"instance {self.name} exited with {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if (await http.get(f"{self.http}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"instance {self.name} not ready in {seconds} s:\n{self.log_tail()}")

    async def metric(self, name: str) -> float | None:
        """The value of an unlabelled metric on /metrics (None when absent)."""
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"{self.http}/metrics")).text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
        return float(found.group(1)) if found else None

    async def until_metric(self, name: str, value: float, seconds: float = 30) -> None:
        """Poll (another process: nothing to await) until the metric has ``value``."""
        async with asyncio.timeout(seconds):
            while True:
                if await self.metric(name) == value:
                    return
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, seconds: float = 30) -> int:
        """Signal the process and wait for it to end; its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                async with asyncio.timeout(seconds):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(
                    f"instance {self.name} did not stop within {seconds} s:\n{self.log_tail()}"
                ) from None
        assert self.process.returncode is not None
        return self.process.returncode


class Cluster:
    """Server instances started as real processes (``tests.instance_process`` by default) on
    one database and one Redis prefix; every one is stopped at the end."""

    def __init__(self, *, database_url: str, redis_url: str, prefix: str, folder: Path) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.prefix = prefix
        self.folder = folder
        self.instances: list[Instance] = []

    def environment(self, port: int, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ONEWINDOW_DATABASE_URL": self.database_url,
            "ONEWINDOW_REDIS_URL": self.redis_url,
            "ONEWINDOW_REDIS_PREFIX": self.prefix,
            "ONEWINDOW_OBJECT_DIR": str(self.folder / "objects"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ONEWINDOW_SUPERVISE_SECONDS": "0",
            "ONEWINDOW_NOTIFY_SECONDS": "0",
            "ONEWINDOW_LOG_LEVEL": "info",
            "ONEWINDOW_SHUTDOWN_SECONDS": "5",
            # the tests' own interpreter's scripts (onewindow) first
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra,
        }

    async def launch(self, *command: str, **extra: str) -> Instance:
        """Start one instance (not waiting for it); ``command`` defaults to the test entry."""
        port = free_port()
        name = f"instance-{len(self.instances) + 1}"
        log = self.folder / f"{name}.log"
        argv = command or (sys.executable, "-m", "tests.as_main", "tests.instance_process")
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=self.environment(port, **extra),
                stdout=out,
                stderr=out,
            )
        instance = Instance(name=name, port=port, process=process, log=log)
        self.instances.append(instance)
        return instance

    async def start(self, count: int, **extra: str) -> list[Instance]:
        """``count`` instances started together, once every one is ready."""
        started = [await self.launch(**extra) for _ in range(count)]
        await asyncio.gather(*(instance.until_ready() for instance in started))
        return started

    async def close(self) -> None:
        for instance in self.instances:
            if instance.process.returncode is None:
                instance.process.kill()
                await instance.process.wait()


async def fresh_database(url: str, suffix: str) -> str:
    """The URL of an empty PostgreSQL database ``<name of url's>_<suffix>``, made afresh (the
    session's end drops it with the tests' own database)."""
    name = f"{urlsplit(url).path.lstrip('/')}_{suffix}"
    return await recreate_postgres_database(url, name)


def postgres_only(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip(
            "several instances share one PostgreSQL database: this test runs in the "
            "PostgreSQL leg of make test (ONEWINDOW_TEST_DATABASE_URL=postgres://...)"
        )


@pytest.fixture
async def cluster(
    database: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Instances on the tests' own PostgreSQL database (so a test arranges data in-process
    and reads what the instances wrote) and a Redis prefix of this test."""
    postgres_only(database)
    cluster = Cluster(
        database_url=database, redis_url=redis_url, prefix=redis_prefix, folder=tmp_path
    )
    try:
        yield cluster
    finally:
        await cluster.close()


# --- what the tests of several instances arrange -------------------------------------------


async def token_of(username: str, clock: Clock) -> str:
    """A bearer token of ``username`` valid long after the test clock (instances run on
    today's clock)."""
    user = await User.get(username=username)
    value, _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=400))
    return value


async def joint_acceptance(gql: GraphQLClient, clock: Clock) -> tuple[int, str, str]:
    """An inspection with one assigned inspector of zjj: (inspection id, username, check)."""
    project, stage = await at_acceptance(gql, clock)
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=await stage_departments(stage),
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    zjj = await inspector("zjj")
    await assign_inspectors(
        viewer=await clerk(), inspection_id=inspection.id, usernames=[zjj.username], now=clock()
    )
    return inspection.id, zjj.username, "fire-lane"
