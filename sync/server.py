"""The room registry and the per-connection protocol loop.

``SyncServer.serve`` speaks y-websocket over any ``Channel`` (the Starlette endpoint adapts a
websocket to it). Rooms load on demand, stay while someone uses them and unload after
``idle_seconds`` without users, flushing their materialisation and compacting a long log. A
failure in one room (loading, policy, storage) is told to that room's clients and logged; other
rooms are not touched.

Several processes may serve the same documents on one database (see ``sync.store``: each commit
and materialisation runs in the document's turn and reads the log's tail first). A process
learns of the others' commits to a room it holds in two ways: an optional ``Fanout`` (Redis
pub/sub, ``server.document_relay``) tells it at once (``follow``), and a poll reads the
positions of its rooms' logs every ``poll_seconds`` while there is no fan-out or it is not
listening (every ``POLL_LISTENING_SECONDS`` otherwise, in case a message was lost). ``sweep``
materialises documents whose rows stayed behind their log (a process killed between a commit
and its materialisation) and is run by one process at a time (``server.sync_endpoint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pycrdt import Doc

from sync import protocol
from sync.policy import Access, DocumentPolicy
from sync.room import Held, Ledger, Refused, Room, RoomSettings, materialise_log
from sync.store import MAX_DOC_NAME_LENGTH, UpdateStore

log = logging.getLogger("onewindow.sync.server")

# Websocket close codes (4000-4999 are the application's).
CLOSE_NORMAL = 1000
CLOSE_SERVICE_RESTART = 1012  # shutting down: clients retry, behind a balancer on another instance
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_UNKNOWN_DOCUMENT = 4404

# Frames read ahead of the one being handled, and how many (and how many bytes of) updates of
# one connection are committed together at most.
READ_AHEAD = 512
MAX_BATCH_UPDATES = 512
MAX_BATCH_BYTES = 4 << 20

MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: the close frame's payload is at most 125 bytes

PolicyFor = Callable[[str], DocumentPolicy | None]
POLL_LISTENING_SECONDS = 5.0  # the poll's period while a fan-out listens


class Fanout(Protocol):
    """Tells the other processes of each commit, and this one of theirs (``SyncServer.follow``)."""

    @property
    def listening(self) -> bool:
        """True while the other processes' commits reach this one."""
        ...

    def publish(self, doc: str, after: int, upto: int, update: bytes) -> None:
        """Queue the news that ``doc``'s log moved from ``after`` to ``upto`` by ``update``;
        never waits."""
        ...


@dataclass
class SyncFigures:
    """Counters of this process's sync server, read by the metrics."""

    committed: int = 0  # updates stored
    refused: int = 0  # updates answered with an error
    followed: int = 0  # commits of other processes applied to a room here


def update_payload(frame: object) -> bytes | None:
    """The update carried by a sync step 2 or update frame, exactly as ``protocol.decode``
    reads it, without building a reader and a message: None for any other frame (and for
    anything ``decode`` would not accept), which then goes through ``decode``."""
    if not isinstance(frame, bytes) or len(frame) < 3 or frame[0] != 0 or frame[1] not in (1, 2):
        return None
    length = shift = 0
    position = 2
    end = min(len(frame), 2 + protocol.MAX_VAR_UINT_BYTES)
    while True:
        if position >= end:
            return None
        byte = frame[position]
        position += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    if position + length != len(frame):
        return None
    return frame[position:]


Inbound = bytes | str | Exception | None  # a frame, the reader's failure, or None: closed


class Inbox:
    """The frames read ahead for one connection: one task pushes, one takes them in runs.

    A deque with at most one waiting taker and one waiting pusher (``asyncio.Queue`` did the
    same with more bookkeeping per frame). ``push`` waits while ``limit`` frames are queued;
    ``push_nowait`` never waits (the end-of-connection marker)."""

    __slots__ = ("_pusher", "_taker", "frames", "limit")

    def __init__(self, limit: int) -> None:
        self.frames: deque[Inbound] = deque()
        self.limit = limit
        self._taker: asyncio.Future[None] | None = None
        self._pusher: asyncio.Future[None] | None = None

    def push_nowait(self, frame: Inbound) -> None:
        self.frames.append(frame)
        taker = self._taker
        if taker is not None:
            self._taker = None
            if not taker.done():
                taker.set_result(None)

    async def push(self, frame: Inbound) -> None:
        while len(self.frames) >= self.limit:
            self._pusher = asyncio.get_running_loop().create_future()
            try:
                await self._pusher
            finally:
                self._pusher = None
        self.push_nowait(frame)

    async def take(self, most: int) -> list[Inbound]:
        """At least one frame, at most ``most``, in order; waits while there is none."""
        frames = self.frames
        while not frames:
            self._taker = asyncio.get_running_loop().create_future()
            try:
                await self._taker
            finally:
                self._taker = None
        if len(frames) <= most:
            taken = list(frames)
            frames.clear()
        else:
            taken = [frames.popleft() for _ in range(most)]
        pusher = self._pusher
        if pusher is not None and not pusher.done() and len(frames) < self.limit:
            pusher.set_result(None)
        return taken


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry, without splitting a UTF-8 character."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return text
    return raw[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", errors="ignore") + "..."


class Channel(Protocol):
    """One client connection: binary (or, wrongly, text) frames in order."""

    async def receive(self) -> bytes | str | None:
        """The next frame; None once the connection is closed."""
        ...

    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class UnknownDocument(LookupError):
    """No policy is registered for this document name."""


class ServerClosing(RuntimeError):
    """The server is shutting down: no room opens, no connection joins one."""


@dataclass(eq=False)
class Connection:
    """One client in one room: an outgoing queue drained by its own writer task."""

    channel: Channel
    access: Access
    acks: bool
    queue_size: int = 10_000
    ledger: Ledger = field(default_factory=Ledger)  # its updates' numbers, held and refused
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[bytes | tuple[int, str]] = field(init=False)
    _writer: asyncio.Task[None] | None = None
    _closing: bool = False

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name="sync writer")

    def send(self, message: bytes) -> None:
        if self._closing:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning(
                "%s does not read fast enough; closing its connection", self.access.username
            )
            self.close(CLOSE_TRY_AGAIN, "you fell too far behind; reconnect to sync again")

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close; later sends are dropped."""
        if self._closing:
            return
        self._closing = True
        try:
            self._queue.put_nowait((code, reason))
        except asyncio.QueueFull:  # no room for the close: drop the backlog
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait((code, reason))

    async def _write(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, tuple):
                    await self.channel.close(item[0], close_reason(item[1]))
                    return
                await self.channel.send(item)
        except Exception as error:  # the peer went away while we wrote
            log.debug("writing to %s failed: %s", self.access.username, error)
        finally:
            self._closing = True
            self.closed.set()

    async def finish(self, grace: float) -> None:
        self.close(CLOSE_NORMAL, "bye")
        if self._writer is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), grace)
        except TimeoutError:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def refuse(self, number: int, code: str, reason: str) -> None:
        if self.acks:
            self.send(protocol.error(number, code, reason))
        else:
            self.send(protocol.permission_denied(reason))


class SyncServer:
    def __init__(
        self,
        *,
        store: UpdateStore,
        policy_for: PolicyFor,
        max_update_bytes: int = 1 << 20,
        idle_seconds: float = 30.0,
        materialise_delay: float = 0.3,
        materialise_max_wait: float = 1.0,
        compact_after: int = 1000,
        close_timeout: float = 5.0,
        poll_seconds: float = 1.0,
        rest_after: float = 5.0,
        fanout: Fanout | None = None,
        on_ack: Callable[[float], None] | None = None,
        on_unloaded: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_unloaded = on_unloaded
        self.poll_seconds = poll_seconds
        self.fanout = fanout
        self.on_ack = on_ack
        self.figures = SyncFigures()
        self._following: set[asyncio.Task[None]] = set()
        self._polling: asyncio.Task[None] | None = None
        self._lagging: dict[str, int] = {}  # the previous sweep's documents behind their log
        self.policy_for = policy_for
        self.idle_seconds = idle_seconds
        self.compact_after = compact_after
        self.close_timeout = close_timeout
        self.room_settings = RoomSettings(
            max_update_bytes=max_update_bytes,
            materialise_delay=materialise_delay,
            materialise_max_wait=max(materialise_max_wait, materialise_delay),
            rest_after=rest_after,
        )
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Task[Room]] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}
        self._unloading: set[asyncio.Task[None]] = set()
        self._connections: set[Connection] = set()
        self._closed = False
        self._catching_up: asyncio.Task[int] | None = None

    def start(self) -> None:
        """Begin the start-up catch-up (``catch_up``) and the poll in the background."""
        self._catching_up = asyncio.create_task(self.catch_up(), name="sync catch-up")
        if self.poll_seconds > 0:
            self._polling = asyncio.create_task(self._poll_loop(), name="sync poll")

    # --- other processes -------------------------------------------------------------------

    def follow(self, doc_name: str, after: int, upto: int, update: bytes | None) -> None:
        """Another process committed to ``doc_name`` (see ``Room.follow``); nothing to do
        unless a room of it is open here. Applied in the order of the calls."""
        room = self.rooms.get(doc_name)
        if room is None or room.closing or room.position >= upto:
            return
        self.figures.followed += 1
        task = asyncio.create_task(room.follow(after=after, upto=upto, update=update))
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    def poll_soon(self) -> None:
        """``poll`` in the background (e.g. once a fan-out listens again)."""
        if self._closed:
            return
        task = asyncio.create_task(self._poll_once(), name="sync poll once")
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _poll_once(self) -> None:
        try:
            await self.poll()
        except Exception as error:
            log.warning("polling the logs of %d rooms failed: %s", len(self.rooms), error)

    def materialisation_lag(self) -> float:
        """Seconds the oldest commit of an open room has waited for its rows (0: none)."""
        return max((room.lag_seconds() for room in list(self.rooms.values())), default=0.0)

    async def poll(self) -> int:
        """Read the log positions of the open rooms and have those behind follow their log;
        how many were behind."""
        rooms = [room for room in self.rooms.values() if not room.closing]
        heads = await self.store.heads([room.name for room in rooms])
        behind = 0
        for room in rooms:
            head = heads.get(room.name, 0)
            if head > room.position:
                behind += 1
                self.follow(room.name, head, head, None)
        return behind

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.poll_seconds)
            listening = self.fanout is not None and self.fanout.listening
            if listening and loop.time() - last < POLL_LISTENING_SECONDS:
                continue
            last = loop.time()
            if self.rooms:
                await self._poll_once()

    def _committed(self, doc: str, after: int, upto: int, update: bytes) -> None:
        if self.fanout is not None:
            self.fanout.publish(doc, after, upto, update)

    # --- rows ------------------------------------------------------------------------------

    async def materialise(self, doc_name: str) -> None:
        """Write the rows of ``doc_name`` from the log's state now (the room's, when it is
        open here); raises what the policy or the database raises."""
        room = self.rooms.get(doc_name)
        if room is not None and not room.closing:
            room.users += 1
            try:
                await room.materialise()
            finally:
                self._release(room)
            return
        await materialise_log(doc_name, policy=self.policy(doc_name), store=self.store)

    async def sweep(self) -> int:
        """Materialise the documents whose rows were behind their log at the previous sweep
        and still are (those another process is about to materialise are left to it); how
        many were written. One process at a time should sweep (any may: it is safe)."""
        lagging = await self.store.lagging()
        due = [doc for doc, head in lagging.items() if 0 < self._lagging.get(doc, 0) <= head]
        self._lagging = lagging
        count = 0
        for doc_name in sorted(due):
            try:
                await self.materialise(doc_name)
            except UnknownDocument:
                continue  # no policy serves it any more: nothing to write
            except Exception:
                log.exception("the sweep could not materialise %s", doc_name)
                continue
            count += 1
        if count:
            log.info("the sweep materialised %d documents left behind", count)
        return count

    async def catch_up(self) -> int:
        """Materialise every document whose log is further on than its rows (updates committed
        just before a crash), one at a time; returns how many were materialised."""
        count = 0
        for doc_name in await self.store.behind():
            try:
                self.policy(doc_name)
            except UnknownDocument:
                continue  # no policy serves it any more: nothing to write
            try:
                room = await self._acquire(doc_name)
            except ServerClosing:
                break
            except Exception:
                log.exception("catching up %s: its room could not be opened", doc_name)
                continue
            try:
                if await room.catch_up():
                    count += 1
            finally:
                self._release(room)
        if count:
            log.info("caught up the rows of %d documents", count)
        return count

    # --- documents -------------------------------------------------------------------------

    def policy(self, doc_name: str) -> DocumentPolicy:
        """The policy of ``doc_name``; UnknownDocument when none is registered."""
        if not doc_name or len(doc_name) > MAX_DOC_NAME_LENGTH:
            raise UnknownDocument(
                f"document name {doc_name[:40]!r} is empty or longer than "
                f"{MAX_DOC_NAME_LENGTH} characters; use the name the API gave you"
            )
        try:
            policy = self.policy_for(doc_name)
        except Exception as error:
            log.exception("policy_for(%r) failed", doc_name)
            raise UnknownDocument(f"no policy for document {doc_name!r}: {error}") from None
        if policy is None:
            raise UnknownDocument(
                f"there is no document {doc_name!r} on this server; use a document name the "
                "API gave you (e.g. an inspection's document)"
            )
        return policy

    async def _acquire(self, doc_name: str) -> Room:
        while True:
            # Checked again after every wait: a connection still opening its room when
            # ``close`` began must not join a room that ``close`` unloads.
            if self._closed:
                raise ServerClosing("the sync server is shutting down; reconnect later")
            room = self.rooms.get(doc_name)
            if room is not None and room.closing:
                await room.closed.wait()
                continue
            if room is not None:
                room.users += 1
                timer = self._idle.pop(doc_name, None)
                if timer is not None:
                    timer.cancel()
                return room
            loading = self._loading.get(doc_name)
            if loading is None:
                loading = asyncio.create_task(self._load(doc_name), name=f"load {doc_name}")
                self._loading[doc_name] = loading
            await asyncio.shield(loading)  # raises if loading failed, for every waiter

    async def _load(self, doc_name: str) -> Room:
        try:
            room = Room(
                doc_name,
                policy=self.policy(doc_name),
                store=self.store,
                settings=self.room_settings,
                on_commit=self._committed if self.fanout is not None else None,
            )
            await room.load()
            self.rooms[doc_name] = room
            return room
        finally:
            self._loading.pop(doc_name, None)

    def _release(self, room: Room) -> None:
        room.users -= 1
        if room.users > 0 or room.closing or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._idle[room.name] = loop.call_later(self.idle_seconds, self._unload_soon, room)

    def _unload_soon(self, room: Room) -> None:
        self._idle.pop(room.name, None)
        if room.users > 0 or room.closing:
            return
        task = asyncio.create_task(self._unload(room), name=f"unload {room.name}")
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)

    async def _unload(self, room: Room) -> None:
        room.closing = True
        try:
            async with room.lock:  # an update in flight finishes first
                await room.close()
            if self.compact_after and await self.store.row_count(room.name) > self.compact_after:
                await self.store.compact(room.name)
        except Exception:
            log.exception("closing room %s failed", room.name)
        finally:
            self.rooms.pop(room.name, None)
            room.closed.set()
            log.info("room %s unloaded", room.name)
            if self.on_unloaded is not None:
                self.on_unloaded()

    # --- the server's own changes ----------------------------------------------------------

    async def edit(self, doc_name: str, change: Callable[[Doc], None], *, access: Access) -> None:
        """Change a document as a client would: validated, logged, applied and broadcast.

        Raises ``Refused`` (an ``UpdateRefused``) when the change is not kept and
        ``UnknownDocument`` for a name without a policy.
        """
        room = await self._acquire(doc_name)
        try:
            await room.edit(change, access=access)
        finally:
            self._release(room)

    # --- connections -----------------------------------------------------------------------

    async def serve(self, doc_name: str, channel: Channel, *, access: Access, acks: bool) -> None:
        """Speak y-websocket with one client until it leaves; closes the channel at the end."""
        connection = Connection(channel=channel, access=access, acks=acks)
        connection.start()
        try:
            room = await self._acquire(doc_name)
        except UnknownDocument as error:
            connection.close(CLOSE_UNKNOWN_DOCUMENT, str(error))
            await connection.finish(self.close_timeout)
            return
        except ServerClosing as error:
            connection.close(CLOSE_SERVICE_RESTART, str(error))
            await connection.finish(self.close_timeout)
            return
        except Exception as error:
            log.exception("could not open room %s", doc_name)
            connection.close(
                CLOSE_INTERNAL_ERROR,
                f"document {doc_name} could not be opened ({type(error).__name__}); "
                "try again later",
            )
            await connection.finish(self.close_timeout)
            return
        self._connections.add(connection)
        try:
            room.join(connection)
            await self._read(room, connection)
        except Exception:
            log.exception("connection of %s to %s failed", access.username, doc_name)
            connection.close(CLOSE_INTERNAL_ERROR, "the server failed; reconnect to sync again")
        finally:
            self._connections.discard(connection)
            room.leave(connection)
            self._release(room)
            await connection.finish(self.close_timeout)

    async def _read(self, room: Room, connection: Connection) -> None:
        """Frames are read ahead by one task; whatever has arrived is handled together, so
        that the updates among it are committed in one transaction (``_handle_frames``)."""
        inbox = Inbox(READ_AHEAD)

        async def pump() -> None:
            receive = connection.channel.receive
            try:
                while True:
                    frame = await receive()
                    await inbox.push(frame)
                    if frame is None:
                        return
            except Exception as error:
                inbox.push_nowait(error)

        async def stop_when_closed() -> None:
            await connection.closed.wait()
            inbox.push_nowait(None)  # wakes the loop below

        tasks = [
            asyncio.create_task(pump(), name="sync reader"),
            asyncio.create_task(stop_when_closed(), name="sync reader stop"),
        ]
        try:
            while not connection.closed.is_set():
                frames = await inbox.take(MAX_BATCH_UPDATES)
                if not await self._handle_frames(room, connection, frames):
                    return
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _handle_frames(
        self, room: Room, connection: Connection, frames: list[Inbound]
    ) -> bool:
        """Handle frames in order; False when the connection must end.

        Consecutive update messages are committed together; any other message is handled only
        after the updates before it are committed (a sync step 1 is answered with them)."""
        batch: list[bytes] = []
        size = 0
        closed = connection.closed
        for frame in frames:
            if frame is None or closed.is_set():
                await self._commit(room, connection, batch)
                return False
            if isinstance(frame, Exception):
                await self._commit(room, connection, batch)
                raise frame
            payload = update_payload(frame)  # the common case, read without ``decode``
            if payload is None and isinstance(frame, bytes):
                with contextlib.suppress(protocol.ProtocolError):
                    message = protocol.decode(frame)
                    if (
                        isinstance(message, protocol.SyncMessage)
                        and message.kind != protocol.SyncType.STEP1
                    ):
                        payload = message.payload
            if payload is not None:
                batch.append(payload)
                size += len(payload)
                if size >= MAX_BATCH_BYTES:
                    await self._commit(room, connection, batch)
                    batch, size = [], 0
                continue
            await self._commit(room, connection, batch)
            batch, size = [], 0
            if not self._handle(room, connection, frame):
                return False
        await self._commit(room, connection, batch)
        return True

    async def _commit(self, room: Room, connection: Connection, batch: list[bytes]) -> None:
        """Take a connection's next update messages through the room (numbered on in its
        ``ledger``); once they are committed, tell the refusals and the held updates, answer
        earlier held updates that were settled, then acknowledge the whole group with one
        cumulative ack (``ack_upto``)."""
        if not batch:
            return
        started = time.perf_counter()
        ledger = connection.ledger
        first = ledger.received + 1
        results = await room.receive_many(
            batch, access=connection.access, origin=connection, ledger=ledger
        )
        figures = self.figures
        for number, result in enumerate(results, first):
            if result is True:
                figures.committed += 1
            elif isinstance(result, Held):
                if connection.acks:
                    connection.send(protocol.held(number))
            elif isinstance(result, Refused):
                self._refused(room, connection, number, result)
        for number, settled in ledger.take_settled():
            if isinstance(settled, Refused):
                self._refused(room, connection, number, settled)
            else:
                figures.committed += settled is True
                if connection.acks:
                    connection.send(protocol.ack(number))
        if connection.acks:
            connection.send(protocol.ack_upto(ledger.received))
        if self.on_ack is not None:
            self.on_ack(time.perf_counter() - started)

    def _refused(self, room: Room, connection: Connection, number: int, refusal: Refused) -> None:
        self.figures.refused += 1
        log.info(
            "refused update #%d of %s on %s: %s",
            number,
            connection.access.username,
            room.name,
            refusal.reason,
        )
        connection.refuse(number, refusal.code, refusal.reason)

    def _handle(self, room: Room, connection: Connection, frame: bytes | str) -> bool:
        """Handle one frame that is not an update; False when the connection must end."""
        if isinstance(frame, str):
            reason = "text frames are not y-websocket messages; send binary frames"
            connection.refuse(0, "protocol_error", reason)
            connection.close(CLOSE_UNSUPPORTED_DATA, reason)
            return False
        try:
            message = protocol.decode(frame)
        except protocol.ProtocolError as error:
            connection.refuse(0, "protocol_error", str(error))
            connection.close(CLOSE_PROTOCOL_ERROR, str(error))
            return False
        if isinstance(message, protocol.SyncMessage):
            try:
                for reply in room.step2_for(message.payload):
                    connection.send(reply)
            except Refused as refusal:
                connection.refuse(0, refusal.code, refusal.reason)
        elif isinstance(message, protocol.AwarenessMessage):
            room.presence_update(connection, message.entries)
        elif isinstance(message, protocol.QueryAwarenessMessage):
            connection.send(room.presence_all())
        else:
            connection.refuse(
                0,
                "unexpected_message",
                f"{type(message).__name__} is sent by the server, not by clients; ignored",
            )
        return True

    # --- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection, flush every room's materialisation, unload every room."""
        self._closed = True
        for task in (self._catching_up, self._polling, *self._following):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for connection in list(self._connections):
            connection.close(CLOSE_SERVICE_RESTART, "the server is shutting down; reconnect later")
        for timer in self._idle.values():
            timer.cancel()
        self._idle.clear()
        for loading in list(self._loading.values()):
            with contextlib.suppress(Exception):
                await loading
        waiting = [c.closed.wait() for c in list(self._connections)]
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waiting), self.close_timeout)
        if self._unloading:
            await asyncio.gather(*self._unloading, return_exceptions=True)
        for room in list(self.rooms.values()):
            if not room.closing:
                await self._unload(room)
