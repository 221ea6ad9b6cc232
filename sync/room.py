"""One document being edited: its Doc, its connections, its presence states, its projection.

Every update, from a connection or from the server itself (``edit``), takes the same path under
the room's lock: size and rights, the update applied to a scratch copy, the policy's
``validate``, the commit to the log, then the room's Doc and the other connections; the server
acknowledges once the room answered. Debounced materialisation follows the commits.

The updates a connection has already sent go through together (``receive_many``): each is
checked on its own, in order, against the document with the earlier accepted ones; the accepted
ones are committed in one transaction, and only then applied and broadcast (and acknowledged
by the server). A
policy that ``validates_groups`` (``sync.policy.GroupPolicy``) has a writer's group applied to
the scratch copy in one transaction and validated once; when that fails (a refusal, an
unreadable update), the group is checked update by update as above, so that the results are
the same as without group validation.

A room at rest keeps no pycrdt ``Doc``: once nothing used its document for ``rest_after``
seconds (no update judged or committed, nothing followed from another process), the room keeps
its document as one encoded update and its state vector, and drops the scratch copies; a
``Doc`` holding an 18 KiB update costs about 450 KiB of memory, its encoded state 18 KiB. A
resting room still answers a joining peer (``state_vector``) and a sync step 1
(``encoded``: ``pycrdt.get_update`` reads the encoded state) and writes its rows from the
encoded state; the first update or commit rebuilds the ``Doc`` (``doc``): 0.4 ms for such a
document, against 6 ms for that update's check and commit (``bench/sync_bench.py --memory``).

The scratch copies are kept between updates instead of being rebuilt from the whole document
each time: ``_before`` holds the room's document (pending updates included) plus the updates
accepted so far in the running batch; ``_after`` is where the next update is applied. Once an
update (or group) is accepted, ``_after`` holds exactly what ``_before`` must hold next, so the
two swap: the old ``_before`` becomes ``_after`` and lacks the accepted updates (``_lag``),
which it receives in the same transaction as the next update it checks. Each copy thus takes
each accepted update once, in one transaction per check instead of two. After a refusal, a
failed commit or a policy that changed them, they are rebuilt from the room's document, and
once the room rests (they cost two more documents per room). The
room's own document cannot stand in for ``_before``: within a group it must already hold the
group's earlier accepted updates, which the room's document receives only once they are
committed.

An update applied to ``_after`` that does not integrate completely (some of its structs or
deletions wait for predecessors: pycrdt then shows their content although its state vector and
delete set do not move) is never validated nor kept: the copy is dropped, and the update is
refused with the refusal it depends on (``Ledger.refused``) or held in the connection's
``Ledger`` until its dependencies arrive (see ``sync.protocol`` for the rules). "Already held"
(nothing new) is read from ``_after``: an update applied to it that moves its state vector
brought new structs. Only when the state vector stays the same (nothing new, or deletions)
does the update itself say, against ``_before``'s state vector and delete set.

The copies are never observed (a pycrdt subscription keeps its ``Doc`` alive for good): a
policy that changed them while it validated is seen in their state vectors, and they are then
rebuilt.

After a group commit, the group's accepted updates are merged ``MERGE_CHUNK`` at a time
(``merge_updates`` grows quadratically with the number of updates) and applied to the room's
document in one transaction (the same state as applying them one by one). Each merged chunk is
checked for pending content: when the document holds all of it, it holds each of its updates.
When other connections are there, the chunks are merged once more into the one update they
are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc, Map, Subscription, get_update, merge_updates

from sync import protocol
from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.protocol import decode_state_vector
from sync.store import (
    DocState,
    StoredLog,
    UpdateStore,
    first_clocks,
    integrated,
    outside,
    structs_past,
)

log = logging.getLogger("onewindow.sync.room")

EMPTY_UPDATE = b"\x00\x00"
MERGE_CHUNK = 32  # updates merged together before the room's document applies them


class Refused(UpdateRefused):
    """An update that was not kept: ``code`` for programs, ``reason`` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Held:
    """The answer for an update whose dependencies the server lacks (see ``Ledger``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HELD"


HELD = Held()
MISSING = Refused(
    "missing_dependencies",
    "the update depends on changes the server does not have; send them first",
)
Result = bool | Refused | Held
MAX_HELD = 64  # updates one connection may have held at once


@dataclass
class Ledger:
    """What the room remembers of one connection's updates until the connection closes.

    ``received`` numbers its update messages (from 1). ``held`` are the updates (with their
    numbers) that lack dependencies the server does not have: not applied, not stored, not
    broadcast; each is judged again, as a whole with what arrived meanwhile, after every later
    update of the connection that the room kept or refused, and its answer is put in
    ``settled``. ``refused`` maps a client id to the first clock of that client refused on
    this connection and the refusal: an update that lacks dependencies and carries structs of
    that client depends on the refused update and is refused with the same code and reason."""

    received: int = 0
    held: list[tuple[int, bytes]] = field(default_factory=list)
    refused: dict[int, tuple[int, Refused]] = field(default_factory=dict)
    settled: list[tuple[int, bool | Refused]] = field(default_factory=list)

    def refuse_from(self, clocks: dict[int, int], refusal: Refused) -> None:
        """Remember ``refusal`` for each client id from its clock on (the lowest is kept)."""
        for client, clock in clocks.items():
            current = self.refused.get(client)
            if current is None or clock < current[0]:
                self.refused[client] = (clock, refusal)

    def take_settled(self) -> list[tuple[int, bool | Refused]]:
        settled, self.settled = self.settled, []
        return settled


class _Collector:
    """The deep events of a scratch copy's observed roots, kept while ``on`` (one subscription
    per copy for its life: subscribing costs more than what an update changes)."""

    __slots__ = ("changes", "on")

    def __init__(self) -> None:
        self.on = False
        self.changes: list[Any] = []

    def __call__(self, events: list[Any]) -> None:
        if self.on:
            self.changes.extend(events)


class Peer(Protocol):
    """A connection as the room sees it; ``send`` queues and never waits."""

    access: Access

    def send(self, message: bytes) -> None: ...


@dataclass(frozen=True)
class RoomSettings:
    max_update_bytes: int = 1 << 20
    materialise_delay: float = 0.3  # seconds after the last commit
    materialise_max_wait: float = 1.0  # at most this long after the first unprojected commit
    materialise_retry: float = 5.0  # after a failed materialisation
    rest_after: float = 5.0  # unused this long, the room keeps only its encoded state


Committed = Callable[[str, int, int, bytes], None]
"""Told of each commit of a room: (document, position before, position after, the update)."""


class Room:
    def __init__(
        self,
        name: str,
        *,
        policy: DocumentPolicy,
        store: UpdateStore,
        settings: RoomSettings,
        on_commit: Committed | None = None,
    ) -> None:
        self.name = name
        self.on_commit = on_commit
        self.policy = policy
        self.store = store
        self.settings = settings
        self._doc: Doc | None = Doc()  # None while the room rests (see ``doc``)
        self._rested = (b"", b"")  # while it rests: its encoded state and state vector
        self._last_use = 0.0
        self._resting: asyncio.TimerHandle | None = None  # the next look at resting
        self.pending: list[bytes] = []  # stored updates whose predecessors have not arrived
        self.peers: set[Peer] = set()
        self.presence: dict[int, protocol.AwarenessEntry] = {}
        self.presence_of: dict[Peer, set[int]] = {}
        self.lock = asyncio.Lock()
        self.position = 0  # the log id of the last update the room's document holds
        self._projected = 0  # the position up to which the rows are written
        self.users = 0  # connections and edits holding the room open
        self.closing = False
        self.closed = asyncio.Event()
        self._dirty = False
        self._first_dirty = 0.0
        self._last_commit = 0.0
        self._wake = asyncio.Event()
        self._projector: asyncio.Task[None] | None = None
        self._projecting: asyncio.Task[bool] | None = None
        self._before: Doc | None = None  # see the module's docstring
        self._after: Doc | None = None
        self._before_state: DocState | None = None  # DocState.of(_before), until it changes
        self._state_vector: bytes | None = None  # _before's, once known (see the docstring)
        self._lag: list[bytes] = []  # accepted updates _after still lacks (see the docstring)
        self._batch: list[bytes] = []  # accepted, not yet committed (under the lock)
        roots = getattr(policy, "observed_roots", None)
        self._roots: tuple[str, ...] = tuple(roots(name)) if roots is not None else ()
        self._groups = getattr(policy, "validates_groups", False) is True and not self._roots
        self._collector = _Collector()
        self._admit = getattr(policy, "admit", None) if self._roots else None
        self._watching: dict[int, list[tuple[Map[Any], Subscription]]] = {}  # by id(copy)

    # --- life ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Apply the stored log; seed it with the policy's initial update when empty.

        A policy with an ``async prepare(doc_name)`` (see ``sync.policy``) has it awaited
        first, so that it can read what its synchronous methods need. When the log is further
        on than the rows (``UpdateStore.projected``: a commit just before a crash), the
        document is materialised at once."""
        prepare = getattr(self.policy, "prepare", None)
        if prepare is not None:
            await prepare(self.name)
        stored = await self.store.log(self.name)
        self._projected = await self.store.projected(self.name)
        if not stored.updates:
            initial = self.policy.initial_update(self.name)
            if initial:  # in the document's turn: one process seeds it, the others read it
                async with self.store.turn(self.name):
                    stored = await self.store.log(self.name)
                    if not stored.updates:
                        stored = StoredLog([initial], await self.store.append(self.name, initial))
                        self._projected = stored.position  # the layout alone carries no rows
        updates, self.position = stored.updates, stored.position
        for update in updates:
            self.doc.apply_update(update)
        held = DocState.of(self.doc)
        self.pending = [update for update in updates if not held.covers(update)]
        self._busy()
        self._projector = asyncio.create_task(self._project_loop(), name=f"project {self.name}")
        if self._projected < self.position:
            log.info(
                "room %s: rows written up to log position %d, the log is at %d: materialising",
                self.name,
                self._projected,
                self.position,
            )
            self._mark_dirty(at_once=True)
        log.info(
            "room %s loaded: %d stored updates, %d pending",
            self.name,
            len(updates),
            len(self.pending),
        )

    async def catch_up(self) -> bool:
        """Materialise now unless the rows are written up to the log's position already;
        False when the materialisation failed."""
        if self._projecting is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._projecting
        if self._projected >= self.position:
            return True
        return await self._materialise()

    async def close(self) -> None:
        """Stop the projector and run a last materialisation if commits are unprojected."""
        if self._projector is not None:
            self._projector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._projector
        if self._projecting is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._projecting
        if self._dirty:
            await self._materialise()
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        self._forget_copies()

    # --- the document, awake or at rest ---------------------------------------------------

    @property
    def doc(self) -> Doc:
        """The room's document; rebuilt from its encoded state when the room rested."""
        if self._doc is None:
            doc: Doc = Doc()
            with doc.transaction():
                doc.apply_update(self._rested[0])  # pending structs included
            self._doc, self._rested = doc, (b"", b"")
        self._busy()
        return self._doc

    @property
    def resting(self) -> bool:
        """True while the room keeps only its encoded state (no ``Doc``)."""
        return self._doc is None

    def state_vector(self) -> bytes:
        """The state vector of the room's document."""
        return self._rested[1] if self._doc is None else self._doc.get_state()

    def encoded(self, state_vector: bytes | None = None) -> bytes:
        """The room's document as one update (what ``state_vector`` lacks, when given);
        raises ``ValueError`` for a state vector that cannot be read."""
        if self._doc is not None:
            if state_vector is None:
                return self._doc.get_update()
            return self._doc.get_update(state_vector)
        if state_vector is None:
            return self._rested[0]
        return get_update(self._rested[0], state_vector)

    def _busy(self) -> None:
        """The document or its copies are in use: the room rests once unused for
        ``rest_after`` seconds."""
        loop = asyncio.get_running_loop()
        self._last_use = loop.time()
        if self._resting is None and not self.closing:
            self._resting = loop.call_later(self.settings.rest_after, self._rest)

    def _rest(self) -> None:
        """Keep the document as its encoded state and drop the copies (three documents)
        when nothing used them for ``rest_after`` seconds; look again later otherwise."""
        self._resting = None
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_use
        if self.lock.locked() or idle < self.settings.rest_after:
            wait = max(self.settings.rest_after - idle, 0.05)
            self._resting = loop.call_later(wait, self._rest)
            return
        self._forget_copies()
        if self._doc is not None:
            self._rested = (self._doc.get_update(), self._doc.get_state())
            self._doc = None

    # --- peers -----------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        self.peers.add(peer)
        self.presence_of[peer] = set()
        peer.send(protocol.sync_step1(self.state_vector()))
        if self.presence:
            peer.send(protocol.awareness(list(self.presence.values())))

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        gone = [
            protocol.AwarenessEntry(client_id, self.presence[client_id].clock + 1, "null")
            for client_id in self.presence_of.pop(peer, set())
            if client_id in self.presence
        ]
        for entry in gone:
            del self.presence[entry.client_id]
        if gone:
            self._broadcast(protocol.awareness(gone), exclude=None)

    def _broadcast(self, message: bytes, *, exclude: Peer | None) -> None:
        for peer in list(self.peers):
            if peer is not exclude:
                peer.send(message)

    def step2_for(self, state_vector: bytes) -> list[bytes]:
        """The messages that give a peer with ``state_vector`` what it lacks: a sync step 2
        from the document, then the pending updates (which a ``Doc``'s ``get_update`` leaves
        out)."""
        try:
            update = self.encoded(state_vector)
        except Exception as error:  # pycrdt raises plain exceptions on bad input
            raise Refused(
                "bad_state_vector",
                f"the sync step 1 does not carry a valid state vector ({error}); send "
                "the state vector of your document",
            ) from None
        return [protocol.sync_step2(update)] + [protocol.sync_update(u) for u in self.pending]

    def presence_update(self, peer: Peer, entries: list[protocol.AwarenessEntry]) -> None:
        changed = []
        owned = self.presence_of.setdefault(peer, set())
        for entry in entries:
            current = self.presence.get(entry.client_id)
            newer = current is None or entry.clock > current.clock
            leaving = entry.state == "null"
            if not newer and not (leaving and current is not None and entry.clock == current.clock):
                continue
            if leaving:
                self.presence.pop(entry.client_id, None)
                owned.discard(entry.client_id)
            else:
                self.presence[entry.client_id] = entry
                owned.add(entry.client_id)
            changed.append(entry)
        if changed:  # to the sender too, as the reference server does: its keep-alive
            self._broadcast(protocol.awareness(changed), exclude=None)

    def presence_all(self) -> bytes:
        return protocol.awareness(list(self.presence.values()))

    # --- updates ---------------------------------------------------------------------------

    def _copy(self) -> Doc:
        """The room's document rebuilt, pending updates and the running batch included."""
        copy: Doc = Doc()
        copy.apply_update(self.encoded())
        for update in self.pending:
            copy.apply_update(update)
        for update in self._batch:
            copy.apply_update(update)
        return copy

    def _watch(self, copy: Doc) -> Doc:
        """``copy`` with its observed roots subscribed to the collector (see ``_Collector``)."""
        if self._roots:
            watched = []
            for root in self._roots:
                observed = copy.get(root, type=Map)
                watched.append((observed, observed.observe_deep(self._collector)))
            self._watching[id(copy)] = watched
        return copy

    def _release(self, copy: Doc | None) -> None:
        """Unsubscribe ``copy`` (a subscription keeps its Doc alive for good)."""
        if copy is not None:
            for observed, subscription in self._watching.pop(id(copy), []):
                observed.unobserve(subscription)

    def _drop_after(self) -> None:
        self._release(self._after)
        self._after = None

    def _forget_copies(self) -> None:
        self._release(self._before)
        self._release(self._after)
        self._before = self._after = None
        self._before_state = None
        self._state_vector = None
        self._lag = []
        self._collector.changes = []  # their events keep the copies alive

    async def receive(self, update: bytes, *, access: Access, origin: Peer | None) -> bool:
        """Validate, commit, apply and broadcast one update; False when it changed nothing.

        Raises ``Refused`` when the update is not kept (nothing of it is stored or sent),
        ``missing_dependencies`` when it lacks changes the server does not have.
        """
        async with self.lock:
            (result,) = await self._receive_many([update], access=access, origin=origin)
        if isinstance(result, Refused):
            raise result
        assert not isinstance(result, Held)  # held only with a ledger
        return result

    async def receive_many(
        self,
        updates: list[bytes],
        *,
        access: Access,
        origin: Peer | None,
        ledger: Ledger | None = None,
    ) -> list[Result]:
        """``receive`` for several updates of one sender, in order, committed together.

        One result per update: True (committed), False (changed nothing), the ``Refused``
        saying why it was not kept, or ``HELD`` (only with the connection's ``ledger``: the
        update lacks dependencies the server does not have; it is kept in the ledger, not
        applied, and judged again after the sender's later updates, its answer then in
        ``ledger.settled``). A refused update does not stop the others; when the commit
        fails, every update that would have been stored is refused (``storage_unavailable``).
        When this returns, every True is committed, applied and broadcast."""
        async with self.lock:
            return await self._receive_many(updates, access=access, origin=origin, ledger=ledger)

    async def edit(self, change: Callable[[Doc], None], *, access: Access) -> bool:
        """The server's own change, made on a copy and then taken through ``receive``."""
        async with self.lock:
            await self._follow_log()  # made on the log's state (judged on it again anyway)
            copy = self._copy()
            made: list[bytes] = []
            subscription = copy.observe(lambda event: made.append(event.update))
            try:
                with copy.transaction():
                    change(copy)
            finally:
                copy.unobserve(subscription)
            if not made:
                return False
            update = made[0] if len(made) == 1 else copy.get_update(self.state_vector())
            (result,) = await self._receive_many([update], access=access, origin=None)
        if isinstance(result, Refused):
            raise result
        assert not isinstance(result, Held)  # held only with a ledger
        return result

    async def _receive_many(
        self,
        updates: list[bytes],
        *,
        access: Access,
        origin: Peer | None,
        ledger: Ledger | None = None,
    ) -> list[Result]:
        """In the document's turn (``UpdateStore.turn``): the log's tail first (what other
        processes committed since ``position``), so the updates are judged against the log's
        state; then the kept ones are inserted and committed with the turn."""
        self._batch = []
        transient = ledger is None  # the call's own: dependents of a refusal refused alike
        if ledger is None:
            ledger = Ledger()
        first = ledger.received + 1
        ledger.received += len(updates)
        settled_from = len(ledger.settled)
        results: list[Result] | None = None
        batch: list[bytes] = []
        last = 0
        judging = False
        before = self.position
        try:
            async with self.store.turn(self.name):
                await self._follow_log()
                before = self.position
                judging = True
                results = await self._judge_all(
                    updates, access=access, ledger=ledger, first=first, transient=transient
                )
                judging = False
                batch = self._batch
                if batch:
                    last = await self.store.append_many(self.name, batch)
        except Exception:
            self._forget_copies()  # they may hold updates that were not committed
            if judging:
                raise
            log.exception("could not store %d updates of %s", len(self._batch), self.name)
            failed = Refused(
                "storage_unavailable",
                "the update could not be stored and was not kept; keep it and send it "
                "again when the server is back",
            )
            if results is None:  # the log could not be read: nothing was judged
                return [failed for _ in updates]
            ledger.settled[settled_from:] = [
                (number, failed if result is True else result)
                for number, result in ledger.settled[settled_from:]
            ]
            return [failed if result is True else result for result in results]
        except BaseException:
            self._forget_copies()
            raise
        finally:
            self._batch = []
        if not batch:
            return results
        merged = self._apply_committed(batch, last, origin=origin, external=False)
        self._mark_dirty()
        if self.on_commit is not None:
            whole = merged[0] if len(merged) == 1 else merge_updates(*merged)
            self.on_commit(self.name, before, self.position, whole)
        return results

    async def _judge_all(
        self,
        updates: list[bytes],
        *,
        access: Access,
        ledger: Ledger,
        first: int,
        transient: bool,
    ) -> list[Result]:
        """Each update's result; the kept ones end in ``_batch``."""
        if self._groups and access.writable and len(updates) > 1:
            group = self._check_group(updates, access=access)
            if group is not None:
                if ledger.held:
                    await self._settle(ledger, access=access)
                return list(group)
        results: list[Result] = []
        for number, update in enumerate(updates, first):
            result = await self._admitted(bytes(update), access=access, ledger=ledger)
            if result is HELD:
                result = self._hold(ledger, number, bytes(update), transient)
            results.append(result)
            if ledger.held and result is not HELD:
                await self._settle(ledger, access=access)
        return results

    def _apply_committed(
        self, updates: Sequence[bytes], position: int, *, origin: Peer | None, external: bool
    ) -> list[bytes]:
        """Apply committed ``updates`` (up to log ``position``) to the room's document and
        send them to its connections but ``origin``; ``external`` when they did not pass
        through this room's copies (another process committed them). The merged chunks.

        Commits of another process past this room's own leave the rows to that process: it
        writes them from its document at its later position, this room's commits included (and
        the sweep does when it dies first), so a document written through several instances is
        materialised by the last, not by each."""
        if external:
            self._follow_in_copies(updates)
            if self._dirty and position > self.position:
                self._dirty = False
        self.position = max(self.position, position)  # applied below, without awaiting first
        # Merged a chunk at a time (merge_updates is quadratic in the number of updates), then
        # applied in one transaction: the same state as applying them one by one.
        chunks = [
            list(updates[start : start + MERGE_CHUNK])
            for start in range(0, len(updates), MERGE_CHUNK)
        ]
        merged = [chunk[0] if len(chunk) == 1 else merge_updates(*chunk) for chunk in chunks]
        with self.doc.transaction():
            for update in merged:
                self.doc.apply_update(update)
        state_vector = self.doc.get_state()
        clocks = decode_state_vector(state_vector)
        for chunk, update in zip(chunks, merged, strict=True):
            if not integrated(update, state_vector, clocks):
                self.pending.extend(u for u in chunk if not integrated(u, state_vector, clocks))
        if self.pending:
            held = DocState.of(self.doc)
            self.pending = [pending for pending in self.pending if not held.covers(pending)]
        if any(peer is not origin for peer in self.peers):
            whole = merged[0] if len(merged) == 1 else merge_updates(*merged)
            self._broadcast(protocol.sync_update(whole), exclude=origin)
        return merged

    def _follow_in_copies(self, updates: Sequence[bytes]) -> None:
        """Keep the scratch copies equal to the room's document plus ``updates`` (committed by
        another process; called outside any check, under the lock): ``_before`` takes them now,
        ``_after`` with its lag (see the module's description). Rebuilding both copies at every
        commit of another instance halved two instances' rate."""
        before = self._before
        if before is None:
            return
        with before.transaction():
            for update in updates:
                before.apply_update(update)
        if self._after is not None:
            self._lag.extend(updates)
        self._before_state = None
        self._state_vector = None

    async def _follow_log(self) -> bool:
        """Apply what the log holds past ``position`` (committed by other processes); True
        when there was something. Raises what the database raises."""
        tail = await self.store.tail(self.name, self.position)
        if tail.position <= self.position or not tail.updates:
            return False
        self._apply_committed(tail.updates, tail.position, origin=None, external=True)
        return True

    async def follow(self, *, after: int, upto: int, update: bytes | None = None) -> None:
        """Another process committed ``update`` to this document, moving its log from
        ``after`` to ``upto``: applied at once when the room is at ``after``, ignored when it
        is at ``upto`` or further, read from the log when it is behind (a message lost) or no
        update is given (a poll saw the log move)."""
        if self.position >= upto or self.closing:
            return
        async with self.lock:
            if self.position >= upto or self.closing:
                return
            if update is not None and self.position == after:
                self._apply_committed([update], upto, origin=None, external=True)
                return
            try:
                await self._follow_log()
            except Exception:
                log.exception("reading the log of %s failed; the next poll tries again", self.name)

    def _judge(self, update: bytes, *, access: Access, ledger: Ledger | None) -> Result:
        try:
            return self._check(update, access=access, ledger=ledger)
        except Refused as refusal:
            return refusal

    def _hold(self, ledger: Ledger, number: int, update: bytes, transient: bool) -> Result:
        """Keep ``update`` in the ledger until its dependencies arrive, unless too many are
        or the ledger ends with the call (no connection to answer later)."""
        if transient:
            return MISSING
        if len(ledger.held) < MAX_HELD:
            ledger.held.append((number, update))
            return HELD
        return Refused(
            "too_many_held",
            f"{MAX_HELD} of your updates already wait for changes the server does not have; "
            "this one was not kept: send your whole document state (a sync step 2)",
        )

    async def _admitted(self, update: bytes, *, access: Access, ledger: Ledger | None) -> Result:
        """``_judge``, then, for a policy with an async ``admit`` (``sync.policy``), the
        policy's look at what the kept update changed; an update it refuses is taken back out
        of the running batch (the copies are rebuilt without it)."""
        result = self._judge(update, access=access, ledger=ledger)
        if result is not True or self._admit is None:
            return result
        try:
            await self._admit(doc_name=self.name, changes=self._collector.changes, access=access)
        except UpdateRefused as refusal:
            self._batch.pop()  # the update just kept
            self._forget_copies()
            return self._remember(
                ledger,
                first_clocks(update),
                Refused("invalid", str(refusal) or "the document policy refused it"),
            )
        except Exception:
            log.exception("the policy of %s failed while admitting an update", self.name)
            self._batch.pop()
            self._forget_copies()
            return Refused(
                "internal_error",
                "the server could not check this update and did not keep it; try again "
                "later, and tell the administrator if it keeps happening",
            )
        return result

    async def _settle(self, ledger: Ledger, *, access: Access) -> None:
        """Judge the ledger's held updates again, in order, until none moves on: each that
        no longer lacks anything is kept or refused as a whole, and its answer settled."""
        progress = True
        while progress and ledger.held:
            progress = False
            for entry in list(ledger.held):
                number, update = entry
                result = await self._admitted(update, access=access, ledger=ledger)
                if result is HELD:
                    continue
                ledger.held.remove(entry)
                assert not isinstance(result, Held)
                ledger.settled.append((number, result))
                progress = True

    def _copies(self) -> tuple[Doc, Doc]:
        self._busy()
        if self._before is None:
            self._before = self._watch(self._copy())
            self._before_state = None
        if self._after is None:
            self._after = self._watch(self._copy())
            self._state_vector = None
            self._lag = []
        return self._before, self._after

    def _catch_up(self, after: Doc) -> None:
        """Apply to ``after`` the accepted updates it lacks (inside the caller's transaction)."""
        if self._lag:
            for update in self._lag:
                after.apply_update(update)
            self._lag = []

    def _held(self, before: Doc, update: bytes, state_vector: bytes) -> bool:
        """True when ``before`` (whose state vector is ``state_vector``) already holds all of
        ``update``; O(update) unless the update has no new structs but deletes something
        (then the delete set of ``before``)."""
        try:
            count, ranges = outside(update, state_vector)
        except Exception:  # unreadable: applying it says why
            return False
        if count:
            return False
        if not ranges:
            return True
        if self._before_state is None:
            self._before_state = DocState.of(before)
        return self._before_state.deletes(ranges)  # ``outside`` read them against the same SV

    def _check(self, update: bytes, *, access: Access, ledger: Ledger | None) -> bool | Held:
        """Check one update against the copies; on success add it to ``_batch``. ``HELD``
        when it lacks dependencies the server does not have; raises ``Refused``."""
        if update == EMPTY_UPDATE:
            return False
        if len(update) > self.settings.max_update_bytes:
            raise self._remember(ledger, first_clocks(update), self._too_large(update))
        before, after = self._copies()
        if not access.writable:
            if self._held(before, update, before.get_state()):
                return False  # already held: nothing to store, the sender may count it as kept
            raise self._remember(
                ledger,
                first_clocks(update),
                Refused(
                    "read_only",
                    f"{access.username} may read {self.name} but not change it; the update "
                    "was not kept",
                ),
            )
        state_vector = self._state_vector
        collector = self._collector  # the deep events of the observed roots (sync.policy)
        try:
            if self._roots and self._lag:  # the lag first, on its own: not this update's
                with after.transaction():
                    self._catch_up(after)
                state_vector = None
            collector.changes = []
            collector.on = bool(self._roots)
            # One transaction: the lag, the state vector before, the update, the one after.
            with after.transaction():
                self._catch_up(after)
                if state_vector is None:
                    state_vector = after.get_state()  # == before's (they differ only here)
                after.apply_update(update)
                self._state_vector = after.get_state()
        except Exception as error:  # pycrdt raises plain exceptions on a bad update
            self._drop_after()
            self._state_vector = None
            raise self._remember(
                ledger,
                first_clocks(update),
                Refused(
                    "malformed_update",
                    f"the update could not be read ({error}); it was not kept: send updates "
                    "produced by a Yjs or pycrdt document",
                ),
            ) from None
        finally:
            collector.on = False
        changes = collector.changes
        if not integrated(update, self._state_vector):
            # Structs or deletions wait for predecessors the server lacks. pycrdt shows such
            # content in ``after`` although its state vector and delete set do not move: the
            # copy is dropped, and the update is judged again once they arrive.
            self._drop_after()
            self._state_vector = None
            depended = self._depends_on_refused(update, ledger, state_vector)
            if depended is not None:
                raise depended
            return HELD
        # New structs integrated into ``after`` move its state vector: not held. Otherwise
        # (no structs, or deletions) the update itself says.
        if self._state_vector == state_vector and self._held(before, update, state_vector):
            return False  # already held: nothing to store, the sender may count it as kept
        after_state = self._state_vector
        try:
            if self._roots:
                self.policy.validate(  # type: ignore[call-arg]
                    doc_name=self.name, before=before, after=after, access=access, changes=changes
                )
            else:
                self.policy.validate(doc_name=self.name, before=before, after=after, access=access)
        except UpdateRefused as refusal:
            self._drop_after()
            self._state_vector = None
            raise self._remember(
                ledger,
                _moved(state_vector, after_state),
                Refused("invalid", str(refusal) or "the document policy refused it"),
            ) from None
        except Exception:
            log.exception("the policy of %s failed while validating an update", self.name)
            self._drop_after()
            self._state_vector = None
            raise self._remember(
                ledger,
                _moved(state_vector, after_state),
                Refused(
                    "internal_error",
                    "the server could not check this update and did not keep it; try again "
                    "later, and tell the administrator if it keeps happening",
                ),
            ) from None
        finally:
            self._unless_changed(before, state_vector, after, after_state)
        self._batch.append(update)
        if self._before is not None:  # ``after`` is the new ``before``; the old one lags
            self._before, self._after = after, before
            self._lag = [update]
            self._before_state = None
        return True

    def _unless_changed(
        self, before: Doc, before_state: bytes, after: Doc, after_state: bytes
    ) -> None:
        """Forget the copies when the policy changed them while it validated (a policy must
        only read them)."""
        if self._before is None:
            return
        if before.get_state() != before_state or after.get_state() != after_state:
            log.warning("the policy of %s changed the documents it validated", self.name)
            self._forget_copies()

    @staticmethod
    def _remember(ledger: Ledger | None, clocks: dict[int, int], refusal: Refused) -> Refused:
        """``refusal``, remembered in the connection's ledger for the clients it refused."""
        if ledger is not None:
            ledger.refuse_from(clocks, refusal)
        return refusal

    @staticmethod
    def _depends_on_refused(
        update: bytes, ledger: Ledger | None, state_vector: bytes
    ) -> Refused | None:
        """The refusal of an earlier update of this connection that ``update`` (which lacks
        dependencies) builds on: it carries structs of a refused client past the server's
        clock of that client."""
        if ledger is None or not ledger.refused:
            return None
        clocks = decode_state_vector(state_vector)
        for client, (clock, refusal) in ledger.refused.items():
            if structs_past(update, client, max(clock, clocks.get(client, 0))):
                ledger.refuse_from(first_clocks(update), refusal)
                return refusal
        return None

    def _too_large(self, update: bytes) -> Refused:
        return Refused(
            "too_large",
            f"the update is {len(update)} bytes; this server accepts at most "
            f"{self.settings.max_update_bytes} bytes per update: sync more often so that "
            "changes travel in smaller pieces",
        )

    def _check_group(self, updates: list[bytes], *, access: Access) -> list[bool | Refused] | None:
        """A writer's group checked as a whole, for a policy that ``validates_groups``: every
        update applied to ``_after`` in one transaction, then one ``validate``; the results are
        what ``_check`` would have given one by one, and the kept updates are in ``_batch``.
        None when the group must go through ``_check`` one by one instead (nothing of it is
        then in ``_batch``): an update that cannot be read, the group refused, or a policy that
        changed the copies while they were still needed.

        An update that does not move the state vector is told apart as ``_check`` does: held
        when it has neither new structs nor deletions; kept when some of its structs wait for
        their predecessors; when it only deletes, held if the document before it had them
        deleted already, which is known once ``_before`` has taken the updates before it
        (after the validation, which needs ``_before`` without the group). Held or not, such an
        update is in ``_after`` when the policy validates: when held, it changed nothing."""
        results: list[bool | Refused] = []
        positions: list[int] = []  # of the candidates in ``results``
        candidates: list[bytes] = []
        for update in updates:
            update = bytes(update)
            if update == EMPTY_UPDATE:
                results.append(False)
            elif len(update) > self.settings.max_update_bytes:
                results.append(self._too_large(update))
            else:
                positions.append(len(results))
                results.append(True)
                candidates.append(update)
        if len(candidates) < 2:
            return None
        before, after = self._copies()
        state_vector = self._state_vector
        held: set[int] = set()  # candidates' indexes
        deleting: dict[int, list[tuple[int, int, int]]] = {}  # index: its delete ranges
        try:
            with after.transaction():  # one transaction for the whole group
                self._catch_up(after)
                if state_vector is None:
                    state_vector = after.get_state()
                for index, update in enumerate(candidates):
                    after.apply_update(update)
                    current = after.get_state()
                    if current != state_vector:
                        state_vector = current  # new structs: not held
                        continue
                    count, ranges = outside(update, state_vector)
                    if count:
                        continue  # pending structs: kept
                    if ranges:
                        deleting[index] = ranges
                    else:
                        held.add(index)
        except Exception:  # pycrdt raises plain exceptions on a bad update: ``_check`` says which
            self._drop_after()
            self._state_vector = None
            return None
        clocks = decode_state_vector(state_vector)
        if not all(integrated(update, state_vector, clocks) for update in candidates):
            self._drop_after()  # one lacks dependencies: ``_check`` holds or refuses it
            self._state_vector = None
            return None
        self._state_vector = state_vector
        before_state = before.get_state()
        try:
            self.policy.validate(doc_name=self.name, before=before, after=after, access=access)
        except Exception:  # refused (or failed) as a whole: ``_check`` finds which update
            self._drop_after()
            self._state_vector = None
            return None
        finally:
            self._unless_changed(before, before_state, after, state_vector)
        if deleting:
            if self._before is None:  # the policy changed the copies: they cannot tell
                return None
            done = 0
            for index, ranges in deleting.items():  # in order
                with before.transaction():
                    for update in candidates[done:index]:
                        before.apply_update(update)
                done = index
                if DocState.of(before).deletes(ranges):
                    held.add(index)
            with before.transaction():
                for update in candidates[done:]:
                    before.apply_update(update)
            self._before_state = None  # ``before`` now equals ``after``: nothing lags
        kept = [update for index, update in enumerate(candidates) if index not in held]
        for index in held:
            results[positions[index]] = False
        self._batch.extend(kept)
        if self._before is not None and not deleting:  # ``after`` is the new ``before``
            self._before, self._after = after, before
            self._lag = kept
            self._before_state = None
        return results

    # --- materialisation -------------------------------------------------------------------

    def _mark_dirty(self, *, at_once: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        if at_once:  # due now: as if the delays had passed
            self._first_dirty = now - self.settings.materialise_max_wait
            self._last_commit = now - self.settings.materialise_delay
            self._dirty = True
            self._wake.set()
            return
        if not self._dirty:
            self._first_dirty = now
        self._dirty = True
        self._last_commit = now
        self._wake.set()

    async def _project_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            while True:
                due = min(
                    self._last_commit + self.settings.materialise_delay,
                    self._first_dirty + self.settings.materialise_max_wait,
                )
                wait = due - loop.time()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._wake.clear()
            if not self._dirty:  # left to a later commit's process (``_apply_committed``)
                continue
            self._projecting = asyncio.create_task(self._materialise())
            ok = await asyncio.shield(self._projecting)
            self._projecting = None
            if not ok:
                await asyncio.sleep(self.settings.materialise_retry)
                self._wake.set()

    async def materialise(self) -> None:
        """Write the rows now (after a projection already running); raises what it raises."""
        if self._projecting is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._projecting
        self._dirty = False
        await self._write_rows()

    async def _write_rows(self, *, unless_written: bool = False) -> None:
        """``materialise_log`` from the room's document and position (read together);
        ``unless_written``: nothing, without the document's turn, when the rows are written up
        to that position already (by another process, from a later state)."""
        if unless_written:
            projected = await self.store.projected(self.name)
            if projected >= self.position:
                self._projected = max(self._projected, projected)
                return  # the document was not even encoded
        state, position = self.encoded(), self.position  # together, before anything is awaited
        written = await materialise_log(
            self.name, policy=self.policy, store=self.store, state=state, position=position
        )
        self._projected = max(self._projected, written)

    def lag_seconds(self) -> float:
        """How long the oldest commit not yet materialised has waited (0: none waits)."""
        if not self._dirty:
            return 0.0
        return max(0.0, asyncio.get_running_loop().time() - self._first_dirty)

    async def _materialise(self) -> bool:
        self._dirty = False
        try:
            await self._write_rows(unless_written=True)
        except Exception:
            log.exception("materialising %s failed; it will be tried again", self.name)
            if not self._dirty:
                self._dirty = True
                self._first_dirty = self._last_commit = asyncio.get_running_loop().time()
            return False
        return True


async def materialise_log(
    name: str,
    *,
    policy: DocumentPolicy,
    store: UpdateStore,
    state: bytes | None = None,
    position: int = 0,
) -> int:
    """Write the rows of ``name`` from the log's state, in the document's turn: ``state`` (what
    a room holds up to log ``position``, encoded; read before anything is awaited) with the
    log's tail past ``position`` applied, or the whole log when there is no ``state``. Skipped
    when the rows are written up to the log's position already, so rows never go back to an
    older state; the rows and their position are committed together. Returns the position the
    rows are written up to; raises what the policy or the database raises."""
    async with store.turn(name, transaction=True):
        tail = await store.tail(name, position if state is not None else 0)
        projected = await store.projected(name)
        if projected >= tail.position:
            return projected
        copy: Doc = Doc()
        if state is not None:
            copy.apply_update(state)
        for update in tail.updates:
            copy.apply_update(update)
        await policy.materialise(doc_name=name, doc=copy)
        await store.mark_projected(name, tail.position)
    return tail.position


def _moved(before: bytes, after: bytes) -> dict[int, int]:
    """The clients whose clock moved from state vector ``before`` to ``after``, with their
    clock in ``before``."""
    old, new = decode_state_vector(before), decode_state_vector(after)
    return {
        client: old.get(client, 0) for client, clock in new.items() if clock > old.get(client, 0)
    }
