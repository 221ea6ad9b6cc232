"""The field client against a real server: uvicorn on 127.0.0.1 with the sync endpoint and
GraphQL, inspection documents laid out by ``approval.fieldwork.documents`` and validated by
its rules."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc
from starlette.applications import Starlette
from starlette.routing import Route

from approval.core.access import Viewer
from approval.core.auth import create_user, issue_token
from approval.fieldwork.documents import (
    AgencyLayout,
    InspectionLayout,
    LayoutError,
    agency_doc_name,
    initial_update,
    inspection_doc_name,
    read_agency,
    read_inspection,
    validate_agency,
    validate_inspection,
)
from clients.field import FieldClient, FieldError, SyncError, backoff_delay
from clients.field.session import WebSocket, connect_websocket
from schema.app import graphql_app
from server.sync_endpoint import STATE_KEY, sync_route
from storage.enums import Role
from storage.models import DocumentUpdate
from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.sync_support import TIMEOUT, field_cli, serving, until

LAYOUT = InspectionLayout({"zjj": ["C01", "C02", "C03"], "xf": ["X01"]})
PASSWORD = "field-password-1"
ROOT = Path(__file__).resolve().parent.parent


def now() -> datetime:
    return datetime.now(UTC)


class InspectionPolicy:
    """The real layout and validation of inspection documents, nothing materialised."""

    def initial_update(self, doc_name: str) -> bytes | None:
        return initial_update(LAYOUT)

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        try:
            validate_inspection(
                before,
                after,
                department_code=access.department_code,
                role=access.role,
                writable=access.writable,
            )
        except LayoutError as error:
            raise UpdateRefused(error.reason) from None

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        return None


async def access_for(viewer: Viewer, doc_name: str) -> Access | None:
    """Every test user is an inspector of zjj."""
    return Access(
        user_id=viewer.user_id,
        username=viewer.username,
        role=Role.INSPECTOR.value,
        department_code="zjj",
        writable=True,
    )


class AgencyPolicy:
    """The real validation of agency documents (no layout to make), nothing materialised."""

    def initial_update(self, doc_name: str) -> bytes | None:
        return initial_update(AgencyLayout())

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        try:
            validate_agency(before, after, role=Role.AGENT.value, writable=access.writable)
        except LayoutError as error:
            raise UpdateRefused(error.reason) from None

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        return None


def policy_for(doc_name: str) -> DocumentPolicy | None:
    if doc_name.startswith("inspection/"):
        return InspectionPolicy()
    return AgencyPolicy() if doc_name.startswith("agency/") else None


@dataclass
class Network:
    """The tablet's network: the test cuts it and brings it back."""

    online: bool = True
    connections: list[WebSocket] = field(default_factory=list)

    async def connect(self, url: str, headers: dict[str, str]) -> WebSocket:
        if not self.online:
            raise OSError("Network is unreachable (cut by the test)")
        ws = await connect_websocket(url, headers)
        self.connections.append(ws)
        return ws


@dataclass
class Env:
    base: str  # http://127.0.0.1:port
    token: str
    username: str
    tmp: Path
    clients: list[FieldClient] = field(default_factory=list)

    def client(self, name: str = "tablet", network: Network | None = None) -> FieldClient:
        client = FieldClient(
            self.base,
            self.token,
            self.tmp / f"{name}.sqlite3",
            connect=(network or Network()).connect,
            username=self.username,
            timeout=TIMEOUT,
        )
        self.clients.append(client)
        return client


def new_doc() -> str:
    return inspection_doc_name(random.randrange(10**6, 10**9))


async def rows(doc_name: str) -> int:
    return await DocumentUpdate.filter(doc=doc_name).count()


@pytest.fixture
async def env(database: str, tmp_path: Path) -> AsyncIterator[Env]:
    username = f"field-{uuid.uuid4().hex[:8]}"
    user = await create_user(
        username=username,
        password=PASSWORD,
        display_name="现场检查员",
        role=Role.AGENT,  # the sync rights come from access_for below
    )
    token, _ = await issue_token(user=user, now=now(), ttl=timedelta(hours=1))
    server = SyncServer(store=UpdateStore(), policy_for=policy_for)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {STATE_KEY: server}
        finally:
            await server.close()

    gql = graphql_app(token_ttl=timedelta(hours=1), clock=now)
    app = Starlette(
        routes=[Route("/graphql", gql), sync_route(access_for=access_for, clock=now)],
        lifespan=lifespan,
    )
    async with AsyncExitStack() as stack:
        ws_base = await stack.enter_async_context(serving(app))
        environment = Env(
            base=ws_base.replace("ws://", "http://"), token=token, username=username, tmp=tmp_path
        )
        yield environment
        for client in environment.clients:
            client.close()


def checks(client: FieldClient, doc_name: str, department: str = "zjj") -> dict[str, Any]:
    section = read_inspection(client.open(doc_name))[department]
    return {code: (c.result, c.note) for code, c in section.checks.items() if c.result}


async def test_offline_edits_wait_in_the_outbox_and_reach_the_server_once(env: Env) -> None:
    doc_name = new_doc()
    network = Network()
    tablet = env.client("tablet", network)
    await tablet.sync(doc_name)  # the layout comes from the server
    assert await rows(doc_name) == 1

    network.online = False
    tablet.record_check(doc_name, "zjj", "C01", "pass", note="消防通道畅通")
    tablet.record_check(doc_name, "zjj", "C02", "rectify", note="栏杆高度不足", measured={"h": 0.9})
    with pytest.raises(SyncError, match="cannot reach"):
        await tablet.sync(doc_name)
    status = tablet.status(doc_name)
    assert status.pending == 2
    assert status.last_error is not None and "cannot reach" in status.last_error

    tablet.close()  # the tablet restarts
    env.clients.remove(tablet)
    tablet = env.client("tablet", network)
    assert tablet.status(doc_name).pending == 2
    assert checks(tablet, doc_name) == {
        "C01": ("pass", "消防通道畅通"),
        "C02": ("rectify", "栏杆高度不足"),
    }

    network.online = True
    result = await tablet.sync(doc_name)
    assert (result.sent, result.acknowledged, result.refusals) == (2, 2, [])
    status = tablet.status(doc_name)
    assert status.pending == 0 and status.last_error is None
    assert status.last_synced_at is not None
    assert await rows(doc_name) == 3  # the layout and each outbox update, once

    await tablet.sync(doc_name)  # nothing new: nothing stored again
    assert await rows(doc_name) == 3


async def test_the_tablet_checks_the_servers_layout_rules_before_it_records(env: Env) -> None:
    """A value the server would refuse is refused on the tablet at once, with the server's
    reason, and nothing is recorded (the two over-long offline notes of issue 9 never reach
    the outbox)."""
    doc_name = new_doc()
    tablet = env.client()
    await tablet.sync(doc_name)
    before = tablet.open(doc_name).get_update()
    with pytest.raises(FieldError, match=r"not recorded: .*note has 4001 characters; at most"):
        tablet.record_check(doc_name, "zjj", "C01", "pass", note="长" * 4001)
    with pytest.raises(FieldError, match=r"not recorded: .*must be a finite number"):
        tablet.record_check(doc_name, "zjj", "C01", "pass", measured={"h": float("nan")})
    with pytest.raises(FieldError, match=r"not recorded: .*measurement needs a name"):
        tablet.record_check(doc_name, "zjj", "C01", "pass", measured={"": 1.0})
    with pytest.raises(FieldError, match=r"not recorded: .*description has 4001 characters"):
        tablet.add_rectification(doc_name, "zjj", "改" * 4001)
    assert tablet.status(doc_name).pending == 0
    assert tablet.open(doc_name).get_update() == before
    tablet.record_check(doc_name, "zjj", "C01", "pass", note="长" * 4000)  # at the limit
    assert tablet.status(doc_name).pending == 1
    result = await tablet.sync(doc_name)
    assert (result.acknowledged, result.refusals) == (1, [])


async def test_two_offline_tablets_editing_different_checks_converge(env: Env) -> None:
    doc_name = new_doc()
    net_a, net_b = Network(), Network()
    a, b = env.client("a", net_a), env.client("b", net_b)
    await a.sync(doc_name)
    await b.sync(doc_name)
    net_a.online = net_b.online = False
    a.record_check(doc_name, "zjj", "C01", "pass", note="甲")
    b.record_check(doc_name, "zjj", "C02", "fail", note="乙")
    b.record_check(doc_name, "zjj", "C03", "not_applicable")
    net_a.online = net_b.online = True
    await a.sync(doc_name)
    await b.sync(doc_name)
    await a.sync(doc_name)
    expected = {"C01": ("pass", "甲"), "C02": ("fail", "乙"), "C03": ("not_applicable", "")}
    assert checks(a, doc_name) == expected
    assert checks(b, doc_name) == expected
    assert a.status(doc_name).pending == b.status(doc_name).pending == 0
    assert await rows(doc_name) == 1 + 1 + 2


async def test_a_refused_update_is_reported_and_the_tablet_takes_the_server_state(
    env: Env,
) -> None:
    doc_name = new_doc()
    tablet = env.client()
    await tablet.sync(doc_name)
    tablet.record_check(doc_name, "zjj", "C01", "pass")
    tablet.record_check(doc_name, "xf", "X01", "fail")  # another department's section
    result = await tablet.sync(doc_name)
    assert result.acknowledged == 1
    assert result.refusals and "xf" in result.refusals[0].reason
    assert result.dropped == 1
    status = tablet.status(doc_name)
    assert status.pending == 0
    assert status.last_error is not None and "belongs to department xf" in status.last_error
    assert checks(tablet, doc_name) == {"C01": ("pass", "")}  # the server's state
    assert checks(tablet, doc_name, "xf") == {}
    assert await rows(doc_name) == 2

    tablet.close()  # the reset survives a restart
    env.clients.remove(tablet)
    tablet = env.client()
    assert checks(tablet, doc_name, "xf") == {}
    tablet.record_check(doc_name, "zjj", "C02", "pass")
    result = await tablet.sync(doc_name)
    assert (result.acknowledged, result.refusals) == (1, [])
    assert tablet.status(doc_name).last_error is None
    assert checks(tablet, doc_name) == {"C01": ("pass", ""), "C02": ("pass", "")}


async def test_run_sends_live_edits_and_reconnects_after_a_cut(env: Env) -> None:
    doc_name = new_doc()
    network = Network()
    tablet = env.client("live", network)
    await tablet.sync(doc_name)
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.01)

    tablet._sleep = sleep
    running = asyncio.create_task(tablet.run([doc_name]))
    try:
        tablet.record_check(doc_name, "zjj", "C01", "pass")
        await until(lambda: tablet.status(doc_name).pending == 0, "the live edit to be acked")
        network.online = False
        for ws in list(network.connections):
            await ws.close()  # the connection drops
        await until(lambda: len(delays) >= 2, "two reconnection attempts")
        tablet.record_check(doc_name, "zjj", "C02", "fail")
        assert tablet.status(doc_name).pending == 1
        network.online = True
        await until(lambda: tablet.status(doc_name).pending == 0, "the outbox to drain")
    finally:
        tablet.stop()
        async with asyncio.timeout(TIMEOUT):
            await running
    assert await rows(doc_name) == 3


def sequence(values: list[float]) -> Callable[[], float]:
    iterator: Iterator[float] = iter(values)
    return lambda: next(iterator)


def test_backoff_grows_to_a_cap_with_full_jitter() -> None:
    full = [backoff_delay(n, lambda: 1.0, base=0.5, cap=8.0) for n in range(7)]
    assert full == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    rng = sequence([0.5, 0.1, 0.9])
    jittered = [backoff_delay(n, rng, base=0.5, cap=8.0) for n in range(3)]
    assert jittered == [0.25, 0.1, 1.8]


async def test_run_backs_off_with_jitter_while_offline(tmp_path: Path) -> None:
    attempts: list[str] = []

    async def offline(url: str, headers: dict[str, str]) -> WebSocket:
        attempts.append(url)
        raise OSError("Network is unreachable")

    delays: list[float] = []
    client: FieldClient

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 6:
            client.stop()

    jitter = [0.5, 0.25, 1.0, 0.75, 0.1, 0.9]
    client = FieldClient(
        "http://127.0.0.1:9",
        "token",
        tmp_path / "offline.sqlite3",
        connect=offline,
        rng=sequence(jitter),
        sleep=sleep,
        backoff_base=1.0,
        backoff_cap=10.0,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.run(["inspection/1"])
    finally:
        client.close()
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert delays == [j * c for j, c in zip(jitter, ceilings, strict=True)]
    assert len(attempts) == 6
    assert "ws://127.0.0.1:9/sync/inspection/1?ack=1" in attempts


async def test_a_document_never_synced_cannot_be_recorded_offline(tmp_path: Path) -> None:
    client = FieldClient("http://127.0.0.1:9", "token", tmp_path / "new.sqlite3")
    try:
        with pytest.raises(FieldError, match="not on this tablet yet"):
            client.record_check("inspection/5", "zjj", "C01", "pass")
        with pytest.raises(FieldError, match="合格"):
            client.record_check("inspection/5", "zjj", "C01", "ok")
    finally:
        client.close()


async def cli(env: Env, *args: str, stdin: str = "") -> tuple[int, str]:
    return await field_cli(env.tmp / "cli.sqlite3", *args, stdin=stdin)


async def test_cli_login_record_offline_then_sync_once(env: Env) -> None:
    doc_name = new_doc()
    number = doc_name.split("/")[1]

    code, out = await cli(
        env,
        "record",
        "--inspection",
        number,
        "--department",
        "zjj",
        "--check",
        "C01",
        "--result",
        "pass",
    )
    assert code == 1 and "not logged in" in out and "login --server" in out

    code, out = await cli(
        env, "login", "--server", env.base, "--username", env.username, stdin=PASSWORD + "\n"
    )
    assert code == 0, out
    assert "logged in as 现场检查员" in out

    code, out = await cli(
        env,
        "record",
        "--inspection",
        number,
        "--department",
        "zjj",
        "--check",
        "C01",
        "--result",
        "pass",
    )
    assert code == 1 and "not on this tablet yet" in out

    code, out = await cli(env, "sync", "--once", "--inspection", number)
    assert code == 0, out
    assert f"{doc_name}: 0 pending" in out

    code, out = await cli(
        env,
        "record",
        "--inspection",
        number,
        "--department",
        "zjj",
        "--check",
        "C02",
        "--result",
        "rectify",
        "--note",
        "缺少灭火器",
    )
    assert code == 0, out
    assert "需整改" in out and "1 change(s) waiting" in out

    code, out = await cli(env, "status")
    assert f"{doc_name}: 1 pending" in out

    code, out = await cli(env, "sync", "--once")
    assert code == 0, out
    assert "acknowledged 1" in out and f"{doc_name}: 0 pending" in out
    assert await rows(doc_name) == 2

    code, out = await cli(env, "inspections")
    assert code == 0 and "no inspections are assigned to you" in out


async def test_a_long_synced_history_is_compacted_and_rebuilds_the_same_document(
    env: Env,
) -> None:
    from clients.field.session import COMPACT_AFTER

    doc_name = new_doc()
    network = Network()
    tablet = env.client("tablet", network)
    await tablet.sync(doc_name)
    network.online = False
    for n in range(COMPACT_AFTER + 10):
        tablet.record_check(doc_name, "zjj", f"C0{n % 3 + 1}", "pass", note=f"第{n}次")
    assert tablet.store.update_count(doc_name) > COMPACT_AFTER
    expected = checks(tablet, doc_name)
    network.online = True
    await tablet.sync(doc_name)
    assert tablet.status(doc_name).pending == 0
    assert tablet.store.update_count(doc_name) == 1  # the whole document, once
    tablet.close()
    env.clients.remove(tablet)
    reopened = env.client("tablet", network)
    assert checks(reopened, doc_name) == expected
    reopened.record_check(doc_name, "zjj", "C01", "fail", note="复查")
    assert not reopened.store.compact(doc_name, reopened.open(doc_name).get_update())  # pending
    assert reopened.store.update_count(doc_name) == 2
    await reopened.sync(doc_name)
    assert checks(reopened, doc_name)["C01"] == ("fail", "复查")


async def test_run_ends_when_every_document_stopped_for_good(env: Env) -> None:
    doc_name = new_doc()
    tablet = FieldClient(
        env.base, "not-a-token", env.tmp / "refused.sqlite3", username="x", timeout=TIMEOUT
    )
    env.clients.append(tablet)
    stopped: list[tuple[str, float | None]] = []
    async with asyncio.timeout(TIMEOUT):  # the photo loop must not keep it running
        await tablet.run(
            [doc_name], on_error=lambda name, error, delay: stopped.append((name, delay))
        )
    assert stopped == [(doc_name, None)]


async def test_rectifications_and_agency_entries_made_offline_reach_another_tablet(
    env: Env,
) -> None:
    inspection, agency = new_doc(), agency_doc_name(random.randrange(10**6, 10**9))
    network = Network()
    tablet, other = env.client("tablet", network), env.client("other")
    for name in (inspection, agency):
        await tablet.sync(name)
    network.online = False
    item = tablet.add_rectification(inspection, "zjj", "栏杆加高至1.1米", due=date(2026, 3, 9))
    visit = tablet.add_agency_entry(agency, "visit", "走访建设单位")
    todo = tablet.add_agency_entry(agency, "todo", "催交检测报告", due=date(2026, 3, 6))
    with pytest.raises(FieldError, match="entry kind"):
        tablet.add_agency_entry(agency, "meeting", "不存在的类型")
    network.online = True
    for name in (inspection, agency):
        assert (await tablet.sync(name)).refusals == []
        await other.sync(name)
    [rectification] = read_inspection(other.open(inspection))["zjj"].rectifications.values()
    assert (rectification.uuid, rectification.description) == (item, "栏杆加高至1.1米")
    assert rectification.due == date(2026, 3, 9) and not rectification.done
    entries = read_agency(other.open(agency))
    assert {k: (e.kind, e.text) for k, e in entries.items()} == {
        visit: ("visit", "走访建设单位"),
        todo: ("todo", "催交检测报告"),
    }
    assert entries[todo].due == date(2026, 3, 6)


def test_the_inspections_list_names_a_project_or_a_company_setup() -> None:
    from clients.field.cli import inspected_case

    assert inspected_case(
        {"project": {"name": "德州市第一中学", "address": "x"}, "setup": None}
    ) == ("德州市第一中学")
    setup = {"code": "QS2026000001", "companyName": "德州市老街餐饮有限公司",
             "businessType": {"name": "饭店"}}  # fmt: skip
    assert inspected_case({"project": None, "setup": setup}) == (
        "德州市老街餐饮有限公司 (企业设立 饭店 QS2026000001)"
    )
