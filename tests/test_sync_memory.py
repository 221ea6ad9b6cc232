"""Nothing outlives its room: no pycrdt ``Doc`` (the room's, or a validation copy) stays alive
after a room unloads or an update is refused, however many times it happens."""

from __future__ import annotations

import asyncio
import gc
import uuid

from pycrdt import Doc, Map

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


async def test_a_writer_pausing_leaves_its_room_with_one_doc(database: str) -> None:
    """The validation copies (two more documents) go once the writer paused for
    ``copies_idle`` seconds, and nothing of theirs stays alive; the next update rebuilds them."""
    room = Room(
        f"test/{uuid.uuid4().hex[:12]}",
        policy=PermissivePolicy(),
        store=UpdateStore(),
        settings=RoomSettings(materialise_delay=30, materialise_max_wait=30, copies_idle=0.05),
    )
    await room.load()
    first, second = one_writer([("a", "1"), ("b", "2")])
    baseline = live_docs()
    assert await room.receive(first, access=access(), origin=None)
    assert live_docs() == baseline + 2  # the scratch copies, kept for the next update
    await room.catch_up()  # the rows written
    assert live_docs() == baseline + 2  # a pause in a burst keeps them
    await asyncio.sleep(0.2)  # the writer paused for copies_idle
    assert live_docs() == baseline
    assert await room.receive(second, access=access(), origin=None)
    assert room.doc.get("m", type=Map).to_py() == {"a": "1", "b": "2"}
    await room.close()
