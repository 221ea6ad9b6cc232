"""One document being edited: its Doc, its connections, its presence states, its projection.

Every update, from a connection or from the server itself (``edit``), takes the same path under
the room's lock: size and rights, the update applied to a scratch copy, the policy's
``validate``, the commit to the log, then the room's Doc, the other connections and the
acknowledgement. Debounced materialisation follows the commits.

The updates a connection has already sent go through together (``receive_many``): each is
checked on its own, in order, against the document with the earlier accepted ones; the accepted
ones are committed in one transaction, and only then applied, broadcast and acknowledged.

The scratch copies are kept between updates instead of being rebuilt from the whole document
each time: ``_before`` holds the room's document (pending updates included) plus the updates
accepted so far in the running batch, ``_after`` the same plus the update being checked. An
accepted update is applied to each once; after a refusal, a failed commit or a policy that
changed them, they are rebuilt from the room's document. The room's own document cannot stand
in for ``_before``: within a group it must already hold the group's earlier accepted updates,
which the room's document receives only once they are committed.

"Already held" is read from ``_after``: an update applied to it that moves its state vector
brought new structs. Only when the state vector stays the same (nothing new, pending structs
or deletions) does the update itself say, against ``_before``'s state vector and delete set.

Each copy is observed once, when it is made (a subscription per validation cost more than the
validation): a transaction on it while the policy validates means the policy changed it.

After a group commit, the group's accepted updates (at most ``MAX_BATCH_UPDATES`` of the
server: ``merge_updates`` grows quadratically with much larger groups) are merged into one
update, which is applied to the room's document in one transaction (the same state as applying
them one by one), goes to the other connections, and is what is checked for pending content:
when the document holds all of it, it holds each of the group's updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pycrdt import Doc, merge_updates

from sync import protocol
from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.protocol import decode_state_vector
from sync.store import DocState, UpdateStore, integrated, outside

log = logging.getLogger("onewindow.sync.room")

EMPTY_UPDATE = b"\x00\x00"


class Refused(UpdateRefused):
    """An update that was not kept: ``code`` for programs, ``reason`` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Watch:
    """Whether a copy changed while the policy validated (see the module's docstring)."""

    __slots__ = ("changed", "validating")

    def __init__(self) -> None:
        self.validating = False
        self.changed = False

    def note(self, _: object) -> None:
        if self.validating:
            self.changed = True


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


class Room:
    def __init__(
        self, name: str, *, policy: DocumentPolicy, store: UpdateStore, settings: RoomSettings
    ) -> None:
        self.name = name
        self.policy = policy
        self.store = store
        self.settings = settings
        self.doc: Doc = Doc()
        self.pending: list[bytes] = []  # stored updates whose predecessors have not arrived
        self.peers: set[Peer] = set()
        self.presence: dict[int, protocol.AwarenessEntry] = {}
        self.presence_of: dict[Peer, set[int]] = {}
        self.lock = asyncio.Lock()
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
        self._state_vector: bytes | None = None  # _after's, as left by the last check
        self._batch: list[bytes] = []  # accepted, not yet committed (under the lock)
        self._watch = _Watch()

    # --- life ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Apply the stored log; seed it with the policy's initial update when empty.

        A policy with an ``async prepare(doc_name)`` (see ``sync.policy``) has it awaited
        first, so that it can read what its synchronous methods need."""
        prepare = getattr(self.policy, "prepare", None)
        if prepare is not None:
            await prepare(self.name)
        updates = await self.store.load(self.name)
        if not updates:
            initial = self.policy.initial_update(self.name)
            if initial:
                await self.store.append(self.name, initial)
                updates = [initial]
        for update in updates:
            self.doc.apply_update(update)
        held = DocState.of(self.doc)
        self.pending = [update for update in updates if not held.covers(update)]
        self._projector = asyncio.create_task(self._project_loop(), name=f"project {self.name}")
        log.info(
            "room %s loaded: %d stored updates, %d pending",
            self.name,
            len(updates),
            len(self.pending),
        )

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

    # --- peers -----------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        self.peers.add(peer)
        self.presence_of[peer] = set()
        peer.send(protocol.sync_step1(self.doc.get_state()))
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
        from the Doc, then the pending updates (``get_update`` leaves them out)."""
        try:
            update = self.doc.get_update(state_vector)
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
        if changed:
            self._broadcast(protocol.awareness(changed), exclude=peer)

    def presence_all(self) -> bytes:
        return protocol.awareness(list(self.presence.values()))

    # --- updates ---------------------------------------------------------------------------

    def _copy(self) -> Doc:
        """The room's document rebuilt, pending updates and the running batch included."""
        copy: Doc = Doc()
        copy.apply_update(self.doc.get_update())
        for update in self.pending:
            copy.apply_update(update)
        for update in self._batch:
            copy.apply_update(update)
        return copy

    def _forget_copies(self) -> None:
        self._before = self._after = None
        self._before_state = None
        self._state_vector = None

    async def receive(self, update: bytes, *, access: Access, origin: Peer | None) -> bool:
        """Validate, commit, apply and broadcast one update; False when it changed nothing.

        Raises ``Refused`` when the update is not kept (nothing of it is stored or sent).
        """
        async with self.lock:
            (result,) = await self._receive_many([update], access=access, origin=origin)
        if isinstance(result, Refused):
            raise result
        return result

    async def receive_many(
        self, updates: list[bytes], *, access: Access, origin: Peer | None
    ) -> list[bool | Refused]:
        """``receive`` for several updates of one sender, in order, committed together.

        One result per update: True (committed), False (changed nothing) or the ``Refused``
        saying why it was not kept. A refused update does not stop the others; when the commit
        fails, every update that would have been stored is refused (``storage_unavailable``).
        When this returns, every True is committed, applied and broadcast."""
        async with self.lock:
            return await self._receive_many(updates, access=access, origin=origin)

    async def edit(self, change: Callable[[Doc], None], *, access: Access) -> bool:
        """The server's own change, made on a copy and then taken through ``receive``."""
        async with self.lock:
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
            update = made[0] if len(made) == 1 else copy.get_update(self.doc.get_state())
            (result,) = await self._receive_many([update], access=access, origin=None)
        if isinstance(result, Refused):
            raise result
        return result

    async def _receive_many(
        self, updates: list[bytes], *, access: Access, origin: Peer | None
    ) -> list[bool | Refused]:
        results: list[bool | Refused] = []
        self._batch = []
        try:
            for update in updates:
                try:
                    results.append(self._check(bytes(update), access=access))
                except Refused as refusal:
                    results.append(refusal)
            batch = self._batch
            if not batch:
                return results
            try:
                await self.store.append_many(self.name, batch)
            except Exception:
                log.exception("could not store %d updates of %s", len(batch), self.name)
                self._forget_copies()
                failed = Refused(
                    "storage_unavailable",
                    "the update could not be stored and was not kept; keep it and send it "
                    "again when the server is back",
                )
                return [failed if result is True else result for result in results]
        except BaseException:
            self._forget_copies()  # they may hold updates that were not committed
            raise
        finally:
            self._batch = []
        merged = batch[0] if len(batch) == 1 else merge_updates(*batch)
        self.doc.apply_update(merged)  # one transaction for the group (see the docstring)
        state_vector = self.doc.get_state()
        clocks = decode_state_vector(state_vector)
        if not integrated(merged, state_vector, clocks):
            self.pending.extend(
                update for update in batch if not integrated(update, state_vector, clocks)
            )
        if self.pending:
            held = DocState.of(self.doc)
            self.pending = [pending for pending in self.pending if not held.covers(pending)]
        self._broadcast(protocol.sync_update(merged), exclude=origin)
        self._mark_dirty()
        return results

    def _copies(self) -> tuple[Doc, Doc]:
        if self._before is None:
            self._before = self._copy()
            self._before.observe(self._watch.note)
            self._before_state = None
        if self._after is None:
            self._after = self._copy()
            self._after.observe(self._watch.note)
            self._state_vector = None
        return self._before, self._after

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
        return self._before_state.covers(update)

    def _check(self, update: bytes, *, access: Access) -> bool:
        """Check one update against the copies; on success add it to ``_batch``."""
        if update == EMPTY_UPDATE:
            return False
        if len(update) > self.settings.max_update_bytes:
            raise Refused(
                "too_large",
                f"the update is {len(update)} bytes; this server accepts at most "
                f"{self.settings.max_update_bytes} bytes per update: sync more often so that "
                "changes travel in smaller pieces",
            )
        before, after = self._copies()
        if not access.writable:
            if self._held(before, update, before.get_state()):
                return False  # already held: nothing to store, the sender may count it as kept
            raise Refused(
                "read_only",
                f"{access.username} may read {self.name} but not change it; the update "
                "was not kept",
            )
        state_vector = self._state_vector
        try:
            with after.transaction():  # one transaction for the state vectors and the update
                if state_vector is None:
                    state_vector = after.get_state()  # == before's (they differ only here)
                after.apply_update(update)
                self._state_vector = after.get_state()
        except Exception as error:  # pycrdt raises plain exceptions on a bad update
            self._after = None
            self._state_vector = None
            raise Refused(
                "malformed_update",
                f"the update could not be read ({error}); it was not kept: send updates "
                "produced by a Yjs or pycrdt document",
            ) from None
        # New structs integrated into ``after`` move its state vector: not held. Otherwise
        # (no structs, pending structs, deletions) the update itself says.
        if self._state_vector == state_vector and self._held(before, update, state_vector):
            return False  # already held: nothing to store, the sender may count it as kept
        watch = self._watch
        watch.validating, watch.changed = True, False
        try:
            self.policy.validate(doc_name=self.name, before=before, after=after, access=access)
        except UpdateRefused as refusal:
            self._after = None
            self._state_vector = None
            raise Refused("invalid", str(refusal) or "the document policy refused it") from None
        except Exception:
            log.exception("the policy of %s failed while validating an update", self.name)
            self._after = None
            self._state_vector = None
            raise Refused(
                "internal_error",
                "the server could not check this update and did not keep it; try again "
                "later, and tell the administrator if it keeps happening",
            ) from None
        finally:
            watch.validating = False
            if watch.changed:
                log.warning("the policy of %s changed the documents it validated", self.name)
                self._forget_copies()
        self._batch.append(update)
        if self._before is not None:
            self._before.apply_update(update)
            self._before_state = None
        return True

    # --- materialisation -------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        now = asyncio.get_running_loop().time()
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
            self._projecting = asyncio.create_task(self._materialise())
            ok = await asyncio.shield(self._projecting)
            self._projecting = None
            if not ok:
                await asyncio.sleep(self.settings.materialise_retry)
                self._wake.set()

    async def _materialise(self) -> bool:
        self._dirty = False
        copy: Doc = Doc()
        copy.apply_update(self.doc.get_update())
        try:
            await self.policy.materialise(doc_name=self.name, doc=copy)
        except Exception:
            log.exception("materialising %s failed; it will be tried again", self.name)
            if not self._dirty:
                self._dirty = True
                self._first_dirty = self._last_commit = asyncio.get_running_loop().time()
            return False
        return True
