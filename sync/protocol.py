"""The y-websocket wire format, with a OneWindow extension for acknowledgements and errors.

One websocket binary frame carries exactly one message. Numbers are lib0 variable-length
unsigned integers (7 bits a byte, low bits first); byte strings and text are a length (in
bytes) followed by the bytes; text is UTF-8.

| first number | message | rest of the frame |
| --- | --- | --- |
| 0 ``SYNC`` | sync step 1 (0) | the sender's state vector, as bytes |
|            | sync step 2 (1) | an update with what the other side lacks, as bytes |
|            | update (2)      | an update, as bytes |
| 1 ``AWARENESS`` | presence | bytes: count, then per client: id, clock, JSON state as text |
| 2 ``AUTH`` | permission denied (0) | text: the reason (y-websocket clients log it) |
| 3 ``QUERY_AWARENESS`` | ask for every presence state | nothing |
| 100 ``ONEWINDOW`` | ack (0) | the number of the acknowledged update message |
|                   | error (1) | the refused update's number (0: not an update), code, reason |
|                   | ack up to (2) | the number N: every update message up to N is answered |
|                   | held (3) | the number of an update held for missing dependencies |

The OneWindow extension (type 100) is sent only to connections that asked for it with
``?ack=1``: plain Yjs clients never see it. "The number of an update message" counts the sync
step 2 and update messages that one connection sent, from 1: the server handles a connection's
frames in order, so the client knows which of its updates is meant. An ack means the update is
committed to the durable log. Connections without ``?ack=1`` are told a refusal through the
standard ``AUTH`` permission-denied message, which Yjs clients log.

This server acknowledges cumulatively: after committing a group of one connection's updates
it sends the errors of the group's refused updates and the held frames of its held ones, then
one "ack up to N" with the group's last number. It means: every update message numbered N or
less that was not refused by an error frame and is not held (both sent before it) is
committed to the durable log, or was already in the document and needed nothing stored. It is
sent only after the group's commit, and also when every update of the group was refused, so
that a client knows each of its updates up to N is answered. Numbers only grow, so a client
settles its outstanding updates numbered N or less except the held ones.

The rules of what becomes content (nothing invalid ever does):

- **Held.** An update that lacks dependencies the server does not have (structs after a gap
  in a client's clock, items or deletions of items it has not received) is held: not applied
  to the room's document, not stored, not broadcast, not materialised, not acknowledged. The
  server answers "held (3)" with its number. It is judged again, as a whole with what arrived
  meanwhile, after each later update of that connection that is kept or refused: then it is
  acknowledged by a per-update ack (0) or refused by an error (1), with its number. It is
  dropped when the connection closes (at most 64 are held per connection; beyond that an
  update is refused with ``too_many_held``). A client receiving "held" should send its whole
  state again (a sync step 2 against the server's state vector, or its whole document).
- **Refused, and what depends on it.** An update is refused when it breaks the document's
  layout or the writer's rights (``invalid``), or is ``read_only``, ``too_large``,
  ``malformed_update``, or could not be stored (``storage_unavailable``). Every later update of
  the same connection that depends on a refused one (structs of the refused client id past its
  refused clock) is refused too, with the same code and reason, and never reaches the policy.
- **Recovery.** A refused change cannot be taken out of a CRDT replica: a OneWindow client
  drops its replica of that document, takes the server's state (a fresh document, hence a new
  client id) and re-applies only the edits it still wants (the field app keeps the refused
  ones in a visible "refused edits" list with their reasons). Stock Yjs clients (no
  ``?ack=1``) that keep sending a refused change get ``AUTH`` permission denied each time, and
  neither the server nor other clients ever see it.

A presence update goes to every connection of the room, its sender included, as the reference
y-websocket server does: stock y-websocket clients renew their presence every 15 s and close a
socket on which nothing arrived for 30 s, so the echo is a lone client's keep-alive.

Decoding never trusts the input: a truncated number, a length past the end of the frame, an
unknown message type or bytes left over raise ``ProtocolError`` with the reason.

pycrdt's ``Encoder.write_var_string`` writes the character count instead of the UTF-8 byte
count, which breaks on Chinese text; this module writes the byte count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

MAX_VAR_UINT_BYTES = 10  # 70 bits: more than any count or clock a client can have


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    ONEWINDOW = 100


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ExtensionType(IntEnum):
    ACK = 0
    ERROR = 1
    ACK_UPTO = 2
    HELD = 3


class ProtocolError(ValueError):
    """A frame that is not a well-formed message; the reason says what was wrong."""


# --- encoding ----------------------------------------------------------------------------


_SMALL = [bytes((value,)) for value in range(0x80)]  # one byte each: the common case


def var_uint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        raise ValueError(f"cannot encode {value}: variable-length numbers are unsigned")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


def var_string(text: str) -> bytes:
    """The UTF-8 byte length, then the bytes (not the character count, as pycrdt writes)."""
    return var_bytes(text.encode("utf-8"))


def sync_step1(state_vector: bytes) -> bytes:
    return var_uint(MessageType.SYNC) + var_uint(SyncType.STEP1) + var_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return var_uint(MessageType.SYNC) + var_uint(SyncType.STEP2) + var_bytes(update)


_SYNC_UPDATE = bytes((MessageType.SYNC, SyncType.UPDATE))
_ACK = bytes((MessageType.ONEWINDOW, ExtensionType.ACK))
_ACK_UPTO = bytes((MessageType.ONEWINDOW, ExtensionType.ACK_UPTO))
_HELD = bytes((MessageType.ONEWINDOW, ExtensionType.HELD))


def sync_update(update: bytes) -> bytes:
    return _SYNC_UPDATE + var_uint(len(update)) + update


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client left

    def parsed(self) -> Any:
        return json.loads(self.state)


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    out = bytearray(var_uint(len(entries)))
    for entry in entries:
        out += var_uint(entry.client_id) + var_uint(entry.clock) + var_string(entry.state)
    return bytes(out)


def awareness(entries: list[AwarenessEntry]) -> bytes:
    return var_uint(MessageType.AWARENESS) + var_bytes(encode_awareness_update(entries))


def awareness_state(client_id: int, clock: int, state: Any) -> AwarenessEntry:
    """An entry for ``state`` (any JSON value; None to say the client left)."""
    return AwarenessEntry(client_id, clock, json.dumps(state, ensure_ascii=False))


def query_awareness() -> bytes:
    return var_uint(MessageType.QUERY_AWARENESS)


def permission_denied(reason: str) -> bytes:
    return var_uint(MessageType.AUTH) + var_uint(0) + var_string(reason)


def ack(number: int) -> bytes:
    """The per-update ack of update ``number`` (clients accept it; this server sends
    ``ack_upto``)."""
    return _ACK + var_uint(number)


def ack_upto(number: int) -> bytes:
    """Every update message up to ``number`` not refused by an earlier error is committed."""
    return _ACK_UPTO + var_uint(number)


def held(number: int) -> bytes:
    """Update ``number`` lacks dependencies the server does not have: it is held, answered
    later (an ack or an error with its number) or dropped with the connection."""
    return _HELD + var_uint(number)


def error(number: int, code: str, reason: str) -> bytes:
    return (
        var_uint(MessageType.ONEWINDOW)
        + var_uint(ExtensionType.ERROR)
        + var_uint(number)
        + var_string(code)
        + var_string(reason)
    )


# --- decoding ----------------------------------------------------------------------------


class Reader:
    """Reads lib0 numbers and byte strings from one frame, checking every bound."""

    def __init__(self, data: bytes, what: str = "message") -> None:
        self.data = bytes(data)
        self.position = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self.data) - self.position

    def var_uint(self, field: str) -> int:
        value = 0
        shift = 0
        for count in range(MAX_VAR_UINT_BYTES):
            if self.position >= len(self.data):
                raise ProtocolError(
                    f"{self.what} ends inside the number {field} (byte {self.position}); "
                    "the frame is truncated: send the whole message in one binary frame"
                )
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value
            if count == MAX_VAR_UINT_BYTES - 1:
                break
        raise ProtocolError(
            f"the number {field} in the {self.what} is longer than {MAX_VAR_UINT_BYTES} bytes; "
            "this is not a y-websocket message"
        )

    def var_bytes(self, field: str) -> bytes:
        length = self.var_uint(f"length of {field}")
        if length > self.remaining:
            raise ProtocolError(
                f"{field} in the {self.what} says it is {length} bytes but only "
                f"{self.remaining} follow; the frame is truncated or not a y-websocket message"
            )
        start = self.position
        self.position += length
        return self.data[start : self.position]

    def var_string(self, field: str) -> str:
        raw = self.var_bytes(field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as problem:
            raise ProtocolError(
                f"{field} in the {self.what} is not UTF-8 ({problem.reason} at byte "
                f"{problem.start}); encode text as UTF-8 with its byte length"
            ) from None

    def end(self) -> None:
        if self.remaining:
            raise ProtocolError(
                f"{self.remaining} unexpected bytes after the end of the {self.what}; "
                "send one message per frame"
            )


@dataclass(frozen=True)
class SyncMessage:
    kind: SyncType
    payload: bytes  # a state vector (step 1) or an update (step 2, update)


@dataclass(frozen=True)
class AwarenessMessage:
    entries: list[AwarenessEntry]


@dataclass(frozen=True)
class QueryAwarenessMessage:
    pass


@dataclass(frozen=True)
class PermissionDeniedMessage:
    reason: str


@dataclass(frozen=True)
class AckMessage:
    number: int


@dataclass(frozen=True)
class AckUpToMessage:
    """Every update message numbered ``number`` or less, unless refused, is committed."""

    number: int


@dataclass(frozen=True)
class HeldMessage:
    """Update ``number`` is held until its dependencies arrive (see the module docstring)."""

    number: int


@dataclass(frozen=True)
class ErrorMessage:
    number: int
    code: str
    reason: str


Message = (
    SyncMessage
    | AwarenessMessage
    | QueryAwarenessMessage
    | PermissionDeniedMessage
    | AckMessage
    | AckUpToMessage
    | HeldMessage
    | ErrorMessage
)

KNOWN_TYPES = ", ".join(f"{t.value} ({t.name.lower()})" for t in MessageType)


def decode_awareness_update(data: bytes) -> list[AwarenessEntry]:
    reader = Reader(data, "awareness update")
    count = reader.var_uint("client count")
    entries = []
    for index in range(count):
        client_id = reader.var_uint(f"client id #{index + 1}")
        clock = reader.var_uint(f"clock #{index + 1}")
        state = reader.var_string(f"state #{index + 1}")
        try:
            json.loads(state)
        except ValueError:
            raise ProtocolError(
                f"awareness state #{index + 1} of client {client_id} is not JSON; "
                "send a JSON object, or null when the client leaves"
            ) from None
        entries.append(AwarenessEntry(client_id, clock, state))
    reader.end()
    return entries


def decode(frame: bytes) -> Message:
    """One frame as a message, or ProtocolError saying what is wrong with it."""
    if not frame:
        raise ProtocolError("the frame is empty; a y-websocket message starts with its type")
    reader = Reader(frame)
    kind = reader.var_uint("message type")
    message: Message
    if kind == MessageType.SYNC:
        sync_kind = reader.var_uint("sync message type")
        if sync_kind not in SyncType._value2member_map_:
            raise ProtocolError(
                f"unknown sync message type {sync_kind}; expected 0 (step 1), 1 (step 2) "
                "or 2 (update)"
            )
        field = "state vector" if sync_kind == SyncType.STEP1 else "update"
        message = SyncMessage(SyncType(sync_kind), reader.var_bytes(field))
    elif kind == MessageType.AWARENESS:
        message = AwarenessMessage(decode_awareness_update(reader.var_bytes("awareness update")))
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwarenessMessage()
    elif kind == MessageType.AUTH:
        auth_kind = reader.var_uint("auth message type")
        if auth_kind != 0:
            raise ProtocolError(f"unknown auth message type {auth_kind}; only 0 is defined")
        message = PermissionDeniedMessage(reader.var_string("reason"))
    elif kind == MessageType.ONEWINDOW:
        extension = reader.var_uint("OneWindow message type")
        if extension == ExtensionType.ACK:
            message = AckMessage(reader.var_uint("update number"))
        elif extension == ExtensionType.ERROR:
            message = ErrorMessage(
                reader.var_uint("update number"),
                reader.var_string("code"),
                reader.var_string("reason"),
            )
        elif extension == ExtensionType.ACK_UPTO:
            message = AckUpToMessage(reader.var_uint("update number"))
        elif extension == ExtensionType.HELD:
            message = HeldMessage(reader.var_uint("update number"))
        else:
            raise ProtocolError(
                f"unknown OneWindow message type {extension}; expected 0 (ack), 1 (error), "
                "2 (ack up to) or 3 (held)"
            )
    else:
        raise ProtocolError(f"unknown message type {kind}; this server understands {KNOWN_TYPES}")
    reader.end()
    return message


# --- update internals the store needs -----------------------------------------------------


def decode_state_vector(data: bytes) -> dict[int, int]:
    """A state vector (client id -> next clock)."""
    reader = Reader(data, "state vector")
    count = reader.var_uint("client count")
    state: dict[int, int] = {}
    for _ in range(count):
        client = reader.var_uint("client id")
        state[client] = reader.var_uint("clock")
    reader.end()
    return state


def decode_delete_set(reader: Reader) -> list[tuple[int, int, int]]:
    """(client, clock, length) ranges of a v1 delete set."""
    ranges = []
    for _ in range(reader.var_uint("delete set client count")):
        client = reader.var_uint("delete set client")
        for _ in range(reader.var_uint("delete set range count")):
            clock = reader.var_uint("delete range clock")
            ranges.append((client, clock, reader.var_uint("delete range length")))
    return ranges
