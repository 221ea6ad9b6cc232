"""Group commit: the updates a connection has already sent are checked one by one, committed in
one transaction, and acknowledged only once committed; the room's scratch copies stay right
after refusals, failed commits and policies that touch them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from pycrdt import Doc, Map, Text

from storage.models import DocumentUpdate
from sync import protocol
from sync.policy import Access, UpdateRefused
from sync.room import HELD, Ledger, Refused, Room, RoomSettings
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.sync_support import TIMEOUT, PermissivePolicy, access, recorded, two_writers


def doc_name() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def updates_setting(keys: list[str], *, one_writer: bool = False) -> list[bytes]:
    """One update per key, each from its own writer (independent of the others), or all
    from one writer (each after the one before)."""
    made: list[bytes] = []
    shared: Doc = Doc()
    shared_updates = recorded(shared)
    for key in keys:
        doc = shared if one_writer else Doc()
        updates = shared_updates if one_writer else recorded(doc)
        doc.get("m", type=Map)[key] = key
        made.append(updates[-1])
    return made


class GatedStore(UpdateStore):
    """Holds every commit until ``gate`` is set; records the size of each commit."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.commits: list[int] = []
        self.fail = False

    async def append_many(self, doc: str, updates: list[bytes]) -> int:
        await self.gate.wait()
        if self.fail:
            raise OSError("the disk is gone")
        last = await super().append_many(doc, updates)
        self.commits.append(len(updates))
        return last


@dataclass(eq=False)
class Peer:
    access: Access = field(default_factory=access)
    received: list[bytes] = field(default_factory=list)

    def send(self, message: bytes) -> None:
        self.received.append(message)


async def rows(name: str) -> list[bytes]:
    data = await DocumentUpdate.filter(doc=name).order_by("id").values_list("data", flat=True)
    return [bytes(d) for d in data]


async def opened(store: UpdateStore, policy: PermissivePolicy | None = None) -> Room:
    room = Room(
        doc_name(), policy=policy or PermissivePolicy(), store=store, settings=RoomSettings()
    )
    await room.load()
    return room


async def test_a_batch_is_one_commit_and_a_refusal_inside_it_keeps_the_others(
    database: str,
) -> None:
    store = GatedStore()
    store.gate.set()
    room = await opened(store)
    other = Peer()
    room.join(other)
    ok1, bad, ok2 = updates_setting(["a", "forbidden", "b"])
    results = await room.receive_many([ok1, bad, ok2, ok1], access=access(), origin=None)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Refused) and results[1].code == "invalid"
    assert results[3] is False  # already held: the earlier one in the same batch
    assert store.commits == [2]
    assert await rows(room.name) == [ok1, ok2]
    assert room.doc.get("m", type=Map).to_py() == {"a": "a", "b": "b"}
    # the group's accepted updates reach the others as one merged update
    (broadcast,) = other.received[1:]
    message = protocol.decode(broadcast)
    assert isinstance(message, protocol.SyncMessage)
    assert message.kind == protocol.SyncType.UPDATE
    seen: Doc = Doc()
    seen.apply_update(message.payload)
    assert seen.get("m", type=Map).to_py() == {"a": "a", "b": "b"}
    # the scratch copies were rebuilt after the refusal: the next update is checked right
    (again,) = updates_setting(["forbidden"])
    with_refusal = await room.receive_many([again], access=access(), origin=None)
    assert isinstance(with_refusal[0], Refused)
    (later,) = updates_setting(["c"])
    assert await room.receive(later, access=access(), origin=None) is True
    assert room.doc.get("m", type=Map).to_py() == {"a": "a", "b": "b", "c": "c"}
    await room.close()


async def test_a_failed_commit_refuses_the_whole_batch_and_keeps_nothing(database: str) -> None:
    store = GatedStore()
    store.gate.set()
    store.fail = True
    room = await opened(store)
    first, second = updates_setting(["a", "b"])
    results = await room.receive_many([first, second], access=access(), origin=None)
    assert all(isinstance(r, Refused) and r.code == "storage_unavailable" for r in results)
    assert await rows(room.name) == []
    assert room.doc.get("m", type=Map).to_py() == {}
    store.fail = False
    assert await room.receive_many([first, second], access=access(), origin=None) == [True, True]
    assert room.doc.get("m", type=Map).to_py() == {"a": "a", "b": "b"}
    await room.close()


class MeddlingPolicy(PermissivePolicy):
    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        if "meddled" in before.get("m", type=Map):
            raise UpdateRefused("an earlier validation's change was left in the copy")
        before.get("m", type=Map)["meddled"] = True
        after.get("m", type=Map)["meddled"] = True


async def test_a_policy_that_changes_its_documents_does_not_change_the_room(
    database: str,
) -> None:
    policy = MeddlingPolicy()
    store = UpdateStore()
    room = await opened(store, policy)
    first, second = updates_setting(["a", "b"])
    assert await room.receive_many([first, second], access=access(), origin=None) == [True, True]
    assert room.doc.get("m", type=Map).to_py() == {"a": "a", "b": "b"}
    assert await rows(room.name) == [first, second]
    await room.close()


async def test_updates_lacking_dependencies_are_held_and_settled_when_they_arrive(
    database: str,
) -> None:
    room = await opened(UpdateStore())
    from_a, from_others = two_writers()
    ledger = Ledger()
    results = await room.receive_many(from_others, access=access(), origin=None, ledger=ledger)
    assert results == [HELD, HELD, True]  # B's insert after A's item, B's delete of it; C's key
    assert [number for number, _ in ledger.held] == [1, 2] and ledger.take_settled() == []
    assert await rows(room.name) == [from_others[2]]
    assert str(room.doc.get("t", type=Text)) == "" and room.pending == []
    assert await room.receive_many(from_a, access=access(), origin=None, ledger=ledger) == [True]
    assert ledger.take_settled() == [(1, True), (2, True)] and ledger.held == []
    assert str(room.doc.get("t", type=Text)) == "bcXYZ"
    assert await rows(room.name) == [from_others[2], from_a[0], *from_others[:2]]
    await room.close()


async def test_without_a_ledger_an_update_lacking_dependencies_is_refused(
    database: str,
) -> None:
    room = await opened(UpdateStore())
    _, from_others = two_writers()
    results = await room.receive_many(from_others, access=access(), origin=None)
    assert [getattr(result, "code", result) for result in results] == [
        "missing_dependencies",
        "missing_dependencies",
        True,
    ]
    await room.close()


class Channel:
    """An in-process connection: frames queued by the test, frames sent kept in order."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.changed = asyncio.Event()

    async def receive(self) -> bytes | str | None:
        return await self.incoming.get()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.changed.set()

    async def close(self, code: int, reason: str) -> None:
        self.changed.set()

    def ack_frames(self) -> list[int]:
        """The numbers of the cumulative acks sent, in order."""
        out = []
        for frame in self.sent:
            message = protocol.decode(frame)
            if isinstance(message, protocol.AckUpToMessage):
                out.append(message.number)
        return out

    def acks(self) -> list[int]:
        """The update numbers acknowledged (cumulative acks expanded, refusals left out)."""
        out: list[int] = []
        upto = 0
        refused: set[int] = set()
        for frame in self.sent:
            message = protocol.decode(frame)
            if isinstance(message, protocol.ErrorMessage):
                refused.add(message.number)
            elif isinstance(message, protocol.AckUpToMessage):
                out.extend(n for n in range(upto + 1, message.number + 1) if n not in refused)
                upto = max(upto, message.number)
        return out

    async def until(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.acks()) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_the_server_acks_a_connections_updates_only_after_their_group_commit(
    database: str,
) -> None:
    store = GatedStore()
    server = SyncServer(store=store, policy_for=lambda name: PermissivePolicy())
    name = doc_name()
    channel = Channel()
    updates = updates_setting([f"k{i}" for i in range(20)], one_writer=True)
    for update in updates:
        channel.incoming.put_nowait(protocol.sync_update(update))
    channel.incoming.put_nowait(protocol.sync_step1(b"\x00"))
    serving = asyncio.create_task(server.serve(name, channel, access=access(), acks=True))
    await asyncio.sleep(0.1)
    assert channel.acks() == []  # nothing is committed yet
    assert await rows(name) == []
    store.gate.set()
    await channel.until(len(updates))
    assert channel.acks() == list(range(1, len(updates) + 1))
    assert sum(store.commits) == len(updates) and max(store.commits) > 1
    # one cumulative ack per group commit, each with the group's last number
    assert len(channel.ack_frames()) == len(store.commits)
    assert channel.ack_frames() == [
        sum(store.commits[: index + 1]) for index in range(len(store.commits))
    ]
    assert await rows(name) == updates
    # the step 1 that followed the updates was answered with all of them
    answers = [protocol.decode(frame) for frame in channel.sent]
    step2 = next(
        m
        for m in answers
        if isinstance(m, protocol.SyncMessage) and m.kind == protocol.SyncType.STEP2
    )
    seen: Doc = Doc()
    seen.apply_update(step2.payload)
    assert len(seen.get("m", type=Map).to_py() or {}) == len(updates)
    assert channel.sent.index(protocol.ack_upto(len(updates))) < channel.sent.index(
        protocol.sync_step2(step2.payload)
    )
    channel.incoming.put_nowait(None)
    await serving
    await server.close()


class CheckingChannel(Channel):
    """Checks, as each frame is sent, that a cumulative ack covers only committed rows."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.checked: list[tuple[int, int]] = []  # (ack number, rows committed when sent)

    async def send(self, data: bytes) -> None:
        message = protocol.decode(data)
        if isinstance(message, protocol.AckUpToMessage):
            self.checked.append((message.number, len(await rows(self.name))))
        await super().send(data)


async def test_a_cumulative_ack_follows_the_commit_and_the_groups_refusals(
    database: str,
) -> None:
    store = GatedStore()
    server = SyncServer(store=store, policy_for=lambda name: PermissivePolicy())
    name = doc_name()
    channel = CheckingChannel(name)
    keys = [f"k{i}" for i in range(10)]
    keys[4] = "forbidden"
    updates = updates_setting(keys)
    for update in updates:
        channel.incoming.put_nowait(protocol.sync_update(update))
    serving = asyncio.create_task(server.serve(name, channel, access=access(), acks=True))
    await asyncio.sleep(0.1)
    assert channel.ack_frames() == []  # held at the commit: nothing acknowledged
    store.gate.set()
    await channel.until(len(updates) - 1)
    assert channel.acks() == [n for n in range(1, 11) if n != 5]
    # every ack covered only committed updates (the refused one is not stored)
    for number, committed in channel.checked:
        assert number - (1 if number >= 5 else 0) <= committed
    messages = [protocol.decode(frame) for frame in channel.sent]
    error_at = next(i for i, m in enumerate(messages) if isinstance(m, protocol.ErrorMessage))
    error = messages[error_at]
    assert isinstance(error, protocol.ErrorMessage) and (error.number, error.code) == (5, "invalid")
    covering = next(
        i
        for i, m in enumerate(messages)
        if isinstance(m, protocol.AckUpToMessage) and m.number >= 5
    )
    assert error_at < covering  # the refusal is told before the ack that covers its number
    assert len(channel.ack_frames()) == len(store.commits)
    channel.incoming.put_nowait(None)
    await serving
    await server.close()


def test_the_field_client_reads_the_cumulative_ack() -> None:
    from clients.field import wire

    assert wire.decode(protocol.ack_upto(300)) == wire.AckUpToMessage(300)
    assert wire.decode(protocol.ack(7)) == wire.AckMessage(7)


class SeenBeforePolicy(PermissivePolicy):
    """Records, for each validation, the keys of ``before`` and of ``after``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[str], list[str]]] = []

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        super().validate(doc_name=doc_name, before=before, after=after, access=access)
        keys = (sorted(before.get("m", type=Map)), sorted(after.get("m", type=Map)))
        self.seen.append(keys)


async def test_held_updates_and_deletions_are_told_apart_within_a_group(database: str) -> None:
    policy = SeenBeforePolicy()
    room = await opened(UpdateStore(), policy)
    writer: Doc = Doc()
    made = recorded(writer)
    m = writer.get("m", type=Map)
    m["a"] = "a"
    m["b"] = "b"
    del m["a"]  # a deletion only: no new structs, the state vector stays the same
    add_a, add_b, delete_a = made
    results = await room.receive_many(
        [add_a, add_b, add_a, delete_a, delete_a, add_b], access=access(), origin=None
    )
    assert results == [True, True, False, True, False, False]
    # each update is checked against the group's earlier accepted ones
    assert policy.seen == [([], ["a"]), (["a"], ["a", "b"]), (["a", "b"], ["b"])]
    assert await rows(room.name) == [add_a, add_b, delete_a]
    assert room.doc.get("m", type=Map).to_py() == {"b": "b"}
    # after a refusal the copies are rebuilt, and held updates are still recognised
    (bad,) = updates_setting(["forbidden"])
    results = await room.receive_many([bad, delete_a, add_a], access=access(), origin=None)
    assert isinstance(results[0], Refused) and results[1:] == [False, False]
    # a read-only sender resending what is held is not refused
    reader = Access(
        user_id=2, username="viewer", role="viewer", department_code=None, writable=False
    )
    assert await room.receive(add_b, access=reader, origin=None) is False
    await room.close()
