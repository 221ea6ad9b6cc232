"""Rows catch up with the log: each document records up to which log position its rows are
written; a room whose log is further on (a commit acknowledged just before a crash)
materialises when it loads, and the server's start-up catch-up materialises every such
document without waiting for a client."""

from __future__ import annotations

import uuid

from pycrdt import Doc, Map

from sync.room import Room, RoomSettings
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.sync_support import PermissivePolicy, access, recorded, until

SLOW = RoomSettings(materialise_delay=60.0, materialise_max_wait=60.0)  # never on its own


def doc_name() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def setting(pairs: dict[str, int]) -> list[bytes]:
    doc: Doc = Doc()
    updates = recorded(doc)
    for key, value in pairs.items():
        doc.get("m", type=Map)[key] = value
    return updates


async def test_the_log_gives_its_position_and_projections_never_move_back(
    database: str,
) -> None:
    store, name = UpdateStore(), doc_name()
    assert (await store.log(name)).position == 0
    first = await store.append(name, setting({"a": 1})[0])
    last = await store.append_many(name, setting({"b": 2, "c": 3}))
    assert last > first and (await store.log(name)).position == last
    assert name in await store.behind()
    await store.mark_projected(name, last)
    await store.mark_projected(name, first)  # an older materialisation finishing late
    assert await store.projected(name) == last
    assert name not in await store.behind()
    await store.compact(name)
    assert (await store.log(name)).position == last  # the snapshot keeps the position
    assert name not in await store.behind()


async def test_a_room_whose_log_is_ahead_of_its_rows_materialises_when_it_loads(
    database: str,
) -> None:
    store, name = UpdateStore(), doc_name()
    policy = PermissivePolicy()
    committed = Room(name, policy=policy, store=store, settings=SLOW)
    await committed.load()
    for update in setting({"signed": 1}):
        assert await committed.receive(update, access=access(), origin=None)
    # the crash: committed (and acknowledged) but never materialised, the room never closed
    assert committed._projector is not None
    committed._projector.cancel()
    assert policy.materialised == []
    assert await store.projected(name) < committed.position

    reopened = Room(name, policy=policy, store=store, settings=SLOW)
    await reopened.load()
    await until(lambda: bool(policy.materialised), "the materialisation at load")
    assert policy.materialised[-1] == (name, {"signed": 1})
    await until(lambda: reopened._projected == reopened.position, "the projection recorded")
    assert await store.projected(name) == reopened.position
    await reopened.close()


async def test_the_start_up_catch_up_materialises_every_document_left_behind(
    database: str,
) -> None:
    store = UpdateStore()
    behind = {doc_name(): {"a": 1}, doc_name(): {"b": 2}}
    for name, pairs in behind.items():
        await store.append_many(name, setting(pairs))
    projected = doc_name()
    await store.append_many(projected, setting({"c": 3}))
    await store.mark_projected(projected, (await store.log(projected)).position)
    untouched = doc_name().replace("test/", "gone/")  # no policy serves it any more
    await store.append(untouched, setting({"d": 4})[0])

    policy = PermissivePolicy()
    server = SyncServer(
        store=store,
        policy_for=lambda name: policy if name.startswith("test/") else None,
        materialise_delay=60.0,
    )
    try:
        assert await server.catch_up() >= 2
        materialised = dict(policy.materialised)
        assert {name: materialised.get(name) for name in behind} == behind
        assert projected not in materialised and untouched not in materialised
        assert set(behind).isdisjoint(await store.behind())
        policy.materialised.clear()
        assert await server.catch_up() == 0
        assert policy.materialised == []
    finally:
        await server.close()
