"""The y-websocket framing: what we write, what pycrdt writes, and garbage that must not crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Encoder, Map, create_sync_message, create_update_message

from sync import protocol
from sync.protocol import ProtocolError, decode


def test_our_sync_messages_match_pycrdt() -> None:
    doc: Doc = Doc()
    doc.get("m", type=Map)["a"] = 1
    update = doc.get_update()
    assert protocol.sync_step1(doc.get_state()) == create_sync_message(doc)
    assert protocol.sync_update(update) == create_update_message(update)
    message = decode(create_update_message(update))
    assert message == protocol.SyncMessage(protocol.SyncType.UPDATE, update)


@pytest.mark.parametrize(
    "frame",
    [
        protocol.sync_step1(b"\x00"),
        protocol.sync_step2(b"\x00\x00"),
        protocol.query_awareness(),
        protocol.permission_denied("没有权限"),
        protocol.ack(300),
        protocol.ack_upto(300),
        protocol.error(7, "invalid", "检查项不存在; 请刷新"),
        protocol.awareness([protocol.awareness_state(1, 2, {"name": "张三"})]),
    ],
)
def test_every_message_round_trips(frame: bytes) -> None:
    message = decode(frame)
    again = {
        protocol.SyncMessage: lambda m: (
            protocol.var_uint(0) + protocol.var_uint(m.kind) + protocol.var_bytes(m.payload)
        ),
        protocol.QueryAwarenessMessage: lambda m: protocol.query_awareness(),
        protocol.PermissionDeniedMessage: lambda m: protocol.permission_denied(m.reason),
        protocol.AckMessage: lambda m: protocol.ack(m.number),
        protocol.AckUpToMessage: lambda m: protocol.ack_upto(m.number),
        protocol.ErrorMessage: lambda m: protocol.error(m.number, m.code, m.reason),
        protocol.AwarenessMessage: lambda m: protocol.awareness(m.entries),
    }[type(message)](message)
    assert again == frame


def test_chinese_awareness_uses_utf8_byte_lengths() -> None:
    state = {"user": {"name": "王建国", "department": "住建局"}, "cursor": "消防检查"}
    frame = protocol.awareness([protocol.awareness_state(42, 3, state)])
    message = decode(frame)
    assert isinstance(message, protocol.AwarenessMessage)
    assert message.entries[0].client_id == 42
    assert message.entries[0].clock == 3
    assert message.entries[0].parsed() == state
    # The byte length is written, not the character count:
    text = protocol.var_string("住建局")
    assert text[0] == 9 and text[1:].decode("utf-8") == "住建局"


def test_pycrdt_encoder_writes_character_counts_and_we_refuse_that() -> None:
    encoder = Encoder()
    encoder.write_var_uint(1)  # one client
    encoder.write_var_uint(42)
    encoder.write_var_uint(1)
    encoder.write_var_string('{"name":"王建国"}')  # 14 characters, 20 bytes
    broken = encoder.to_bytes()
    frame = protocol.var_uint(protocol.MessageType.AWARENESS) + protocol.var_bytes(broken)
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert "awareness" in str(caught.value)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "empty"),
        (b"\x80", "ends inside the number message type"),
        (b"\x00\x02\x85", "ends inside the number length of update"),
        (b"\x00\x02\x05ab", "says it is 5 bytes but only 2 follow"),
        (b"\x07", "unknown message type 7"),
        (b"\x00\x09\x00", "unknown sync message type 9"),
        (b"\x00\x02\x01a\xff", "1 unexpected bytes"),
        (b"\xff" * 11, "longer than 10 bytes"),
        (b"\x01\x05\x01\x01\x01\x01{", "is not JSON"),
        (b"\x02\x00\x02\xc3\x28", "is not UTF-8"),
        (b"\x64\x05", "unknown OneWindow message type 5"),
        (b"\x02\x01", "unknown auth message type 1"),
    ],
)
def test_garbage_gets_a_clear_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert reason in str(caught.value)


@given(st.binary(max_size=64))
def test_decoding_never_crashes(frame: bytes) -> None:
    try:
        decode(frame)
    except ProtocolError as error:
        assert str(error)


@given(st.integers(min_value=0, max_value=2**63))
def test_var_uint_round_trips(value: int) -> None:
    reader = protocol.Reader(protocol.var_uint(value))
    assert reader.var_uint("n") == value
    reader.end()
