"""The durable update log: order, compaction, and pending updates that compaction must keep."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pycrdt import Doc, Map, Text

from storage.models import DocumentSnapshot, DocumentUpdate
from sync.store import INSERT_BATCH, DocState, UpdateStore
from tests.sync_support import recorded, two_writers


def doc_name() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def rebuilt(updates: list[bytes]) -> Doc:
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


async def test_append_and_load_keep_arrival_order(database: str) -> None:
    store = UpdateStore()
    name = doc_name()
    doc: Doc = Doc()
    updates = recorded(doc)
    for key in "abc":
        doc.get("m", type=Map)[key] = key
    ids = [await store.append(name, update) for update in updates]
    assert ids == sorted(ids)
    assert await store.load(name) == updates
    assert await store.load(doc_name()) == []


async def test_append_many_inserts_in_arrival_order_in_one_go(database: str) -> None:
    """The raw multi-row INSERT keeps ids in the order of the updates (more than one SQLite
    statement's worth too), interleaved with another document's, with a creation time."""
    store = UpdateStore()
    name, other = doc_name(), doc_name()
    doc: Doc = Doc()
    updates = recorded(doc)
    for index in range(INSERT_BATCH * 2 + 7):
        doc.get("m", type=Map)[f"k{index % 50}"] = index
    await store.append_many(name, updates[:3])
    await store.append_many(other, updates[:2])
    await store.append_many(name, updates[3:])
    rows = await DocumentUpdate.filter(doc=name).order_by("id").values_list("data", "created_at")
    assert [bytes(data) for data, _ in rows] == updates
    assert all(created is not None for _, created in rows)
    # the ids themselves follow the arrival order (load orders by id)
    by_id = await DocumentUpdate.filter(doc=name).values_list("id", "data")
    assert [bytes(data) for _, data in sorted(by_id)] == updates
    assert await store.load(name) == updates
    assert await store.load(other) == updates[:2]
    assert (
        rebuilt(await store.load(name)).get("m", type=Map).to_py() == doc.get("m", type=Map).to_py()
    )


async def test_compaction_folds_covered_rows_into_a_snapshot(database: str) -> None:
    store = UpdateStore()
    name = doc_name()
    doc: Doc = Doc()
    updates = recorded(doc)
    for i in range(20):
        doc.get("m", type=Map)[f"k{i}"] = i
    del doc.get("m", type=Map)["k3"]
    for update in updates:
        await store.append(name, update)
    result = await store.compact(name)
    assert (result.rows_before, result.rows_deleted, result.rows_kept) == (21, 21, 0)
    assert await DocumentUpdate.filter(doc=name).count() == 0
    snapshot = await DocumentSnapshot.get(doc=name)
    assert snapshot.upto_id > 0
    loaded = await store.load(name)
    assert len(loaded) == 1
    assert rebuilt(loaded).get("m", type=Map).to_py() == doc.get("m", type=Map).to_py()
    # more updates after the snapshot are loaded after it
    doc.get("m", type=Map)["late"] = "yes"
    await store.append(name, updates[-1])
    assert rebuilt(await store.load(name)).get("m", type=Map)["late"] == "yes"
    assert (await store.compact(name)).rows_deleted == 1


async def test_compaction_keeps_updates_whose_predecessor_is_missing(database: str) -> None:
    store = UpdateStore()
    name = doc_name()
    from_a, from_b = two_writers()
    for update in from_b:  # A's insert never arrived
        await store.append(name, update)
    partial = rebuilt(from_b)
    assert str(partial.get("t", type=Text)) == ""  # B's text edits are pending
    assert partial.get("m", type=Map)["b"] == 2

    result = await store.compact(name)
    # m.b is covered; the insert after A's item and the delete of A's item are not
    assert result.rows_kept == 2
    assert result.rows_deleted == len(from_b) - 2

    loaded = await store.load(name)
    await store.append(name, from_a[0])  # the missing predecessor arrives
    everything = rebuilt([*loaded, from_a[0]])
    assert str(everything.get("t", type=Text)) == "bcXYZ"
    assert everything.get("m", type=Map).to_py() == {"b": 2.0}

    again = await store.compact(name)  # now everything is covered
    assert again.rows_kept == 0
    final = rebuilt(await store.load(name))
    assert str(final.get("t", type=Text)) == "bcXYZ"


async def test_compaction_of_an_empty_log_changes_nothing(database: str) -> None:
    store = UpdateStore()
    name = doc_name()
    assert (await store.compact(name)).rows_before == 0
    assert await store.load(name) == []


def test_doc_state_covers_what_it_holds_only() -> None:
    from_a, from_b = two_writers()
    full = rebuilt([*from_a, *from_b])
    state = DocState.of(full)
    assert all(state.covers(update) for update in [*from_a, *from_b])

    partial = DocState.of(rebuilt(from_b))
    covers: Callable[[bytes], bool] = partial.covers
    assert not covers(from_a[0])
    assert [covers(update) for update in from_b].count(False) == 2
    assert not covers(b"\xff\xff garbage")

    # an item the document has but has not deleted: the delete is news
    only_a = DocState.of(rebuilt(from_a))
    delete_only = [u for u in from_b if u.startswith(b"\x00")]
    assert delete_only and not only_a.covers(delete_only[0])
