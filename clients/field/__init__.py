"""The field client: offline CRDT documents and photos on a tablet, synced with OneWindow
(y-websocket for the documents, GraphQL upload tickets for the photos)."""

from clients.field.session import (
    PHOTOS,
    RESULT_LABELS,
    FieldClient,
    FieldError,
    Login,
    NotAllowed,
    NotAuthenticated,
    PhotoOutcome,
    PhotoRound,
    Refusal,
    SyncError,
    SyncResult,
    UnknownDocument,
    backoff_delay,
    login,
)
from clients.field.store import DocStatus, LocalStore, PhotoEntry, PhotoSummary, StoreError

__all__ = [
    "PHOTOS",
    "RESULT_LABELS",
    "DocStatus",
    "FieldClient",
    "FieldError",
    "LocalStore",
    "Login",
    "NotAllowed",
    "NotAuthenticated",
    "PhotoEntry",
    "PhotoOutcome",
    "PhotoRound",
    "PhotoSummary",
    "Refusal",
    "StoreError",
    "SyncError",
    "SyncResult",
    "UnknownDocument",
    "backoff_delay",
    "login",
]
