"""The sync endpoint over a real websocket: uvicorn on 127.0.0.1, pycrdt clients."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pycrdt import Doc, Map, Text
from starlette.applications import Starlette

from approval.core.access import Viewer
from approval.core.auth import create_user, issue_token
from server.settings import Settings, SettingsError
from server.sync_endpoint import STATE_KEY, sync_route
from storage.enums import Role
from storage.models import DocumentUpdate, User
from sync import protocol
from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.server import SyncServer, update_payload
from sync.store import UpdateStore
from tests.sync_support import (
    TIMEOUT,
    PermissivePolicy,
    SyncClient,
    access,
    serving,
    set_key,
    two_writers,
)


def now() -> datetime:
    return datetime.now(UTC)


async def access_for(viewer: Viewer, doc_name: str) -> Access | None:
    """writer-*: may write; reader-*: may read; anyone else: nothing."""
    kind = viewer.username.split("-", 1)[0]
    if kind not in ("writer", "reader"):
        return None
    return access(viewer.username, writable=kind == "writer", user_id=viewer.user_id)


class BrokenPolicy(PermissivePolicy):
    def initial_update(self, doc_name: str) -> bytes | None:
        raise RuntimeError("this document's policy is broken on purpose")


class ExplodingPolicy(PermissivePolicy):
    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        raise RuntimeError("bug in the policy")


@dataclass
class Env:
    base: str
    server: SyncServer
    policy: PermissivePolicy
    tokens: dict[str, str]
    doc: str = field(default_factory=lambda: f"test/{uuid.uuid4().hex[:12]}")
    clients: list[SyncClient] = field(default_factory=list)

    async def client(
        self, who: str = "writer", doc: str | None = None, **options: Any
    ) -> SyncClient:
        client = await SyncClient.open(
            self.base, doc or self.doc, token=self.tokens.get(who, who), **options
        )
        self.clients.append(client)
        return client

    async def synced(self, who: str = "writer", **options: Any) -> SyncClient:
        client = await self.client(who, **options)
        await client.until(client.synced.is_set, "the first sync step 2")
        return client

    async def rows(self, doc: str | None = None) -> list[bytes]:
        data = (
            await DocumentUpdate.filter(doc=doc or self.doc)
            .order_by("id")
            .values_list("data", flat=True)
        )
        return [bytes(d) for d in data]


Start = Callable[..., Awaitable[Env]]


@pytest.fixture(scope="module")
async def tokens(database: str) -> dict[str, str]:
    """Users writer, writer2 (may write), reader (may read), stranger (nothing), with tokens."""
    suffix = uuid.uuid4().hex[:8]
    tokens: dict[str, str] = {}
    for name, role in (
        ("writer", Role.AGENT),
        ("writer2", Role.AGENT),
        ("reader", Role.SUPERVISOR),
        ("stranger", Role.AGENT),
    ):
        username = f"{name.rstrip('2')}-{name}-{suffix}"
        user = await create_user(
            username=username, password="test-password", display_name=name, role=role
        )
        tokens[name], _ = await issue_token(user=user, now=now(), ttl=timedelta(hours=1))
    return tokens


@pytest.fixture
async def start(tokens: dict[str, str]) -> AsyncIterator[Start]:
    """Start a SyncServer behind the endpoint, in this event loop."""
    async with AsyncExitStack() as stack:

        async def run(
            policy: PermissivePolicy | None = None,
            policies: dict[str, DocumentPolicy] | None = None,
            **options: Any,
        ) -> Env:
            chosen = policy or PermissivePolicy()

            def policy_for(doc_name: str) -> DocumentPolicy | None:
                for prefix, special in (policies or {}).items():
                    if doc_name.startswith(prefix):
                        return special
                return chosen if doc_name.startswith("test/") else None

            server = SyncServer(store=UpdateStore(), policy_for=policy_for, **options)

            @asynccontextmanager
            async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
                try:
                    yield {STATE_KEY: server}
                finally:
                    await server.close()

            app = Starlette(
                routes=[sync_route(access_for=access_for, clock=now)], lifespan=lifespan
            )
            base = await stack.enter_async_context(serving(app))
            env = Env(base=base, server=server, policy=chosen, tokens=tokens)

            async def close_clients() -> None:
                for client in env.clients:
                    await client.close()

            stack.push_async_callback(close_clients)
            return env

        yield run


async def test_two_clients_converge_and_updates_are_acknowledged(start: Start) -> None:
    env = await start()
    a = await env.synced()
    b = await env.synced("writer2")
    first = await a.change(set_key("a", "甲"))
    await b.change(set_key("b", 2))
    await a.change(lambda doc: doc.get("t", type=Text).insert(0, "消防通道畅通"))

    def converged(c: SyncClient) -> bool:
        return c.map() == {"a": "甲", "b": 2.0} and str(c.doc.get("t", type=Text)) == "消防通道畅通"

    for client in (a, b):
        await client.until(functools.partial(converged, client), "both changes")
    await a.until(lambda: a.acks >= {first, first + 1}, "acks of both updates")
    assert a.errors == [] and b.errors == []
    assert len(await env.rows()) == 3  # the empty step-2 replies are not stored


async def test_a_refused_update_is_not_kept_and_others_keep_syncing(start: Start) -> None:
    env = await start()
    a = await env.synced()
    b = await env.synced("writer2")
    c = await env.synced("writer2")
    number = await a.change(set_key("forbidden", True))
    await a.until(lambda: bool(a.errors), "the refusal")
    assert a.errors[0].number == number
    assert a.errors[0].code == "invalid"
    assert "'forbidden' may not be set" in a.errors[0].reason
    assert number not in a.acks
    assert await env.rows() == []

    await b.change(set_key("ok", 1))
    await c.until(lambda: c.map() == {"ok": 1.0}, "b's update at c")
    await a.until(lambda: a.map().get("ok") == 1.0, "b's update at a")
    assert "forbidden" not in b.map() and "forbidden" not in c.map()
    await c.change(set_key("more", 2))
    await b.until(lambda: b.map() == {"ok": 1.0, "more": 2.0}, "c's update at b")
    assert len(await env.rows()) == 2


async def test_a_stock_client_insisting_on_a_refused_change_never_makes_anyone_diverge(
    start: Start,
) -> None:
    """A plain Yjs client (no ?ack=1) keeps its refused change and keeps editing: each of its
    later updates depends on the refused one and is answered permission-denied with the same
    reason; nothing of it is stored or broadcast; fresh clients all see the same document."""
    env = await start()
    stock = await env.synced(ack=False)
    other = await env.synced("writer2")
    await stock.change(set_key("forbidden", True))
    for number in range(3):
        await stock.change(set_key(f"later{number}", number))
    await stock.send_update(stock.doc.get_update())  # and its whole state, as on a reconnect
    await stock.until(lambda: len(stock.denied) == 5, "five permission-denied answers")
    assert len(set(stock.denied)) == 1 and "'forbidden' may not be set" in stock.denied[0]
    assert await env.rows() == []
    await other.change(set_key("ok", 1))
    fresh = [await env.synced("writer2") for _ in range(2)]
    for client in [other, *fresh]:
        await client.until(lambda client=client: client.map() == {"ok": 1.0}, "the document")


async def test_read_only_connections_cannot_write(start: Start) -> None:
    env = await start()
    writer = await env.synced()
    reader = await env.synced("reader")
    plain_reader = await env.synced("reader", ack=False)
    number = await reader.change(set_key("x", 1))
    await reader.until(lambda: bool(reader.errors), "the refusal")
    assert (reader.errors[0].number, reader.errors[0].code) == (number, "read_only")
    await plain_reader.change(set_key("y", 1))
    await plain_reader.until(lambda: bool(plain_reader.denied), "permission denied")
    assert "may read" in plain_reader.denied[0]
    await writer.change(set_key("z", 1))
    await reader.until(lambda: reader.map().get("z") == 1.0, "the writer's update")
    await plain_reader.until(lambda: plain_reader.map().get("z") == 1.0, "the writer's update")
    assert writer.map() == {"z": 1.0}
    assert len(await env.rows()) == 1


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (b"\x00\x02\x05ab", 1002, "says it is 5 bytes but only 2 follow"),
        (b"\x00\x02\x85", 1002, "truncated"),
        (b"\x07\x01", 1002, "unknown message type 7"),
        ("hello", 1003, "send binary frames"),
    ],
)
async def test_garbage_closes_only_that_connection(
    start: Start, frame: bytes | str, code: int, reason: str
) -> None:
    env = await start()
    bad = await env.synced()
    good = await env.synced("writer2")
    other = await env.synced("writer2")
    await bad.send_raw(frame)
    closed_code, closed_reason = await bad.until_closed()
    assert closed_code == code
    assert reason in closed_reason
    assert bad.errors and reason in bad.errors[0].reason
    await good.change(set_key("still", "works"))
    await other.until(lambda: other.map() == {"still": "works"}, "the good client's update")


async def test_an_oversized_update_is_refused(start: Start) -> None:
    env = await start(max_update_bytes=2000)
    a = await env.synced()
    b = await env.synced("writer2")
    number = await a.change(lambda doc: doc.get("t", type=Text).insert(0, "检" * 1000))
    await a.until(lambda: bool(a.errors), "the refusal")
    assert (a.errors[0].number, a.errors[0].code) == (number, "too_large")
    assert "at most 2000 bytes" in a.errors[0].reason
    assert await env.rows() == []
    await b.change(set_key("small", 1))
    await a.until(lambda: a.map() == {"small": 1.0}, "a small update")


async def test_an_unreadable_update_is_refused_without_closing(start: Start) -> None:
    env = await start()
    a = await env.synced()
    number = await a.send_update(b"\x01\x02\x03\x04garbage")
    await a.until(lambda: bool(a.errors), "the refusal")
    assert (a.errors[0].number, a.errors[0].code) == (number, "malformed_update")
    await a.change(set_key("after", 1))
    await a.until(lambda: number + 1 in a.acks, "the next update's ack")
    assert a.close_code is None


async def test_chinese_presence_is_relayed_and_cleared(start: Start) -> None:
    env = await start()
    a = await env.synced()
    b = await env.synced("writer2")
    state = {"user": {"name": "王建国", "department": "住建局"}, "editing": "消防检查/疏散通道"}
    await a.send_raw(protocol.awareness([protocol.awareness_state(a.doc.client_id, 1, state)]))
    await b.until(lambda: b.presence.get(a.doc.client_id) == state, "a's presence at b")
    late = await env.client("writer2")
    await late.until(lambda: late.presence.get(a.doc.client_id) == state, "presence at join")
    await late.send_raw(protocol.query_awareness())
    await a.close()
    await b.until(lambda: a.doc.client_id not in b.presence, "a's presence removed")


async def test_authentication_and_authorization_at_the_upgrade(start: Start) -> None:
    env = await start()
    for who, expected_code, expected_reason in (
        ("nobody", 4401, "unknown or revoked"),
        ("stranger", 4403, "may not open"),
    ):
        client = await env.client(who)
        closed_code, closed_reason = await client.until_closed()
        assert closed_code == expected_code and expected_reason in closed_reason
    no_token = await SyncClient.open(env.base, env.doc)
    env.clients.append(no_token)
    code, reason = await no_token.until_closed()
    assert code == 4401 and "Authorization: Bearer" in reason

    unknown = await env.client("writer", doc="nothing/here")
    code, reason = await unknown.until_closed()
    assert code == 4404 and "nothing/here" in reason

    browser_like = await env.client("writer", header=False)  # the token as a subprotocol
    await browser_like.until(browser_like.synced.is_set, "sync with the bearer subprotocol")

    user = await User.get(
        tokens__token_hash=hashlib.sha256(env.tokens["writer"].encode()).hexdigest()
    )
    _, expired_token = await _expired_token(user)
    expired = await env.client(expired_token)
    code, reason = await expired.until_closed()
    assert code == 4401 and "expired" in reason


async def test_the_initial_update_is_stored_once_as_the_first_entry(start: Start) -> None:
    layout: Doc = Doc(client_id=1)
    layout.get("m", type=Map)["layout"] = "v1"
    policy = PermissivePolicy(initial=layout.get_update())
    env = await start(policy=policy, idle_seconds=0.05)
    a = await env.synced()
    assert a.map() == {"layout": "v1"}
    await a.change(set_key("x", 1))
    await a.until(lambda: 2 in a.acks, "the ack")
    await a.close()
    await _until(lambda: env.doc not in env.server.rooms, "the room to unload")
    b = await env.synced()
    assert b.map() == {"layout": "v1", "x": 1.0}
    rows = await env.rows()
    assert rows[0] == layout.get_update() and len(rows) == 2


async def test_an_idle_room_unloads_and_reloads_from_the_log(start: Start) -> None:
    env = await start(idle_seconds=0.05, materialise_delay=5)
    a = await env.synced()
    for i in range(5):
        await a.change(set_key(f"k{i}", i))
    await a.until(lambda: len(a.acks) == 6, "six acks (the step 2 reply and five)")
    await a.close()
    await _until(lambda: env.doc not in env.server.rooms, "the room to unload")
    assert env.policy.materialised[-1] == (env.doc, {f"k{i}": float(i) for i in range(5)})
    b = await env.synced()
    assert b.map() == {f"k{i}": float(i) for i in range(5)}


async def test_materialisation_is_debounced(start: Start) -> None:
    env = await start(materialise_delay=0.1)
    a = await env.synced()
    for i in range(10):
        await a.change(set_key(f"k{i}", i))
    expected = {f"k{i}": float(i) for i in range(10)}
    await _until(
        lambda: bool(env.policy.materialised) and env.policy.materialised[-1][1] == expected,
        "materialisation of all ten keys",
        within=1.5,
    )
    assert len(env.policy.materialised) < 10


async def test_server_edits_take_the_same_path(start: Start) -> None:
    env = await start()
    a = await env.synced()
    await env.server.edit(env.doc, set_key("by_server", "已整改"), access=access("system"))
    await a.until(lambda: a.map() == {"by_server": "已整改"}, "the server's edit")
    assert len(await env.rows()) == 1
    with pytest.raises(UpdateRefused, match="'forbidden' may not be set"):
        await env.server.edit(env.doc, set_key("forbidden", 1), access=access("system"))
    with pytest.raises(UpdateRefused, match="may read"):
        await env.server.edit(env.doc, set_key("x", 1), access=access("viewer", writable=False))
    assert len(await env.rows()) == 1
    assert a.map() == {"by_server": "已整改"}


async def test_closing_the_server_flushes_and_says_goodbye(start: Start) -> None:
    env = await start(materialise_delay=30)
    a = await env.synced()
    number = await a.change(set_key("k", "v"))
    await a.until(lambda: number in a.acks, "the ack")
    assert env.policy.materialised == []
    await env.server.close()
    assert env.policy.materialised == [(env.doc, {"k": "v"})]
    code, reason = await a.until_closed()
    assert code == 1012 and "shutting down" in reason


async def test_one_broken_room_does_not_affect_others(start: Start) -> None:
    env = await start(policies={"test/broken": BrokenPolicy(), "test/bug": ExplodingPolicy()})
    healthy = await env.synced()
    broken = await env.client("writer", doc="test/broken-1")
    code, reason = await broken.until_closed()
    assert code == 1011 and "could not be opened" in reason
    buggy = await env.client("writer", doc="test/bug-1")
    await buggy.until(buggy.synced.is_set, "sync with the buggy room")
    await buggy.change(set_key("x", 1))
    await buggy.until(lambda: bool(buggy.errors), "the refusal")
    assert buggy.errors[0].code == "internal_error"
    await healthy.change(set_key("fine", 1))
    await healthy.until(lambda: healthy.acks == {1, 2}, "the ack")
    assert len(await env.rows()) == 1


async def _expired_token(user: User) -> tuple[User, str]:
    token, _ = await issue_token(user=user, now=now() - timedelta(hours=2), ttl=timedelta(hours=1))
    return user, token


async def _until(condition: Callable[[], bool], what: str, within: float = TIMEOUT) -> None:
    """Poll server-side state (rooms, materialisations), which has no event to wait on."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def test_sync_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ONEWINDOW_SYNC_MAX_UPDATE_BYTES": "65536",
            "ONEWINDOW_SYNC_IDLE_SECONDS": "5",
            "ONEWINDOW_SYNC_MATERIALISE_MS": "100",
        }
    )
    assert (
        settings.sync_max_update_bytes,
        settings.sync_idle_seconds,
        settings.sync_materialise_ms,
    ) == (65536, 5, 100)
    with pytest.raises(SettingsError, match="ONEWINDOW_SYNC_MATERIALISE_MS"):
        Settings.from_env({"ONEWINDOW_SYNC_MATERIALISE_MS": "soon"})


async def test_updates_lacking_dependencies_are_held_then_acked_when_they_arrive(
    start: Start,
) -> None:
    env = await start()
    from_a, from_others = two_writers()
    x = await env.synced()
    numbers = [await x.send_update(update) for update in from_others]  # A's is missing
    await x.until(lambda: x.acked_upto >= numbers[-1], "the answer to the group")
    assert x.held == set(numbers[:2]) and x.acks >= {numbers[2]}  # B's two wait for A's
    assert not x.acks & set(numbers[:2]) and not x.errors
    room = env.server.rooms[env.doc]
    assert room.pending == []
    y = await env.synced("writer2")
    await y.until(lambda: y.map() == {"b": 2.0}, "C's independent key")
    assert str(y.doc.get("t", type=Text)) == ""
    assert len(await env.rows()) == 1  # held updates are not stored
    await x.send_update(from_a[0])
    await y.until(lambda: str(y.doc.get("t", type=Text)) == "bcXYZ", "the text, once A arrived")
    await x.until(lambda: set(numbers) <= x.acks, "the held updates acked")
    assert x.held == set() and room.pending == []
    assert len(await env.rows()) == 4


def test_update_frames_are_read_as_decode_reads_them() -> None:
    """The fast path for update frames gives exactly what ``protocol.decode`` gives, and
    leaves every other frame (and every frame ``decode`` refuses) to ``decode``."""
    big = bytes(range(256)) * 3
    frames: list[object] = [
        protocol.sync_update(b"\x01\x02"),
        protocol.sync_step2(big),
        protocol.sync_update(b""),
        protocol.sync_step1(b"\x00"),
        protocol.sync_update(big)[:-1],  # truncated
        protocol.sync_update(b"\x01") + b"\x00",  # trailing byte
        b"\x00\x02\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # length past 10 bytes
        b"\x00\x02\x81\x00" + b"x",  # an overlong length: decode accepts it too
        b"\x00\x03\x00",
        b"\x01\x00",
        b"",
        "text",
    ]
    for frame in frames:
        expected = None
        if isinstance(frame, bytes):
            try:
                message = protocol.decode(frame)
            except protocol.ProtocolError:
                message = None
            if (
                isinstance(message, protocol.SyncMessage)
                and message.kind != protocol.SyncType.STEP1
            ):
                expected = message.payload
        assert update_payload(frame) == expected, frame
    assert update_payload(protocol.sync_step2(big)) == big
