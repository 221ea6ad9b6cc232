"""The CRDT face: y-websocket protocol, rooms, the durable update log and its compaction.

Knows pycrdt and storage, not the domain: each document's validation and materialisation come
in through ``DocumentPolicy`` (``sync.policy``), each connection's rights through ``Access``.
"""

from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.protocol import ProtocolError
from sync.room import Refused
from sync.server import Channel, SyncServer, UnknownDocument
from sync.store import Compaction, UpdateStore

__all__ = [
    "Access",
    "Channel",
    "Compaction",
    "DocumentPolicy",
    "ProtocolError",
    "Refused",
    "SyncServer",
    "UnknownDocument",
    "UpdateRefused",
    "UpdateStore",
]
