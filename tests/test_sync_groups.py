"""Group validation (a policy with ``validates_groups``) and the room's other per-group paths:
a writer's group is applied to the scratch copy in one transaction and validated once; when
that fails for any reason, the group is checked one update at a time, so that the results are
what they would have been without group validation."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from pycrdt import Doc, Map, Text

import sync.room as room_module
from storage.models import DocumentUpdate
from sync import protocol
from sync.policy import Access
from sync.room import EMPTY_UPDATE, HELD, Ledger, Refused, Room, RoomSettings
from sync.server import Inbox
from sync.store import UpdateStore
from tests.sync_support import PermissivePolicy, access, recorded, two_writers


class GroupPolicy(PermissivePolicy):
    """``PermissivePolicy`` judging groups as a whole; records each validation's keys."""

    validates_groups = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[str], list[str]]] = []

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        self.seen.append((sorted(before.get("m", type=Map)), sorted(after.get("m", type=Map))))
        super().validate(doc_name=doc_name, before=before, after=after, access=access)


class MeddlingGroupPolicy(GroupPolicy):
    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        super().validate(doc_name=doc_name, before=before, after=after, access=access)
        before.get("m", type=Map)["meddled"] = True
        after.get("m", type=Map)["meddled"] = True


class Peer:
    def __init__(self) -> None:
        self.access = access()
        self.received: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.received.append(message)


def one_writer(keys: list[str]) -> list[bytes]:
    """One update per key, all from one writer, each after the one before."""
    doc: Doc = Doc()
    made = recorded(doc)
    for key in keys:
        doc.get("m", type=Map)[key] = key
    return made


async def opened(policy: PermissivePolicy, settings: RoomSettings | None = None) -> Room:
    room = Room(
        f"test/{uuid.uuid4().hex[:12]}",
        policy=policy,
        store=UpdateStore(),
        settings=settings or RoomSettings(),
    )
    await room.load()
    return room


async def rows(name: str) -> list[bytes]:
    data = await DocumentUpdate.filter(doc=name).order_by("id").values_list("data", flat=True)
    return [bytes(d) for d in data]


def keys(room: Room) -> dict[str, object]:
    return room.doc.get("m", type=Map).to_py() or {}


async def test_a_group_is_validated_once_and_the_next_check_sees_all_of_it(
    database: str,
) -> None:
    policy = GroupPolicy()
    room = await opened(policy)
    other = Peer()
    room.join(other)
    a, b, c, d, e, f = one_writer(["a", "b", "c", "d", "e", "f"])
    assert await room.receive_many([a, b, c], access=access(), origin=None) == [True] * 3
    assert policy.seen == [([], ["a", "b", "c"])]
    # a single update next: checked on its own, against the whole group
    assert await room.receive(d, access=access(), origin=None) is True
    # then a group again, against everything before it
    assert await room.receive_many([e, f], access=access(), origin=None) == [True, True]
    assert policy.seen[1:] == [
        (["a", "b", "c"], ["a", "b", "c", "d"]),
        (["a", "b", "c", "d"], ["a", "b", "c", "d", "e", "f"]),
    ]
    assert await rows(room.name) == [a, b, c, d, e, f]
    assert keys(room) == {k: k for k in "abcdef"}
    # the others got each group as one update
    broadcasts = [protocol.decode(frame) for frame in other.received[1:]]
    assert len(broadcasts) == 3
    seen: Doc = Doc()
    for message in broadcasts:
        assert isinstance(message, protocol.SyncMessage)
        assert message.kind == protocol.SyncType.UPDATE
        seen.apply_update(message.payload)
    assert seen.get("m", type=Map).to_py() == {k: k for k in "abcdef"}
    await room.close()


async def test_a_refused_group_is_checked_one_by_one_and_refuses_what_depends_on_a_refusal(
    database: str,
) -> None:
    policy = GroupPolicy()
    room = await opened(policy)
    ok1, bad, after_bad = one_writer(["a", "forbidden", "b"])
    (other,) = one_writer(["c"])  # another writer's: independent of the refusal
    results = await room.receive_many([ok1, bad, after_bad, other], access=access(), origin=None)
    assert results[0] is True and results[3] is True
    assert isinstance(results[1], Refused) and results[1].code == "invalid"
    # "b" was written after "forbidden" by the same writer: it depends on it, same refusal
    assert isinstance(results[2], Refused)
    assert (results[2].code, results[2].reason) == (results[1].code, results[1].reason)
    # the group once, then each update against the earlier accepted ones; the dependent one
    # never reaches the policy
    assert policy.seen == [
        ([], ["a", "b", "c", "forbidden"]),
        ([], ["a"]),
        (["a"], ["a", "forbidden"]),
        (["a"], ["a", "c"]),
    ]
    assert await rows(room.name) == [ok1, other]
    assert keys(room) == {"a": "a", "c": "c"}
    # the copies are right afterwards: a later group is judged against a and c
    (d,) = one_writer(["d"])
    (e,) = one_writer(["e"])
    assert await room.receive_many([d, e], access=access(), origin=None) == [True, True]
    assert policy.seen[-1] == (["a", "c"], ["a", "c", "d", "e"])
    await room.close()


async def test_held_and_deleting_updates_in_a_group_get_their_one_by_one_results(
    database: str,
) -> None:
    policy = GroupPolicy()
    room = await opened(policy)
    writer: Doc = Doc()
    made = recorded(writer)
    m = writer.get("m", type=Map)
    m["a"] = "a"
    m["b"] = "b"
    del m["a"]  # a deletion only: the state vector does not move
    add_a, add_b, delete_a = made
    results = await room.receive_many(
        [add_a, add_b, add_a, delete_a, delete_a, add_b], access=access(), origin=None
    )
    assert results == [True, True, False, True, False, False]
    assert policy.seen == [([], ["b"])]  # still one validation for the group
    assert await rows(room.name) == [add_a, add_b, delete_a]
    assert keys(room) == {"b": "b"}
    # everything held: nothing stored, nothing refused
    assert await room.receive_many([add_a, add_b], access=access(), origin=None) == [
        False,
        False,
    ]
    assert await rows(room.name) == [add_a, add_b, delete_a]
    await room.close()


async def test_a_writers_whole_state_after_its_updates_is_held_within_the_group(
    database: str,
) -> None:
    """A tablet answers the server's sync step 1 with its whole document, which may arrive in
    the same group as its updates: held, and the group still validated once."""
    policy = GroupPolicy()
    room = await opened(policy)
    writer: Doc = Doc()
    made = recorded(writer)
    m = writer.get("m", type=Map)
    for key in ("a", "b", "a", "c"):
        m[key] = key + "!"  # "a" twice: the second deletes the first
    del m["b"]
    whole = writer.get_update()
    results = await room.receive_many([*made, whole], access=access(), origin=None)
    assert results == [True] * len(made) + [False]
    assert len(policy.seen) == 1
    assert await rows(room.name) == made
    assert keys(room) == {"a": "a!", "c": "c!"}
    # the copies are right afterwards: the whole state again is held, alone or in a group
    assert await room.receive(whole, access=access(), origin=None) is False
    (d,) = one_writer(["d"])
    assert await room.receive_many([whole, d], access=access(), origin=None) == [False, True]
    assert policy.seen[-1] == (["a", "c"], ["a", "c", "d"])
    await room.close()


async def test_an_unreadable_update_in_a_group_is_refused_alone(database: str) -> None:
    room = await opened(GroupPolicy())
    a, b = one_writer(["a", "b"])
    garbage = b"\x05\xff\xff\xff"
    results = await room.receive_many([a, garbage, b], access=access(), origin=None)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Refused) and results[1].code == "malformed_update"
    assert await rows(room.name) == [a, b]
    assert keys(room) == {"a": "a", "b": "b"}
    await room.close()


async def test_empty_and_too_large_updates_do_not_stop_the_group(database: str) -> None:
    policy = GroupPolicy()
    room = await opened(policy, RoomSettings(max_update_bytes=200))
    a, b = one_writer(["a", "b"])
    (large,) = one_writer(["x" * 500])
    results = await room.receive_many([EMPTY_UPDATE, a, large, b], access=access(), origin=None)
    assert results[0] is False and results[1] is True and results[3] is True
    assert isinstance(results[2], Refused) and results[2].code == "too_large"
    assert policy.seen == [([], ["a", "b"])]  # the others, validated as one group
    assert await rows(room.name) == [a, b]
    await room.close()


async def test_updates_lacking_dependencies_in_a_group_are_held_and_settled_later(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room_module, "MERGE_CHUNK", 2)  # settled ones in several chunks
    room = await opened(GroupPolicy())
    from_a, from_others = two_writers()
    (c,) = one_writer(["c"])
    group = [c, *from_others]
    ledger = Ledger()
    results = await room.receive_many(group, access=access(), origin=None, ledger=ledger)
    assert results == [True, HELD, HELD, True]
    assert room.pending == [] and str(room.doc.get("t", type=Text)) == ""
    assert await room.receive_many(from_a, access=access(), origin=None, ledger=ledger) == [True]
    assert ledger.take_settled() == [(2, True), (3, True)]
    assert room.pending == []
    reference: Doc = Doc()
    for update in [*from_a, *group]:
        reference.apply_update(update)
    assert str(room.doc.get("t", type=Text)) == str(reference.get("t", type=Text)) == "bcXYZ"
    assert keys(room) == reference.get("m", type=Map).to_py()
    assert "c" in keys(room)
    await room.close()


async def test_a_long_group_is_merged_in_chunks_into_one_broadcast(database: str) -> None:
    room = await opened(GroupPolicy())
    other = Peer()
    room.join(other)
    updates = one_writer([f"k{i}" for i in range(room_module.MERGE_CHUNK * 2 + 5)])
    assert await room.receive_many(updates, access=access(), origin=None) == [True] * len(updates)
    (broadcast,) = other.received[1:]
    message = protocol.decode(broadcast)
    assert isinstance(message, protocol.SyncMessage)
    seen: Doc = Doc()
    seen.apply_update(message.payload)
    assert seen.get("m", type=Map).to_py() == keys(room)
    assert len(keys(room)) == len(updates)
    await room.close()


async def test_a_read_only_group_is_refused_update_by_update(database: str) -> None:
    policy = GroupPolicy()
    room = await opened(policy)
    a, b = one_writer(["a", "b"])
    assert await room.receive_many([a], access=access(), origin=None) == [True]
    reader = access("viewer", writable=False, user_id=2)
    results = await room.receive_many([a, b], access=reader, origin=None)
    assert results[0] is False  # held: not refused
    assert isinstance(results[1], Refused) and results[1].code == "read_only"
    assert await rows(room.name) == [a]
    await room.close()


async def test_a_policy_that_changes_the_group_copies_does_not_change_the_room(
    database: str,
) -> None:
    policy = MeddlingGroupPolicy()
    room = await opened(policy)
    a, b, c, d = one_writer(["a", "b", "c", "d"])
    assert await room.receive_many([a, b], access=access(), origin=None) == [True, True]
    assert await room.receive_many([c, d], access=access(), origin=None) == [True, True]
    # the copies were rebuilt after the meddling: the second group saw no "meddled"
    assert policy.seen == [([], ["a", "b"]), (["a", "b"], ["a", "b", "c", "d"])]
    assert keys(room) == {k: k for k in "abcd"}
    assert await rows(room.name) == [a, b, c, d]
    # with a deletion in the group, the copies are needed after the validation: one by one
    writer: Doc = Doc()
    made = recorded(writer)
    writer.get("m", type=Map)["e"] = "e"
    del writer.get("m", type=Map)["e"]
    add_e, delete_e = made
    results = await room.receive_many([add_e, delete_e, delete_e], access=access(), origin=None)
    assert results == [True, True, False]
    assert keys(room) == {k: k for k in "abcd"}
    assert await rows(room.name) == [a, b, c, d, add_e, delete_e]
    await room.close()


async def test_the_inbox_keeps_order_and_holds_the_pusher_at_its_limit() -> None:
    inbox = Inbox(2)
    await inbox.push(b"1")
    await inbox.push(b"2")
    third = asyncio.create_task(inbox.push(b"3"))
    await asyncio.sleep(0)
    assert not third.done()  # full: the pusher waits
    assert await inbox.take(1) == [b"1"]
    await asyncio.wait_for(third, 1)
    inbox.push_nowait(None)  # the end marker goes in even past the limit
    assert await inbox.take(10) == [b"2", b"3", None]
    taking = asyncio.create_task(inbox.take(10))
    await asyncio.sleep(0)
    assert not taking.done()  # empty: the taker waits
    await inbox.push(b"4")
    assert await asyncio.wait_for(taking, 1) == [b"4"]


class AcceptAll(PermissivePolicy):
    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        self.validated += 1


class AcceptAllGroups(AcceptAll):
    validates_groups = True


def random_history(rng: random.Random) -> list[bytes]:
    """Two writers' updates (sets, deletions, text edits, syncing with each other), with
    resent updates, whole states and some out of order (pending)."""
    writers: list[Doc] = [Doc(client_id=11), Doc(client_id=22)]
    made: list[list[bytes]] = [recorded(doc) for doc in writers]
    out: list[bytes] = []
    for _ in range(rng.randint(5, 40)):
        number = rng.randrange(2)
        doc, other = writers[number], writers[1 - number]
        before = len(made[number])
        m, text = doc.get("m", type=Map), doc.get("t", type=Text)
        op = rng.randrange(6)
        if op == 0 and len(m):
            del m[rng.choice(sorted(m))]
        elif op == 1 and len(text):
            start = rng.randrange(len(text))
            del text[start : min(len(text), start + rng.randint(1, 3))]
        elif op == 2:
            text.insert(rng.randint(0, len(text)), rng.choice(["ab", "xyz", "q"]))
        elif op == 3:
            doc.apply_update(other.get_update(doc.get_state()))
        else:
            m[rng.choice("abcde")] = rng.randint(0, 9)
        out.extend(made[number][before:])
        roll = rng.random()
        if roll < 0.15 and out:
            out.append(rng.choice(out))  # resent
        elif roll < 0.25:
            out.append(doc.get_update())  # a whole state
    for _ in range(rng.randint(0, 2)):  # a few out of order
        if len(out) > 2:
            index = rng.randrange(len(out) - 1)
            out[index], out[index + 1] = out[index + 1], out[index]
    return out


async def test_group_validation_gives_the_one_by_one_results(database: str) -> None:
    rng = random.Random(20261128)
    validations = {"grouped": 0, "single": 0}
    for _ in range(25):
        history = random_history(rng)
        grouping, one_by_one = AcceptAllGroups(), AcceptAll()
        grouped, single = await opened(grouping), await opened(one_by_one)
        start = 0
        answers: dict[str, dict[int, object]] = {"grouped": {}, "single": {}}
        ledgers = {"grouped": Ledger(), "single": Ledger()}
        while start < len(history):
            end = start + rng.randint(1, 12)
            group = history[start:end]
            start = end
            for name, room in (("single", single), ("grouped", grouped)):
                ledger = ledgers[name]
                first = ledger.received + 1
                results = await room.receive_many(
                    group, access=access(), origin=None, ledger=ledger
                )
                answers[name].update(enumerate(results, first))
                answers[name].update(ledger.take_settled())  # a held update's final answer
        # The same final answer for each update (a group holding an update and the one it
        # waits for is kept whole; one by one, the first is held, then settled).
        assert answers["grouped"] == answers["single"]
        assert sorted(await rows(grouped.name)) == sorted(await rows(single.name))
        assert grouped.doc.get_update() == single.doc.get_update() or (
            grouped.doc.get("m", type=Map).to_py() == single.doc.get("m", type=Map).to_py()
            and str(grouped.doc.get("t", type=Text)) == str(single.doc.get("t", type=Text))
        )
        assert len(grouped.pending) == len(single.pending)
        validations["grouped"] += grouping.validated
        validations["single"] += one_by_one.validated
        await grouped.close()
        await single.close()
    # The group path was taken: whole groups were judged with one validation.
    assert validations["grouped"] < validations["single"] / 2, validations
