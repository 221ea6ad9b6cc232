"""One document, one truth, whichever server process commits: the sync core's rules for several
processes on one database, tested in-process with rooms and servers that do not hear each other
(no fan-out, no poll) unless a test says so.

On PostgreSQL each "process" has an ``UpdateStore`` of its own, as separate processes would
(only the advisory lock of the document's turn serialises them). SQLite supports one process
only, so there the two share one store (one process's turns).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pycrdt import Doc, Map

from server.sync_endpoint import sweep_while_holding
from storage.models import DocumentUpdate
from sync import protocol
from sync.policy import Access, UpdateRefused
from sync.room import Ledger, Refused, Room, RoomSettings
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.sync_support import PermissivePolicy, access, set_key

SETTINGS = RoomSettings(materialise_delay=30, materialise_max_wait=30)  # materialised by hand


@dataclass
class SealingPolicy(PermissivePolicy):
    """A rule about history, like a signed conclusion: once ``m.sealed`` is set, nothing in
    ``m`` changes. Materialisations are recorded with their state."""

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        super().validate(doc_name=doc_name, before=before, after=after, access=access)
        old = before.get("m", type=Map).to_py() or {}
        if "sealed" in old and (after.get("m", type=Map).to_py() or {}) != old:
            raise UpdateRefused("m is sealed; nothing in it may change")


@dataclass
class Peer:
    access: Access
    messages: list[bytes] = field(default_factory=list)

    def send(self, message: bytes) -> None:
        self.messages.append(message)

    def __hash__(self) -> int:
        return id(self)


def is_postgres(database: str) -> bool:
    return database.startswith(("postgres://", "postgresql://"))


@pytest.fixture
def stores(database: str) -> tuple[UpdateStore, UpdateStore]:
    first = UpdateStore()
    return first, UpdateStore() if is_postgres(database) else first


@pytest.fixture
def name() -> str:
    return f"instances/{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def rooms(
    stores: tuple[UpdateStore, UpdateStore], name: str
) -> AsyncIterator[tuple[Room, Room, SealingPolicy]]:
    """The same document open in two processes' rooms, both loaded before anything is written."""
    policy = SealingPolicy()
    pair = [Room(name, policy=policy, store=store, settings=SETTINGS) for store in stores]
    for room in pair:
        await room.load()
    try:
        yield pair[0], pair[1], policy
    finally:
        for room in pair:
            await room.close()


class Tablet:
    """A device's document and the updates it made."""

    def __init__(self, client_id: int) -> None:
        self.doc: Doc = Doc(client_id=client_id)

    def make(self, key: str, value: Any) -> bytes:
        made: list[bytes] = []
        subscription = self.doc.observe(lambda event: made.append(event.update))
        try:
            set_key(key, value)(self.doc)
        finally:
            self.doc.unobserve(subscription)
        return made[0]


def state(doc: Doc) -> dict[str, Any]:
    return doc.get("m", type=Map).to_py() or {}


async def log_state(store: UpdateStore, name: str) -> dict[str, Any]:
    doc: Doc = Doc()
    for update in await store.load(name):
        doc.apply_update(update)
    return state(doc)


async def test_what_one_process_sealed_cannot_be_changed_through_another(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, _ = rooms
    office, tablet = Tablet(1), Tablet(2)
    before_seal = tablet.make("note", "written before the seal reached this tablet")
    assert await first.receive(office.make("sealed", True), access=access(), origin=None)
    # The second room never heard of the seal; it judges after reading the log's tail.
    with pytest.raises(Refused) as refused:
        await second.receive(before_seal, access=access("tablet"), origin=None)
    assert refused.value.code == "invalid" and "sealed" in refused.value.reason
    assert state(second.doc) == {"sealed": True}  # caught up with the log while judging
    assert await log_state(first.store, name) == {"sealed": True}
    assert await DocumentUpdate.filter(doc=name).count() == 1


async def test_a_tablet_moving_between_processes_is_not_refused_and_adds_no_rows(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, _ = rooms
    tablet = Tablet(7)
    sent = [tablet.make("a", 1), tablet.make("b", 2)]
    results = await first.receive_many(sent, access=access(), origin=None, ledger=Ledger())
    assert results == [True, True]
    rows = await DocumentUpdate.filter(doc=name).count()
    # Offline meanwhile, then it reaches the other process, which never heard of the first
    # two: it sends its pending intents again and one more.
    later = tablet.make("c", 3)
    moved = Peer(access("tablet"))
    second.join(moved)
    results = await second.receive_many(
        [*sent, later], access=access("tablet"), origin=moved, ledger=Ledger()
    )
    assert results == [False, False, True]  # held already: acknowledged, never refused
    assert await DocumentUpdate.filter(doc=name).count() == rows + 1
    # Its whole state as a sync step 2: nothing new, no row.
    whole = tablet.doc.get_update()
    assert await first.receive_many([whole], access=access("tablet"), origin=None) == [False]
    assert await DocumentUpdate.filter(doc=name).count() == rows + 1
    assert state(first.doc) == state(second.doc) == await log_state(first.store, name)
    # The tablet's connection heard the rows of the first process it lacked (none here: it
    # made them) and nothing is pending anywhere.
    assert not first.pending and not second.pending


async def test_rows_are_written_from_the_log_never_from_an_older_copy(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, policy = rooms
    assert await first.receive(Tablet(1).make("a", 1), access=access(), origin=None)
    await first.materialise()
    assert policy.materialised[-1] == (name, {"a": 1})
    assert await first.receive(Tablet(2).make("b", 2), access=access(), origin=None)
    # The second room holds an old copy ({}); its materialisation writes the log's state.
    await second.materialise()
    assert policy.materialised[-1] == (name, {"a": 1, "b": 2})
    assert state(second.doc) == {}  # the room itself follows through its own path
    written = len(policy.materialised)
    await first.materialise()  # the rows are as far as the log: nothing to write
    await second.materialise()
    assert len(policy.materialised) == written
    head = (await first.store.log(name)).position
    assert await first.store.projected(name) == head
    assert await first.store.behind() == [] or name not in await first.store.behind()


async def test_the_rows_of_a_document_written_through_two_processes_are_left_to_the_last(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    """A room that follows another process's later commit leaves the rows to that process
    (which writes them from its later state, this room's commit included); a room's own
    materialisation that finds the rows written up to its position skips the document's turn."""
    first, second, policy = rooms
    assert await first.receive(Tablet(1).make("x", 1), access=access(), origin=None)
    await asyncio.sleep(0.01)
    assert first.lag_seconds() > 0  # its rows wait for it
    assert await second.receive(Tablet(2).make("y", 2), access=access(), origin=None)
    await first.follow(after=first.position, upto=second.position)  # as the fan-out tells it
    assert first.position == second.position
    assert first.lag_seconds() == 0  # left to the second, whose commit is later
    assert second.lag_seconds() > 0
    await second.catch_up()
    assert policy.materialised[-1] == (name, {"x": 1.0, "y": 2.0})
    turns = 0
    turn = first.store.turn

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal turns
        turns += 1
        return turn(*args, **kwargs)

    first.store.turn = counted  # type: ignore[method-assign]
    try:
        written = len(policy.materialised)
        assert await first.catch_up()
        assert turns == 0 and len(policy.materialised) == written
    finally:
        first.store.turn = turn  # type: ignore[method-assign]


async def test_a_room_follows_other_processes_commits_in_log_order(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, _ = rooms
    watcher = Peer(access("watcher"))
    second.join(watcher)
    start = second.position
    update = Tablet(3).make("a", 1)
    assert await first.receive(update, access=access(), origin=None)
    await second.follow(after=start, upto=first.position, update=update)  # the fan-out's news
    assert state(second.doc) == {"a": 1} and second.position == first.position
    assert protocol.sync_update(update) in watcher.messages
    # A message lost: the next one is ahead of the room, which reads the log instead.
    for client, key in ((4, "b"), (5, "c")):
        assert await first.receive(Tablet(client).make(key, 2), access=access(), origin=None)
    await second.follow(after=first.position - 1, upto=first.position, update=b"not applied")
    assert state(second.doc) == {"a": 1, "b": 2, "c": 2} and second.position == first.position
    # News the room is past is ignored.
    await second.follow(after=start, upto=start + 1, update=b"\x00")
    assert state(second.doc) == state(first.doc)


async def test_a_room_behind_a_compaction_by_another_process_catches_up_from_the_snapshot(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, _ = rooms
    for index in range(5):
        assert await first.receive(
            Tablet(10 + index).make(f"k{index}", index), access=access(), origin=None
        )
    compaction = await first.store.compact(name)
    assert compaction.rows_deleted >= 5
    assert await second.receive(Tablet(20).make("late", True), access=access(), origin=None)
    assert state(second.doc) == {**{f"k{i}": i for i in range(5)}, "late": True}
    assert await log_state(second.store, name) == state(second.doc)


def servers(stores: tuple[UpdateStore, UpdateStore], policy: PermissivePolicy) -> list[SyncServer]:
    return [
        SyncServer(
            store=store,
            policy_for=lambda _: policy,
            poll_seconds=0,
            materialise_delay=30,
            materialise_max_wait=30,
        )
        for store in stores
    ]


async def test_the_poll_brings_rooms_to_their_log_and_the_sweep_writes_rows_left_behind(
    stores: tuple[UpdateStore, UpdateStore], name: str
) -> None:
    policy = PermissivePolicy()
    first, second = servers(stores, policy)
    try:
        await first.edit(name, set_key("a", 1), access=access())
        await second.edit(name, set_key("b", 2), access=access())  # reads the log first
        assert state(second.rooms[name].doc) == {"a": 1, "b": 2}
        await first.edit(name, set_key("c", 3), access=access())
        assert await second.poll() == 1
        await asyncio.gather(*second._following)
        assert state(second.rooms[name].doc) == state(first.rooms[name].doc)
        assert second.rooms[name].position == first.rooms[name].position
        # A commit whose process died before writing its rows (nobody's room is dirty).
        killed = stores[0]
        await killed.append(name, Tablet(9).make("d", 4))
        assert name in await killed.behind()
        assert await second.sweep() == 0  # first seen behind: maybe about to be written
        assert await second.sweep() == 1  # still behind a sweep later: written
        assert policy.materialised[-1] == (name, {"a": 1, "b": 2, "c": 3, "d": 4})
        assert name not in await killed.behind()
        assert await second.sweep() == 0
    finally:
        await first.close()
        await second.close()


async def test_the_sweep_writes_a_document_no_room_holds(
    stores: tuple[UpdateStore, UpdateStore], name: str
) -> None:
    policy = PermissivePolicy()
    [server, _] = servers(stores, policy)
    try:
        await stores[0].append(name, Tablet(5).make("x", 1))
        await server.sweep()
        assert await server.sweep() == 1
        assert name not in server.rooms  # written from the log, no room opened
        assert policy.materialised == [(name, {"x": 1})]
    finally:
        await server.close()


async def test_racing_processes_judge_in_log_order(
    rooms: tuple[Room, Room, SealingPolicy], name: str
) -> None:
    first, second, _ = rooms
    for round_ in range(6):
        key = f"note{round_}"
        seal, note = Tablet(100 + round_).make("sealed", round_), Tablet(200 + round_).make(key, 1)
        if round_ % 2:
            first, second = second, first
        outcome = await asyncio.gather(
            first.receive(seal, access=access(), origin=None),
            second.receive(note, access=access(), origin=None),
            return_exceptions=True,
        )
        rows = await DocumentUpdate.filter(doc=name).order_by("id").values_list("data", flat=True)
        kept = [bytes(row) for row in rows]
        if round_ == 0:
            # The first seal wins or the note came first: never a note after the seal.
            assert outcome[0] is True
            if outcome[1] is True:
                assert kept.index(note) < kept.index(seal)
            else:
                assert isinstance(outcome[1], Refused) and note not in kept
        else:  # sealed already: whoever judges reads the seal from the log
            assert all(isinstance(result, Refused) for result in outcome), outcome
    assert state(first.doc) == state(second.doc) == await log_state(first.store, name)


async def test_one_instance_at_a_time_sweeps_and_another_takes_over_when_it_stops(
    stores: tuple[UpdateStore, UpdateStore],
) -> None:
    swept: dict[str, int] = {"a": 0, "b": 0}

    class Counting(SyncServer):
        holder = ""

        async def sweep(self) -> int:
            swept[self.holder] += 1
            return 0

    def counting(holder: str, store: UpdateStore) -> Counting:
        server = Counting(store=store, policy_for=lambda _: PermissivePolicy(), poll_seconds=0)
        server.holder = holder
        return server

    first, second = counting("a", stores[0]), counting("b", stores[1])
    now = datetime.now(UTC)
    loops = [
        asyncio.create_task(
            sweep_while_holding(server, every=0.02, holder=server.holder, clock=lambda: now)
        )
        for server in (first, second)
    ]
    await asyncio.sleep(0.3)
    assert (swept["a"] > 0) != (swept["b"] > 0), swept  # one holds the lease
    leader = "a" if swept["a"] else "b"
    loops[0 if leader == "a" else 1].cancel()  # it stops: its lease is given back
    with contextlib.suppress(asyncio.CancelledError):
        await loops[0 if leader == "a" else 1]
    other = "b" if leader == "a" else "a"
    before = swept[other]
    await asyncio.sleep(0.3)
    assert swept[other] > before, swept
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await first.close()
    await second.close()
