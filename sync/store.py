"""The durable update log of the CRDT documents, and its compaction.

Every accepted update is one ``DocumentUpdate`` row, committed before the room applies,
broadcasts or acknowledges it. ``load`` gives the snapshot (if any) followed by every row still
kept, in arrival order; applying them to a new ``Doc`` gives the document.

Compaction replaces rows by a snapshot: the state of a ``Doc`` built from the snapshot and the
rows. ``Doc.get_update()`` leaves out updates that are still pending (their predecessors have
not arrived), so a row is deleted only when the snapshot's state vector covers every struct of
it and every range it deletes; the others stay in the log and keep being loaded after the
snapshot. No update is ever merged with ``merge_updates`` (quadratic) or squashed away.

Each document's position is the id of the last update in its log (the snapshot's ``upto_id``
once compacted). ``DocumentProjection`` records up to which position the document's rows are
written: a room records it after each materialisation, and a room whose document is further
on than its rows (an update committed and acknowledged just before a crash) materialises it
when it loads; ``behind`` lists such documents for the start-up catch-up.

Several server processes may share one PostgreSQL database. Everything that writes a
document's log or its rows does it in its **turn** (``UpdateStore.turn``): one transaction
holding ``pg_advisory_xact_lock`` of the document (and, within a process, an asyncio lock of
the document, so that a process's own turns queue without holding pool connections). Per
document, ids are thus given and committed in one order: a reader that sees the row with id
``n`` sees every row of the document below ``n``. In its turn a writer reads the log's ``tail``
after the position it knows, so it judges and materialises the log's state, never a partial
copy. On SQLite (one process only) the write lock already serialises; a commit's turn is the
asyncio lock alone and a materialisation's turn a plain transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Snapshot, get_update
from tortoise import timezone
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from storage.models import DocumentProjection, DocumentSnapshot, DocumentUpdate
from sync.protocol import (
    ProtocolError,
    Reader,
    decode_delete_set,
    decode_state_vector,
    var_uint,
)

log = logging.getLogger("onewindow.sync.store")

MAX_DOC_NAME_LENGTH = 128  # DocumentUpdate.doc
DELETE_BATCH = 500  # ids per DELETE: SQLite limits the number of parameters
INSERT_BATCH = 500  # rows per SQLite INSERT: 2 + rows parameters, below SQLite's old 999
TABLE = DocumentUpdate._meta.db_table
# The first key of a document's advisory lock (``turn``): "sync" in ASCII; the second is the
# name's ``hashtext``. Two-key advisory locks never collide with one-key ones (the set-up lock).
TURN_LOCK_CLASS = 0x73796E63


def _postgres(connection: BaseDBAsyncClient) -> bool:
    return bool(connection.capabilities.dialect == "postgres")


@functools.lru_cache(maxsize=INSERT_BATCH)
def _sqlite_insert(rows: int) -> str:
    """One INSERT of ``rows`` rows, numbered parameters: ?1 the doc, ?2 the time, then data."""
    values = ", ".join(f"(?1, ?{index + 3}, ?2)" for index in range(rows))
    return f'INSERT INTO "{TABLE}" ("doc", "data", "created_at") VALUES {values} RETURNING "id"'


# One statement for any number of rows; the ORDER BY makes the ids follow the array's order
# (the serial's defaults are drawn as the sorted rows are inserted).
_POSTGRES_INSERT = (
    f'INSERT INTO "{TABLE}" ("doc", "data", "created_at") '
    "SELECT $1, u.data, $2 FROM unnest($3::bytea[]) WITH ORDINALITY AS u(data, n) ORDER BY u.n "
    'RETURNING "id"'
)


# The snapshot (kind 0) past a position, then the rows past it, in id order.
_TAIL = (
    'SELECT 0 AS kind, "upto_id" AS id, "data" FROM "document_snapshot" '
    'WHERE "doc" = {doc} AND "upto_id" > {after} '
    f'UNION ALL SELECT 1 AS kind, "id", "data" FROM "{TABLE}" '
    'WHERE "doc" = {doc} AND "id" > {after} ORDER BY kind, id'
)
_POSTGRES_TAIL = _TAIL.format(doc="$1", after="$2")
_SQLITE_TAIL = _TAIL.format(doc="?1", after="?2")


def _last_id(rows: list[dict[str, Any]]) -> int:
    """The largest id among the rows an ``INSERT ... RETURNING "id"`` gave."""
    return max(int(row["id"]) for row in rows)


def _holds(ranges: list[tuple[int, int]], clock: int, length: int) -> bool:
    """True when the sorted, merged ``ranges`` (clock, end) contain [clock, clock + length)."""
    end = clock + length
    for start, stop in ranges:
        if start <= clock < stop:
            if end <= stop:
                return True
            clock = stop
        elif start > clock:
            return False
    return length == 0


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def outside(update: bytes, state_vector: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """How many clients have structs in ``update`` past ``state_vector`` and, when none has,
    the update's delete ranges (client, clock, length). O(update); raises
    ``ProtocolError``, ``ValueError`` or ``RuntimeError`` on an unreadable update."""
    reader = Reader(get_update(update, state_vector), "update")
    count = reader.var_uint("struct client count")
    if count != 0:
        return count, []
    return 0, decode_delete_set(reader)


_FAR = 1 << 62  # a clock no client reaches


def _one_clock(client: int, clock: int) -> bytes:
    """A state vector that knows ``client`` up to ``clock`` and no other client."""
    return var_uint(1) + var_uint(client) + var_uint(clock)


def structs_past(update: bytes, client: int, clock: int) -> bool:
    """True when ``update`` carries structs of ``client`` at ``clock`` or later. O(update);
    False for an unreadable update."""
    try:
        near, _ = outside(update, _one_clock(client, clock))
        far, _ = outside(update, _one_clock(client, _FAR))
    except (ProtocolError, ValueError, RuntimeError):
        return False
    return near > far


def first_clocks(update: bytes) -> dict[int, int]:
    """The client id and first clock of the first group of structs of ``update`` (a device's
    own update has one): what a refusal of an update that could not be applied remembers.
    Empty when the update carries no structs or cannot be read."""
    try:
        reader = Reader(update, "update")
        if reader.var_uint("struct client count") == 0:
            return {}
        reader.var_uint("struct count")
        client = reader.var_uint("client")
        return {client: reader.var_uint("clock")}
    except ProtocolError:
        return {}


def integrated(update: bytes, state_vector: bytes, clocks: dict[int, int] | None = None) -> bool:
    """True when a document with ``state_vector``, to which ``update`` was applied, holds all
    of it: every struct lies below the state vector and every range it deletes lies below it
    too (those items are there, so the deletion was applied). False for an update left
    pending, or one that cannot be read. Costs O(update), not O(document); ``clocks`` is the
    state vector decoded, when the caller has it."""
    try:
        count, ranges = outside(update, state_vector)
        if count:
            return False
        if not ranges:
            return True  # no structs past the state vector, nothing deleted
        if clocks is None:
            clocks = decode_state_vector(state_vector)
    except (ProtocolError, ValueError, RuntimeError):
        return False
    return all(clock + length <= clocks.get(client, 0) for client, clock, length in ranges)


@dataclass(frozen=True)
class DocState:
    """What a document holds: its state vector and its delete set."""

    state_vector: bytes
    clocks: dict[int, int]
    deleted: dict[int, list[tuple[int, int]]]

    @classmethod
    def of(cls, doc: Doc) -> DocState:
        reader = Reader(Snapshot.from_doc(doc).encode(), "snapshot")
        by_client: dict[int, list[tuple[int, int]]] = {}
        for client, clock, length in decode_delete_set(reader):
            by_client.setdefault(client, []).append((clock, clock + length))
        state_vector = reader.data[reader.position :]
        return cls(
            state_vector=state_vector,
            clocks=decode_state_vector(state_vector),
            deleted={client: _merged(ranges) for client, ranges in by_client.items()},
        )

    def covers(self, update: bytes) -> bool:
        """True when the document already holds all of ``update``.

        False for an update that is pending (its structs lie past the state vector because a
        predecessor is missing), that deletes something not deleted here (perhaps because
        the item has not arrived yet), or that cannot be read.
        """
        try:
            count, ranges = outside(update, self.state_vector)
        except (ProtocolError, ValueError, RuntimeError):
            return False
        return not count and self.deletes(ranges)

    def deletes(self, ranges: list[tuple[int, int, int]]) -> bool:
        """True when every (client, clock, length) range is deleted here (as ``outside``
        gives them for an update without new structs)."""
        return all(
            _holds(self.deleted.get(client, []), clock, length) for client, clock, length in ranges
        )


@dataclass(frozen=True)
class StoredLog:
    """A document's log as ``UpdateStore.log`` reads it: the updates and the position of the
    last one (0 for an empty log)."""

    updates: list[bytes]
    position: int


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(frozen=True)
class Compaction:
    doc: str
    rows_before: int
    rows_deleted: int
    rows_kept: int  # pending updates the snapshot does not cover yet
    snapshot_bytes: int


class UpdateStore:
    """The log on Tortoise's default connection (opened by the server's lifespan)."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    async def append(self, doc: str, update: bytes) -> int:
        """Commit one update; returns its log id. Raises if the database refuses it."""
        row = await DocumentUpdate.create(doc=doc, data=bytes(update))
        return int(row.id)

    async def append_many(self, doc: str, updates: list[bytes]) -> int:
        """Commit ``updates`` in one transaction, in this order: all of them or none; returns
        the log id of the last one (0 when there is none).

        A raw multi-row INSERT (building a model object per row cost more than the insert):
        on PostgreSQL one ``INSERT ... SELECT FROM unnest(...) WITH ORDINALITY ORDER BY``, on
        SQLite multi-row ``VALUES`` (in one transaction when there are more than
        ``INSERT_BATCH``). Either way the ids follow the order of ``updates``, as ``load``
        expects. Raises if the database refuses them."""
        if not updates:
            return 0
        if len(updates) == 1:
            return await self.append(doc, updates[0])
        now = timezone.now()
        data = [bytes(update) for update in updates]
        connection: BaseDBAsyncClient = DocumentUpdate._meta.db
        if _postgres(connection):
            return _last_id(await connection.execute_query_dict(_POSTGRES_INSERT, [doc, now, data]))
        if len(data) <= INSERT_BATCH:  # one statement: atomic without a transaction
            statement = _sqlite_insert(len(data))
            return _last_id(await connection.execute_query_dict(statement, [doc, now, *data]))
        last = 0
        async with in_transaction() as transaction:
            for start in range(0, len(data), INSERT_BATCH):
                chunk = data[start : start + INSERT_BATCH]
                statement = _sqlite_insert(len(chunk))
                rows = await transaction.execute_query_dict(statement, [doc, now, *chunk])
                last = max(last, _last_id(rows))
        return last

    async def load(self, doc: str) -> list[bytes]:
        """The snapshot (if any), then every row kept, in arrival order."""
        return (await self.log(doc)).updates

    async def log(self, doc: str) -> StoredLog:
        """``load`` with the document's position: the id of its last update."""
        return await self.tail(doc, 0)

    async def tail(self, doc: str, after: int) -> StoredLog:
        """What the log of ``doc`` holds past position ``after``: the rows with a larger id,
        preceded by the snapshot when a compaction folded rows past ``after`` into it; the
        position is the last one's (``after`` when there is nothing new). One statement, so
        it sees the rows and the snapshot as of one moment (a compaction in between cannot
        lose a row)."""
        connection: BaseDBAsyncClient = DocumentUpdate._meta.db
        statement = _POSTGRES_TAIL if _postgres(connection) else _SQLITE_TAIL
        rows = await connection.execute_query_dict(statement, [doc, after])
        updates = [bytes(row["data"]) for row in rows]
        position = max([after, *(int(row["id"]) for row in rows)])
        return StoredLog(updates, position)

    async def heads(self, docs: list[str]) -> dict[str, int]:
        """The position of each of ``docs`` (0 for an empty log): two indexed queries."""
        if not docs:
            return {}
        last = dict.fromkeys(docs, 0)
        rows = (
            await DocumentUpdate.filter(doc__in=docs)
            .annotate(last=Max("id"))
            .group_by("doc")
            .values_list("doc", "last")
        )
        for doc, upto in rows:
            last[str(doc)] = max(last[str(doc)], int(upto))
        for doc, upto in await DocumentSnapshot.filter(doc__in=docs).values_list("doc", "upto_id"):
            last[str(doc)] = max(last[str(doc)], int(upto))
        return last

    @contextlib.asynccontextmanager
    async def turn(self, doc: str, *, transaction: bool = False) -> AsyncIterator[None]:
        """The document's turn (see the module's description): what runs in the block is the
        only writer of ``doc`` among every process on the database. On PostgreSQL one
        transaction holding the document's advisory lock, committed when the block ends
        (rolled back if it raises); on SQLite a transaction only when ``transaction`` asks
        for one. Database errors propagate."""
        turn = self._turns.setdefault(doc, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                connection: BaseDBAsyncClient = DocumentUpdate._meta.db
                if not _postgres(connection) and not transaction:
                    yield
                    return
                async with in_transaction() as held:
                    if _postgres(connection):
                        await held.execute_query(
                            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                            [TURN_LOCK_CLASS, doc],
                        )
                    yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                self._turns.pop(doc, None)

    async def projected(self, doc: str) -> int:
        """The position up to which the rows of ``doc`` are written (0: never)."""
        row = await DocumentProjection.get_or_none(doc=doc)
        return int(row.upto_id) if row is not None else 0

    async def mark_projected(self, doc: str, position: int) -> None:
        """Record that the rows of ``doc`` are written up to ``position``; never moves back."""
        if await DocumentProjection.filter(doc=doc, upto_id__lt=position).update(upto_id=position):
            return
        if not await DocumentProjection.exists(doc=doc):
            with contextlib.suppress(IntegrityError):  # another materialisation made it first
                await DocumentProjection.create(doc=doc, upto_id=position)
            await DocumentProjection.filter(doc=doc, upto_id__lt=position).update(upto_id=position)

    async def behind(self) -> list[str]:
        """The documents whose log is further on than their rows, in name order."""
        return sorted(await self.lagging())

    async def lagging(self) -> dict[str, int]:
        """The documents whose log is further on than their rows, with their log's position."""
        last: dict[str, int] = {
            str(doc): int(upto)
            for doc, upto in await DocumentSnapshot.all().values_list("doc", "upto_id")
        }
        rows = (
            await DocumentUpdate.annotate(last=Max("id")).group_by("doc").values_list("doc", "last")
        )
        for doc, upto in rows:
            last[str(doc)] = max(last.get(str(doc), 0), int(upto))
        projected = dict(await DocumentProjection.all().values_list("doc", "upto_id"))
        return {doc: upto for doc, upto in last.items() if int(projected.get(doc, 0)) < upto}

    async def row_count(self, doc: str) -> int:
        return await DocumentUpdate.filter(doc=doc).count()

    async def compact(self, doc: str) -> Compaction:
        """Fold the covered rows of ``doc`` into its snapshot, in the document's turn (no
        commit of any process falls in between); pending rows stay."""
        async with self.turn(doc, transaction=True):
            snapshot = await DocumentSnapshot.get_or_none(doc=doc)
            rows = await DocumentUpdate.filter(doc=doc).order_by("id").values_list("id", "data")
            if not rows:
                return Compaction(doc, 0, 0, 0, len(snapshot.data) if snapshot else 0)
            ydoc: Doc = Doc()
            if snapshot is not None:
                ydoc.apply_update(bytes(snapshot.data))
            for _, data in rows:
                ydoc.apply_update(bytes(data))
            state = ydoc.get_update()
            holds = DocState.of(ydoc)
            covered_ids = [int(row_id) for row_id, data in rows if holds.covers(bytes(data))]
            upto = max(int(row_id) for row_id, _ in rows)
            if snapshot is not None:
                upto = max(upto, int(snapshot.upto_id))
            if snapshot is None:
                await DocumentSnapshot.create(doc=doc, data=state, upto_id=upto)
            else:
                snapshot.data = state
                snapshot.upto_id = upto
                await snapshot.save()
            for start in range(0, len(covered_ids), DELETE_BATCH):
                batch = covered_ids[start : start + DELETE_BATCH]
                await DocumentUpdate.filter(id__in=batch).delete()
        result = Compaction(
            doc=doc,
            rows_before=len(rows),
            rows_deleted=len(covered_ids),
            rows_kept=len(rows) - len(covered_ids),
            snapshot_bytes=len(state),
        )
        log.info(
            "compacted %s: %d rows folded into a %d-byte snapshot, %d pending rows kept",
            doc,
            result.rows_deleted,
            result.snapshot_bytes,
            result.rows_kept,
        )
        return result
