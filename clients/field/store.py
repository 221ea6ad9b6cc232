"""The tablet's local store: one SQLite file that survives restarts.

It keeps, per document, every update the tablet has seen (its own and the server's, in the order
they were applied), so reopening the file rebuilds the same document. The tablet's own updates
stay *pending* (the outbox) until the server acknowledges that they are in its durable log.
It also keeps each document's sync status and, in ``settings``, the login (server, token).

Plain ``sqlite3`` from the standard library; every write is committed at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    data BLOB NOT NULL,
    local INTEGER NOT NULL,   -- 1: made on this tablet, 0: received from the server
    pending INTEGER NOT NULL  -- 1: local and not yet acknowledged by the server (the outbox)
);
CREATE INDEX IF NOT EXISTS updates_doc ON updates (doc, id);
CREATE INDEX IF NOT EXISTS updates_outbox ON updates (doc, pending, id);
CREATE TABLE IF NOT EXISTS documents (
    name TEXT PRIMARY KEY,
    last_synced_at TEXT,
    last_error TEXT,
    last_error_at TEXT
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    data: bytes


@dataclass(frozen=True)
class DocStatus:
    """What a person needs to know about one document's sync."""

    doc_name: str
    pending: int
    last_synced_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class LocalStore:
    """The SQLite file at ``path`` (created with its folder if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"the local store {self.path} cannot be opened ({error}); move it away to "
                "start afresh (unsynced changes in it would be lost)"
            ) from None

    def close(self) -> None:
        self._db.close()

    # --- documents -------------------------------------------------------------------------

    def _ensure(self, doc_name: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO documents (name) VALUES (?)", (doc_name,))

    def documents(self) -> list[str]:
        rows = self._db.execute("SELECT name FROM documents ORDER BY name").fetchall()
        return [str(row[0]) for row in rows]

    def has(self, doc_name: str) -> bool:
        row = self._db.execute("SELECT 1 FROM updates WHERE doc = ? LIMIT 1", (doc_name,))
        return row.fetchone() is not None

    def history(self, doc_name: str) -> list[bytes]:
        """Every update of the document, in the order it was applied locally."""
        rows = self._db.execute(
            "SELECT data FROM updates WHERE doc = ? ORDER BY id", (doc_name,)
        ).fetchall()
        return [bytes(row[0]) for row in rows]

    def add_local(self, doc_name: str, update: bytes) -> int:
        """Keep a change made on this tablet, pending until the server acknowledges it."""
        self._ensure(doc_name)
        cursor = self._db.execute(
            "INSERT INTO updates (doc, data, local, pending) VALUES (?, ?, 1, 1)",
            (doc_name, bytes(update)),
        )
        return int(cursor.lastrowid or 0)

    def add_remote(self, doc_name: str, update: bytes) -> None:
        """Keep an update received from the server (it is already in the server's log)."""
        self._ensure(doc_name)
        self._db.execute(
            "INSERT INTO updates (doc, data, local, pending) VALUES (?, ?, 0, 0)",
            (doc_name, bytes(update)),
        )

    def outbox(self, doc_name: str, *, after: int = 0) -> list[OutboxEntry]:
        rows = self._db.execute(
            "SELECT id, data FROM updates WHERE doc = ? AND pending = 1 AND id > ? ORDER BY id",
            (doc_name, after),
        ).fetchall()
        return [OutboxEntry(int(row[0]), bytes(row[1])) for row in rows]

    def acknowledge(self, ids: Iterable[int]) -> None:
        self._db.executemany(
            "UPDATE updates SET pending = 0 WHERE id = ?", [(update_id,) for update_id in ids]
        )

    def replace(self, doc_name: str, state: bytes) -> int:
        """Forget the document's local history (pending changes too) and keep ``state``, the
        server's, instead. Returns how many pending local changes were dropped."""
        self._ensure(doc_name)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (dropped,) = self._db.execute(
                "SELECT COUNT(*) FROM updates WHERE doc = ? AND pending = 1", (doc_name,)
            ).fetchone()
            self._db.execute("DELETE FROM updates WHERE doc = ?", (doc_name,))
            self._db.execute(
                "INSERT INTO updates (doc, data, local, pending) VALUES (?, ?, 0, 0)",
                (doc_name, bytes(state)),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return int(dropped)

    # --- status ----------------------------------------------------------------------------

    def synced(self, doc_name: str, at: datetime) -> None:
        """A sync finished with nothing refused: the last error is cleared."""
        self._ensure(doc_name)
        self._db.execute(
            "UPDATE documents SET last_synced_at = ?, last_error = NULL, last_error_at = NULL "
            "WHERE name = ?",
            (at.isoformat(), doc_name),
        )

    def failed(self, doc_name: str, error: str, at: datetime) -> None:
        self._ensure(doc_name)
        self._db.execute(
            "UPDATE documents SET last_error = ?, last_error_at = ? WHERE name = ?",
            (error, at.isoformat(), doc_name),
        )

    def status(self, doc_name: str) -> DocStatus:
        (pending,) = self._db.execute(
            "SELECT COUNT(*) FROM updates WHERE doc = ? AND pending = 1", (doc_name,)
        ).fetchone()
        row = self._db.execute(
            "SELECT last_synced_at, last_error, last_error_at FROM documents WHERE name = ?",
            (doc_name,),
        ).fetchone()
        synced_at, error, error_at = row if row is not None else (None, None, None)
        return DocStatus(doc_name, int(pending), _time(synced_at), error, _time(error_at))

    # --- settings --------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


class StoreError(RuntimeError):
    """The local store file cannot be used; the message says what to do."""
