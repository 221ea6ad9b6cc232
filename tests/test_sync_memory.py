"""Nothing outlives its room: no pycrdt ``Doc`` (the room's, or a validation copy) stays alive
after a room unloads or an update is refused, however many times it happens."""

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest
from pycrdt import Doc, Map, merge_updates

from sync import protocol
from sync.room import Ledger, Refused, Room, RoomSettings
from sync.store import UpdateStore
from tests.sync_support import PermissivePolicy, access


def live_docs() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, Doc))


def one_writer(pairs: list[tuple[str, str]]) -> list[bytes]:
    """One update per pair, from one writer (an observed Doc lives on until unobserved)."""
    doc: Doc = Doc()
    made: list[bytes] = []
    subscription = doc.observe(lambda event: made.append(event.update))
    for key, value in pairs:
        doc.get("m", type=Map)[key] = value
    doc.unobserve(subscription)
    return made


async def test_rooms_and_refusals_leave_no_doc_behind(database: str) -> None:
    store = UpdateStore()
    policy = PermissivePolicy()

    async def cycle(refusals: int) -> None:
        """A room loads, a writer's update is kept, ``refusals`` updates are refused (and
        the ones that depend on them), one is held, and the room unloads."""
        room = Room(
            f"test/{uuid.uuid4().hex[:12]}", policy=policy, store=store, settings=RoomSettings()
        )
        await room.load()
        ledger = Ledger()
        kept, *refused = one_writer([("a", "a")] + [("forbidden", str(i)) for i in range(refusals)])
        results = await room.receive_many(
            [kept, *refused], access=access(), origin=None, ledger=ledger
        )
        assert results[0] is True
        assert all(isinstance(result, Refused) for result in results[1:])
        _, gap = one_writer([("x", "x"), ("y", "y")])
        assert await room.receive_many([gap], access=access(), origin=None, ledger=ledger) != [True]
        await room.close()

    await cycle(3)  # warm up: whatever is made once (caches) is made here
    baseline = live_docs()
    for _ in range(20):
        await cycle(5)
    assert live_docs() - baseline <= 1, "Docs outlive their rooms or refusals"


def resting_room(policy: PermissivePolicy | None = None) -> Room:
    return Room(
        f"test/{uuid.uuid4().hex[:12]}",
        policy=policy or PermissivePolicy(),
        store=UpdateStore(),
        settings=RoomSettings(materialise_delay=30, materialise_max_wait=30, rest_after=0.05),
    )


def contents(update: bytes) -> dict[str, str]:
    doc: Doc = Doc()
    doc.apply_update(update)
    return doc.get("m", type=Map).to_py() or {}


async def rested(room: Room) -> None:
    """Wait (bounded) until the room rests: unused for its ``rest_after`` (0.05 s)."""
    for _ in range(200):
        if room.resting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{room.name} did not rest within 10 s")


class Listener:
    access = access("viewer", writable=False)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.sent.append(message)


async def test_a_room_at_rest_keeps_no_doc_and_answers_from_its_encoded_state(
    database: str,
) -> None:
    """Once unused for ``rest_after`` seconds the room keeps its document encoded: the
    scratch copies and the room's own ``Doc`` are gone and nothing of theirs stays alive.
    Peers joining, sync steps and materialisation are answered without rebuilding the
    ``Doc``; the next update rebuilds it, and is judged as in an awake room."""
    policy = PermissivePolicy()
    room = resting_room(policy)
    await room.load()
    first, second = one_writer([("a", "1"), ("b", "2")])
    (third,) = one_writer([("forbidden", "x")])  # another writer's, refused by the policy
    baseline = live_docs()  # the room's document
    assert await room.receive(first, access=access(), origin=None)
    assert live_docs() == baseline + 2  # the scratch copies, kept for the next update
    awake_state, awake_update = room.state_vector(), room.encoded()
    await room.catch_up()  # the rows written
    await rested(room)
    assert live_docs() == baseline - 1
    assert room.state_vector() == awake_state and room.encoded() == awake_update

    listener = Listener()
    room.join(listener)  # sync step 1 with the document's state vector
    assert protocol.sync_step1(awake_state) in listener.sent
    (step2,) = room.step2_for(b"\x00")
    assert step2 == protocol.sync_step2(awake_update)
    with pytest.raises(Refused) as refused:
        room.step2_for(b"\xff\xff")
    assert refused.value.code == "bad_state_vector"
    assert await room.catch_up()  # nothing to write: the rows are at the log's position
    assert room.resting and live_docs() == baseline - 1

    with pytest.raises(Refused) as refused:  # judged against the document rebuilt
        await room.receive(third, access=access(), origin=None)
    assert refused.value.code == "invalid"
    assert await room.receive(second, access=access(), origin=None)
    assert not room.resting
    assert room.doc.get("m", type=Map).to_py() == {"a": "1", "b": "2"}
    assert listener.sent[-1] == protocol.sync_update(second)  # broadcast from the woken room
    await room.catch_up()
    assert policy.materialised[-1][1] == {"a": "1", "b": "2"}
    await rested(room)
    assert contents(room.encoded()) == {"a": "1", "b": "2"}
    await room.close()
    assert contents(merge_updates(*await room.store.load(room.name))) == {"a": "1", "b": "2"}


async def test_pending_updates_survive_a_rest(database: str) -> None:
    """An update stored before its predecessor (committed by another process) waits in the
    resting room's encoded state and is sent to joining peers; when the predecessor arrives
    the rebuilt document holds both."""
    store = UpdateStore()
    name = f"test/{uuid.uuid4().hex[:12]}"
    early, late = one_writer([("a", "1"), ("b", "2")])
    await store.append(name, late)  # its predecessor is not in the log yet
    room = Room(
        name,
        policy=PermissivePolicy(),
        store=store,
        settings=RoomSettings(materialise_delay=30, materialise_max_wait=30, rest_after=0.05),
    )
    await room.load()
    assert room.pending == [late]
    await rested(room)
    messages = room.step2_for(b"\x00")
    assert protocol.sync_update(late) in messages
    assert await room.receive(early, access=access(), origin=None)
    assert room.pending == []
    assert room.doc.get("m", type=Map).to_py() == {"a": "1", "b": "2"}
    await room.close()
