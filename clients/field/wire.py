"""The y-websocket messages the field client speaks, with OneWindow's ack/error (type 100).

A client-side copy of the wire format (``sync.protocol`` on the server; clients import wire
protocols, not server code): lib0 variable-length unsigned numbers, byte strings as a byte
length then the bytes, text as UTF-8 with its byte length.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
MESSAGE_ONEWINDOW = 100
EXTENSION_ACK = 0
EXTENSION_ERROR = 1
EXTENSION_ACK_UPTO = 2  # every update up to the number, unless refused by an error or held
EXTENSION_HELD = 3  # the update lacks dependencies the server does not have: answered later


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ProtocolError(ValueError):
    """A frame that is not a well-formed message."""


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + bytes(data)


def sync_step1(state_vector: bytes) -> bytes:
    return var_uint(MESSAGE_SYNC) + var_uint(SyncType.STEP1) + var_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return var_uint(MESSAGE_SYNC) + var_uint(SyncType.STEP2) + var_bytes(update)


def sync_update(update: bytes) -> bytes:
    return var_uint(MESSAGE_SYNC) + var_uint(SyncType.UPDATE) + var_bytes(update)


@dataclass(frozen=True)
class SyncMessage:
    kind: SyncType
    payload: bytes


@dataclass(frozen=True)
class AckMessage:
    number: int


@dataclass(frozen=True)
class AckUpToMessage:
    """Every update message numbered ``number`` or less that was not refused by an error
    frame (errors come first) and is not held is committed: the server's cumulative ack of a
    group."""

    number: int


@dataclass(frozen=True)
class HeldMessage:
    """Update ``number`` lacks changes the server does not have: it is held (not acked by an
    "ack up to") and later acked or refused by its number; send the whole state again."""

    number: int


@dataclass(frozen=True)
class ErrorMessage:
    number: int
    code: str
    reason: str


@dataclass(frozen=True)
class PermissionDeniedMessage:
    reason: str


@dataclass(frozen=True)
class OtherMessage:
    """Presence and anything else the field client does not use."""

    kind: int


Message = (
    SyncMessage
    | AckMessage
    | AckUpToMessage
    | HeldMessage
    | ErrorMessage
    | PermissionDeniedMessage
    | OtherMessage
)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.position = 0

    def var_uint(self) -> int:
        value = 0
        shift = 0
        for _ in range(10):
            if self.position >= len(self.data):
                raise ProtocolError("the message ends inside a number")
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value
        raise ProtocolError("a number is longer than 10 bytes")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        if length > len(self.data) - self.position:
            raise ProtocolError(f"a field says it is {length} bytes but fewer follow")
        start = self.position
        self.position += length
        return self.data[start : self.position]

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("a text field is not UTF-8") from None


def decode(frame: bytes) -> Message:
    if not frame:
        raise ProtocolError("an empty frame")
    reader = _Reader(frame)
    kind = reader.var_uint()
    if kind == MESSAGE_SYNC:
        sync_kind = reader.var_uint()
        if sync_kind not in (0, 1, 2):
            raise ProtocolError(f"unknown sync message type {sync_kind}")
        return SyncMessage(SyncType(sync_kind), reader.var_bytes())
    if kind == MESSAGE_AUTH:
        reader.var_uint()
        return PermissionDeniedMessage(reader.var_string())
    if kind == MESSAGE_ONEWINDOW:
        extension = reader.var_uint()
        if extension == EXTENSION_ACK:
            return AckMessage(reader.var_uint())
        if extension == EXTENSION_ERROR:
            return ErrorMessage(reader.var_uint(), reader.var_string(), reader.var_string())
        if extension == EXTENSION_ACK_UPTO:
            return AckUpToMessage(reader.var_uint())
        if extension == EXTENSION_HELD:
            return HeldMessage(reader.var_uint())
        raise ProtocolError(f"unknown OneWindow message type {extension}")
    return OtherMessage(kind)
