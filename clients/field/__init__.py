"""The field client: offline CRDT documents on a tablet, synced with OneWindow over y-websocket."""

from clients.field.session import (
    RESULT_LABELS,
    FieldClient,
    FieldError,
    Login,
    NotAllowed,
    NotAuthenticated,
    Refusal,
    SyncError,
    SyncResult,
    UnknownDocument,
    backoff_delay,
    login,
)
from clients.field.store import DocStatus, LocalStore, StoreError

__all__ = [
    "RESULT_LABELS",
    "DocStatus",
    "FieldClient",
    "FieldError",
    "LocalStore",
    "Login",
    "NotAllowed",
    "NotAuthenticated",
    "Refusal",
    "StoreError",
    "SyncError",
    "SyncResult",
    "UnknownDocument",
    "backoff_delay",
    "login",
]
