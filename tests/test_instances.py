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
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Map
from strawberry.relay import GlobalID
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from approval.catalog.load import load_catalog
from approval.catalog.parse import load_default_catalog
from approval.fieldwork.documents import inspection_doc_name
from approval.fieldwork.policy import conclusion_change, record_check_change
from storage.enums import CheckOutcome, Conclusion
from storage.models import (
    CheckResult,
    Department,
    DocumentUpdate,
    InspectionDepartment,
    SupervisionEvent,
    Task,
)
from sync.store import UpdateStore, integrated
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
from tests.sync_support import SyncClient, document_json

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


# --- the field documents on several instances ------------------------------------------------

RECORDED_AT = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def note_edit(username: str, check: str, note: str) -> Callable[[Doc], None]:
    return record_check_change(
        department_code="zjj",
        check_code=check,
        result=CheckOutcome.PASS,
        note=note,
        measured=None,
        photo_ids=(),
        by=username,
        at=RECORDED_AT,
    )


def sign(username: str, result: Conclusion, note: str) -> Callable[[Doc], None]:
    return conclusion_change(
        department_code="zjj", result=result, note=note, signed_by=username, signed_at=RECORDED_AT
    )


RECORD_CHECK = """
mutation($input: RecordCheckInput!) {
  recordCheck(input: $input) {
    inspection { departments { department { code } checks { code note } } }
    errors { code field message }
  }
}"""


def zjj_note(doc: Doc, check: str) -> object:
    return doc.get("departments", type=Map)["zjj"]["checks"][check].get("note")


@dataclasses.dataclass
class Tablet:
    """One device's document, synced with whichever instance it reaches; what it sent and
    what was acknowledged, over all its connections."""

    doc_name: str
    token: str
    username: str
    doc: Doc = dataclasses.field(default_factory=Doc)
    link: SyncClient | None = None
    acked: list[bytes] = dataclasses.field(default_factory=list)
    _sent: dict[int, bytes] = dataclasses.field(default_factory=dict)

    async def reach(self, instance: Instance) -> None:
        self.link = await SyncClient.open(
            instance.ws, self.doc_name, token=self.token, doc=self.doc
        )
        self._sent = {}
        await self.link.until(self.link.synced.is_set, f"the first sync with {instance.name}")

    def leave_now(self) -> None:
        """The connection is gone (an instance killed): what was acknowledged stays known."""
        self.collect()
        self.link = None

    async def leave(self) -> None:
        if self.link is not None:
            await self.link.close()
        self.leave_now()

    def collect(self) -> None:
        link = self.link
        if link is None:
            return
        for number in sorted(link.acks):
            update = self._sent.pop(number, None)
            if update is not None:
                self.acked.append(update)

    async def edit(self, change: Callable[[Doc], None]) -> None:
        """Edit the document; sent at once when connected, kept for later otherwise."""
        if self.link is None:
            made: list[bytes] = []
            subscription = self.doc.observe(lambda event: made.append(event.update))
            try:
                change(self.doc)
            finally:
                self.doc.unobserve(subscription)
            return
        update = self.link.make(change)
        self._sent[await self.link.send_update(update)] = update

    def settled(self) -> bool:
        link = self.link
        return link is not None and link.acked_upto >= link.sent and not link.held

    async def until_settled(self) -> None:
        assert self.link is not None
        await self.link.until(self.settled, "every update answered")
        self.collect()
        assert self.link.errors == [], self.link.errors


async def log_json(doc_name: str) -> tuple[dict[str, Any], bytes]:
    """The document as its log holds it, and the log's state vector."""
    doc: Doc = Doc()
    for update in await UpdateStore().load(doc_name):
        doc.apply_update(update)
    return document_json(doc), doc.get_state()


async def notes_in_rows(inspection_id: int) -> dict[str, str]:
    rows = await CheckResult.filter(inspection_id=inspection_id).values_list("check_code", "note")
    return {str(code): str(note) for code, note in rows if note}


async def rows_hold(inspection_id: int, notes: dict[str, str]) -> bool:
    return await notes_in_rows(inspection_id) == notes


async def concluded(inspection_id: int) -> bool:
    return await InspectionDepartment.exists(
        inspection_id=inspection_id, department__code="zjj", conclusion__isnull=False
    )


async def eventually(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll another process's effect (nothing to await) until ``probe()`` holds."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await probe():
                return
            await asyncio.sleep(0.05)


async def converged(tablets: list[Tablet], watchers: list[SyncClient], doc_name: str) -> None:
    """Every connected tablet and every instance's room (seen by a watcher that joined it)
    holds the log's state."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            expected, _ = await log_json(doc_name)
            seen = [document_json(t.doc) for t in tablets] + [
                document_json(w.doc) for w in watchers
            ]
            if all(state == expected for state in seen):
                return
            await asyncio.sleep(0.05)


async def test_one_document_one_truth_on_three_instances_with_tablets_moving_and_one_killed(
    cluster: Cluster, gql: GraphQLClient, clock: Clock
) -> None:
    inspection_id, username, _ = await joint_acceptance(gql, clock)
    doc_name = inspection_doc_name(inspection_id)
    instances = await cluster.start(
        3, ONEWINDOW_SYNC_MATERIALISE_MS="50", ONEWINDOW_SYNC_SWEEP_SECONDS="1"
    )
    token = await token_of(username, clock)
    tablets = [Tablet(doc_name, token, username) for _ in range(6)]
    for index, tablet in enumerate(tablets):
        await tablet.reach(instances[index % 3])
    checks = sorted(tablets[0].doc.get("departments", type=Map)["zjj"]["checks"].keys())
    assert len(checks) >= 3, checks

    async def edits(tablet: Tablet, index: int, rounds: range) -> None:
        for k in rounds:
            check = checks[(index + k) % len(checks)]
            await tablet.edit(note_edit(username, check, f"平板{index}第{k}次"))

    # Every tablet writes at once, through three instances.
    await asyncio.gather(*(edits(t, i, range(3)) for i, t in enumerate(tablets)))
    for tablet in tablets:
        await tablet.until_settled()

    # Tablets 0 and 1 go offline, edit, and come back through other instances.
    for tablet in tablets[:2]:
        await tablet.leave()
    await asyncio.gather(*(edits(t, i, range(3, 5)) for i, t in enumerate(tablets)))
    await tablets[0].reach(instances[1])
    await tablets[1].reach(instances[2])

    # A GraphQL edit through instance 3 reaches the tablets of the others at once, and its
    # answer already shows the rows.
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(
            f"{instances[2].http}/graphql",
            json={
                "query": RECORD_CHECK,
                "variables": {
                    "input": {
                        "inspectionId": str(GlobalID("Inspection", str(inspection_id))),
                        "check": checks[0],
                        "result": "RECTIFY",
                        "note": "经GraphQL记录",
                    }
                },
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    payload = response.json()["data"]["recordCheck"]
    assert payload["errors"] == [], payload
    [section] = [
        d for d in payload["inspection"]["departments"] if d["department"]["code"] == "zjj"
    ]
    assert {"code": checks[0], "note": "经GraphQL记录"} in section["checks"]
    for tablet in (tablets[0], tablets[3]):  # on instances 2 and 1
        assert tablet.link is not None
        doc = tablet.doc
        await tablet.link.until(
            lambda: zjj_note(doc, checks[0]) == "经GraphQL记录",  # noqa: B023 awaited here
            "the GraphQL edit",
        )

    # Instance 3 is killed while its tablets (2 and 5) write; what it acknowledged is kept.
    await asyncio.gather(*(edits(t, i, range(5, 7)) for i, t in enumerate(tablets)))
    for tablet in (tablets[2], tablets[5]):
        await tablet.until_settled()
    await edits(tablets[2], 2, range(7, 9))
    await instances[2].stop(signal.SIGKILL)
    for tablet in (tablets[2], tablets[5], tablets[1]):
        tablet.leave_now()
    _, state_vector = await log_json(doc_name)
    for tablet in tablets:
        for update in tablet.acked:
            assert integrated(update, state_vector), "an acknowledged update was lost"
    # They edit offline and reconnect to the instances left.
    await edits(tablets[2], 2, range(9, 11))
    await edits(tablets[5], 5, range(9, 10))
    await tablets[2].reach(instances[0])
    await tablets[5].reach(instances[1])
    await tablets[1].reach(instances[0])
    for tablet in tablets:
        await tablet.until_settled()

    watchers = [
        await SyncClient.open(instance.ws, doc_name, token=token) for instance in instances[:2]
    ]
    await converged(tablets, watchers, doc_name)
    expected, _ = await log_json(doc_name)
    for tablet in tablets:  # every edit of every tablet is in the log
        assert integrated(tablet.doc.get_update(), (await log_json(doc_name))[1])
    notes = {
        code: check["note"]
        for code, check in expected["departments"]["zjj"]["checks"].items()
        if check.get("note")
    }
    assert len(notes) >= len(tablets), notes
    await eventually(lambda: rows_hold(inspection_id, notes), "the rows to follow the log")
    rows = await DocumentUpdate.filter(doc=doc_name).values_list("data", flat=True)
    assert len(rows) == len({bytes(row) for row in rows}), "a row was stored twice"

    # A conclusion signed through one instance cannot be changed through another by a tablet
    # that had not heard of it.
    late = tablets[3]
    await late.leave()
    await late.edit(sign(username, Conclusion.FAIL, "不合格"))
    await tablets[0].edit(sign(username, Conclusion.PASS, "同意"))
    await tablets[0].until_settled()
    await late.reach(instances[0])  # tablet 0 signed through instance 2
    assert late.link is not None
    await late.link.until(lambda: bool(late.link and late.link.errors), "the refusal")
    assert late.link.errors[0].code == "invalid", late.link.errors
    expected, _ = await log_json(doc_name)
    assert expected["departments"]["zjj"]["conclusion"]["result"] == "pass"
    await eventually(lambda: concluded(inspection_id), "the conclusion's row")
    department = await InspectionDepartment.get(inspection_id=inspection_id, department__code="zjj")
    assert department.conclusion == Conclusion.PASS
    for instance in instances[:2]:
        assert (await instance.metric("onewindow_sync_updates_committed_total") or 0) > 0
    assert (
        sum([await i.metric("onewindow_sync_updates_refused_total") or 0 for i in instances[:2]])
        >= 1
    )
    for link in [*watchers, *(t.link for t in tablets if t.link is not None)]:
        await link.close()


async def test_without_redis_instances_follow_each_other_through_the_log_within_seconds(
    cluster: Cluster, gql: GraphQLClient, clock: Clock
) -> None:
    inspection_id, username, check = await joint_acceptance(gql, clock)
    doc_name = inspection_doc_name(inspection_id)
    instances = await cluster.start(2, ONEWINDOW_REDIS_URL="")
    token = await token_of(username, clock)
    writer, reader = (Tablet(doc_name, token, username) for _ in range(2))
    await writer.reach(instances[0])
    await reader.reach(instances[1])
    await writer.edit(note_edit(username, check, "没有Redis也能看到"))
    await writer.until_settled()
    written = time.monotonic()
    assert reader.link is not None
    await reader.link.until(
        lambda: document_json(reader.doc) == document_json(writer.doc), "the poll's news"
    )
    assert time.monotonic() - written < 3  # polled every second
    assert await instances[1].metric("onewindow_redis_up") is None  # no Redis at all
    for tablet in (writer, reader):
        await tablet.leave()
