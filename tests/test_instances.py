"""Several server instances on one PostgreSQL database and one Redis: real processes.

Each test starts its instances with ``tests.cluster_support.Cluster`` (``python -m
tests.instance_process``, the app as ``onewindow serve`` runs it) on the tests' own database,
arranges data in-process and talks to the instances over HTTP and websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from pycrdt import Doc, Map
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from approval.catalog.load import load_catalog
from approval.catalog.parse import load_default_catalog
from approval.fieldwork.documents import inspection_doc_name
from storage.models import CheckResult, Department, SupervisionEvent, Task
from tests.cluster_support import (
    ROOT,
    Cluster,
    Instance,
    fresh_database,
    joint_acceptance,
    token_of,
)
from tests.conftest import Clock, GraphQLClient
from tests.helpers import db_id
from tests.supervision_support import accepted, at
from tests.sync_support import SyncClient

TIMEOUT = 30
SUBSCRIBE = "subscription { supervisionEvents { key } }"


class Subscriber:
    """A dashboard's live supervision events over graphql-transport-ws, kept in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.keys: list[str] = []
        self.news = asyncio.Event()
        self.close_code: int | None = None
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, instance: Instance, token: str) -> Subscriber:
        ws = await connect(
            f"{instance.ws}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
        )
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                message = json.loads(frame)
                assert message["type"] == "next", message
                self.keys.append(message["payload"]["data"]["supervisionEvents"]["key"])
                self.news.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.news.set()

    async def until(self, keys: set[str]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not keys <= set(self.keys):
                assert self.close_code is None, f"closed with {self.close_code}"
                self.news.clear()
                await self.news.wait()

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self.reader, TIMEOUT)


@contextlib.asynccontextmanager
async def subscribed(instances: list[Instance], token: str) -> AsyncIterator[list[Subscriber]]:
    subscribers = [await Subscriber.open(instance, token) for instance in instances]
    try:
        for instance in instances:  # the subscription is registered on every instance
            await instance.until_metric("onewindow_subscriptions_open", 1)
        yield subscribers
    finally:
        for subscriber in subscribers:
            await subscriber.close()


async def event_keys() -> set[str]:
    return {str(key) for key in await SupervisionEvent.all().values_list("key", flat=True)}


async def test_every_instance_hears_every_supervision_event_once(
    cluster: Cluster, gql: GraphQLClient, clock: Clock
) -> None:
    # Every instance runs the supervisor each second on a clock past every deadline; whichever
    # holds the lease fires the events of the projects accepted meanwhile.
    instances = await cluster.start(
        3, ONEWINDOW_SUPERVISE_SECONDS="1", ONEWINDOW_TEST_CLOCK=at("2026-03-17").isoformat()
    )
    token = await token_of("supervisor", clock)
    async with subscribed(instances, token) as subscribers:
        await accepted(gql)
        first = await asyncio.wait_for(until_events(), TIMEOUT)
        for subscriber in subscribers:
            await subscriber.until(first)
        await accepted(gql)  # a second wave: the first must not come again meanwhile
        every = await asyncio.wait_for(until_events(more_than=first), TIMEOUT)
        for subscriber in subscribers:
            await subscriber.until(every)
        stored = await event_keys()
        assert len(stored) > len(first) > 0
        for subscriber in subscribers:
            assert sorted(subscriber.keys) == sorted(stored), "an event missed or repeated"
        assert subscribers[0].keys == subscribers[1].keys == subscribers[2].keys
    for instance in instances:
        assert await instance.metric("onewindow_supervision_events_total") == len(stored)
        assert await instance.metric("onewindow_redis_up") == 1
    log = instances[0].log.read_text(encoding="utf-8").splitlines()
    ready = [json.loads(line) for line in log if '"onewindow.server"' in line]
    assert any(entry["message"].endswith(" ready") for entry in ready), log[:20]
    assert all(entry["level"] == "info" and "time" in entry for entry in ready)


async def until_events(more_than: set[str] | None = None) -> set[str]:
    """The stored event keys once there are some (more than ``more_than``) and a second
    look finds no more (the scan that fired them has committed all of them)."""
    previous: set[str] = set()
    while True:
        keys = await event_keys()
        if keys and keys == previous and keys != (more_than or set()):
            return keys
        previous = keys
        await asyncio.sleep(0.5)


DEPARTMENTS = (
    "{ projects(first: 1) { edges { node { stages { tasks { department { code name } } } } } } }"
)


async def department_names(http: httpx.AsyncClient, instance: Instance, token: str) -> set[str]:
    response = await http.post(
        f"{instance.http}/graphql",
        json={"query": DEPARTMENTS},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return {
        task["department"]["name"]
        for edge in body["data"]["projects"]["edges"]
        for stage in edge["node"]["stages"]
        for task in stage["tasks"]
    }


async def test_a_catalog_change_reaches_every_instance_within_a_second(
    cluster: Cluster, gql: GraphQLClient, clock: Clock
) -> None:
    _, stage = await accepted(gql)
    task = await Task.filter(stage_id=db_id(stage["id"])).first().prefetch_related("department")
    assert task is not None
    code, old = task.department.code, task.department.name
    instances = await cluster.start(2)
    token = await token_of("supervisor", clock)
    async with httpx.AsyncClient(timeout=10) as http:
        for instance in instances:  # each has read its snapshot
            assert old in await department_names(http, instance, token)
        shipped = load_default_catalog()
        renamed = dataclasses.replace(
            shipped,
            departments=tuple(
                dataclasses.replace(d, name=f"{d.name}(更名)") if d.code == code else d
                for d in shipped.departments
            ),
        )
        await load_catalog(renamed)  # committed: the clock starts now
        changed = time.monotonic()
        seen: dict[str, float] = {}
        while len(seen) < len(instances) and time.monotonic() - changed < 5:
            for instance in instances:
                if instance.name not in seen and f"{old}(更名)" in await department_names(
                    http, instance, token
                ):
                    seen[instance.name] = time.monotonic() - changed
            await asyncio.sleep(0.02)
    assert (await Department.get(code=code)).name == f"{old}(更名)"
    assert len(seen) == len(instances), f"not every instance saw the change: {seen}"
    assert max(seen.values()) < 1.0, seen
    for instance in instances:
        assert await instance.metric("onewindow_catalog_snapshots_total") == 2


async def test_replicas_starting_together_on_an_empty_database_all_come_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The image's own start command, three times at once, on a database with no tables.
    cluster.database_url = await fresh_database(cluster.database_url, "replicas")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    assert found is not None
    command = json.loads(found.group(1))
    assert "migrate" in command[-1] and "load-catalog" in command[-1]
    replicas = [await cluster.launch(*command) for _ in range(3)]
    await asyncio.gather(*(replica.until_ready(90) for replica in replicas))
    logs = [replica.log.read_text(encoding="utf-8") for replica in replicas]
    assert sum("applied models.0001_initial" in log for log in logs) == 1, logs
    assert sum("waiting for it" in log for log in logs) >= 1, logs


async def test_sigterm_closes_websockets_for_a_retry_and_flushes_the_rows(
    cluster: Cluster, gql: GraphQLClient, clock: Clock
) -> None:
    inspection_id, username, check = await joint_acceptance(gql, clock)
    # Rows would follow the document only 10 s after the edit: only the shutdown writes them.
    [instance] = await cluster.start(1, ONEWINDOW_SYNC_MATERIALISE_MS="10000")
    tablet = await SyncClient.open(
        instance.ws, inspection_doc_name(inspection_id), token=await token_of(username, clock)
    )
    await tablet.until(tablet.synced.is_set, "the first sync")
    dashboard = await Subscriber.open(instance, await token_of("supervisor", clock))
    await instance.until_metric("onewindow_subscriptions_open", 1)

    def record(doc: Doc) -> None:
        item = doc.get("departments", type=Map)["zjj"]["checks"][check]
        item["result"] = "pass"
        item["note"] = "消防车道畅通"
        item["by"] = username
        item["at"] = "2026-03-04T10:30:00+08:00"

    number = await tablet.change(record)
    await tablet.until(lambda: number in tablet.acks, "the acknowledgement")
    assert not await CheckResult.exists(
        inspection_id=inspection_id, check_code=check, note="消防车道畅通"
    )

    # uvicorn ends a graceful shutdown by raising the signal again, as the parent expects.
    assert await instance.stop(signal.SIGTERM) == -signal.SIGTERM
    code, _ = await tablet.until_closed()
    await asyncio.wait_for(dashboard.reader, TIMEOUT)
    assert code == 1012  # service restart: y-websocket, graphql-ws and onewindow-field retry
    assert dashboard.close_code == 1012
    row = await CheckResult.get(inspection_id=inspection_id, check_code=check)
    assert row.note == "消防车道畅通" and row.recorded_by == username
    log = instance.log.read_text(encoding="utf-8")
    assert "stopping: flushing documents" in log and "Application shutdown complete" in log
