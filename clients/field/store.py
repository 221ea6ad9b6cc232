"""The tablet's local store: one SQLite file that survives restarts.

It keeps, per document, every update the tablet has seen (its own and the server's, in the order
they were applied), so reopening the file rebuilds the same document. The tablet's own updates
stay *pending* (the outbox) until the server acknowledges that they are in its durable log.
It also keeps each document's sync status and, in ``settings``, the login (server, token),
and the photo outbox: each photo attached to a check, until the server confirmed its bytes
(the bytes themselves are files next to this one, see ``photos``).

Plain ``sqlite3`` from the standard library; every write is committed at once (or with the
others of a :meth:`LocalStore.transaction`). The schema version is SQLite's ``user_version``:
a file of an older client is brought up to date when opened (:data:`MIGRATIONS`), a file of a
newer client is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
"""Version 0: the tables of the first field client (files without a ``user_version``)."""

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,        -- the photo id: lowercase hex SHA-256 of the bytes
    doc TEXT NOT NULL,           -- the inspection document
    department TEXT NOT NULL,
    check_code TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,  -- sniffed from the bytes
    size_bytes INTEGER NOT NULL,
    state TEXT NOT NULL,         -- queued, sent (bytes PUT, not confirmed), done, refused
    upload_id TEXT,              -- the server's upload while sent
    attempts INTEGER NOT NULL DEFAULT 0,  -- failed attempts (transient) so far
    added_at TEXT NOT NULL,
    done_at TEXT,
    last_error TEXT,
    last_error_at TEXT,
    UNIQUE (doc, department, check_code, sha256)
);
CREATE INDEX IF NOT EXISTS photos_state ON photos (state, id);
CREATE INDEX IF NOT EXISTS photos_sha256 ON photos (sha256);
""",
}
"""Schema changes by the version they bring the file to; each runs in a transaction and is
idempotent (two processes opening an old file at once both migrate it harmlessly)."""

SCHEMA_VERSION = max(MIGRATIONS)

QUEUED, SENT, DONE, REFUSED = "queued", "sent", "done", "refused"
PENDING_STATES = (QUEUED, SENT)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    data: bytes


@dataclass(frozen=True)
class DocStatus:
    """What a person needs to know about one document's sync (and its photos' uploads)."""

    doc_name: str
    pending: int
    last_synced_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    photos_pending: int = 0  # attached, not yet confirmed by the server
    photos_refused: int = 0  # refused by the server for good (see ``photo_error``)
    photo_error: str | None = None  # the latest error of a photo not yet uploaded


@dataclass(frozen=True)
class PhotoEntry:
    """One photo attached to one check, as the photo outbox keeps it."""

    id: int
    photo_id: str  # the SHA-256 of the bytes
    doc_name: str
    department: str
    check: str
    file_name: str
    content_type: str
    size_bytes: int
    state: str  # queued, sent, done, refused
    upload_id: str | None
    attempts: int
    added_at: datetime
    done_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES


@dataclass(frozen=True)
class PhotoSummary:
    """The photo outbox of the whole tablet."""

    pending: int
    refused: int
    done: int
    last_error: str | None
    last_error_at: datetime | None


PHOTO_COLUMNS = (
    "id, sha256, doc, department, check_code, file_name, content_type, size_bytes, state, "
    "upload_id, attempts, added_at, done_at, last_error, last_error_at"
)


def _photo(row: tuple[object, ...]) -> PhotoEntry:
    added_at = _time(str(row[11]))
    assert added_at is not None
    return PhotoEntry(
        id=int(str(row[0])),
        photo_id=str(row[1]),
        doc_name=str(row[2]),
        department=str(row[3]),
        check=str(row[4]),
        file_name=str(row[5]),
        content_type=str(row[6]),
        size_bytes=int(str(row[7])),
        state=str(row[8]),
        upload_id=None if row[9] is None else str(row[9]),
        attempts=int(str(row[10])),
        added_at=added_at,
        done_at=_time(None if row[12] is None else str(row[12])),
        last_error=None if row[13] is None else str(row[13]),
        last_error_at=_time(None if row[14] is None else str(row[14])),
    )


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
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"the local store {self.path} cannot be opened ({error}); move it away to "
                "start afresh (unsynced changes in it would be lost)"
            ) from None

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StoreError(
                f"the local store {self.path} was written by a newer onewindow-field (schema "
                f"{version}, this one knows up to {SCHEMA_VERSION}); update onewindow-field"
            )
        for target in range(int(version) + 1, SCHEMA_VERSION + 1):
            script = MIGRATIONS[target]
            try:
                self._db.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;"
                )
            except sqlite3.DatabaseError:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @property
    def version(self) -> int:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside is kept together, or none is (nesting is not supported)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def photo_folder(self) -> Path:
        """Where the photos of this store are kept until uploaded: next to the file."""
        return self.path.with_name(self.path.name.removesuffix(".sqlite3") + ".photos")

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

    def _pending(self, doc_name: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM updates WHERE doc = ? AND pending = 1", (doc_name,)
        ).fetchone()
        return int(count)

    def _rewrite(self, doc_name: str, state: bytes) -> None:
        """The document's history becomes ``state``, one update (in the caller's transaction)."""
        self._db.execute("DELETE FROM updates WHERE doc = ?", (doc_name,))
        self.add_remote(doc_name, state)

    def replace(self, doc_name: str, state: bytes) -> int:
        """Forget the document's local history (pending changes too) and keep ``state``, the
        server's, instead. Returns how many pending local changes were dropped."""
        with self.transaction():
            dropped = self._pending(doc_name)
            self._rewrite(doc_name, state)
        return dropped

    def update_count(self, doc_name: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM updates WHERE doc = ?", (doc_name,)
        ).fetchone()
        return int(count)

    def compact(self, doc_name: str, state: bytes) -> bool:
        """Keep ``state`` (the whole local document) instead of its history, when nothing of
        it is pending; False (nothing changed) while the outbox holds some of it."""
        with self.transaction():
            if self._pending(doc_name):
                return False
            self._rewrite(doc_name, state)
        return True

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
        photos = self.photo_summary(doc_name)
        return DocStatus(
            doc_name,
            int(pending),
            _time(synced_at),
            error,
            _time(error_at),
            photos_pending=photos.pending,
            photos_refused=photos.refused,
            photo_error=photos.last_error,
        )

    # --- photos ----------------------------------------------------------------------------

    def add_photo(
        self,
        *,
        photo_id: str,
        doc_name: str,
        department: str,
        check: str,
        file_name: str,
        content_type: str,
        size_bytes: int,
        at: datetime,
    ) -> bool:
        """Queue a photo of a check. The same bytes on the same check again queue nothing
        (False), unless they were refused: then they are queued again."""
        self._ensure(doc_name)
        cursor = self._db.execute(
            "INSERT INTO photos (sha256, doc, department, check_code, file_name, "
            "content_type, size_bytes, state, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (doc, department, check_code, sha256) DO UPDATE SET "
            "state = excluded.state, upload_id = NULL, file_name = excluded.file_name "
            f"WHERE photos.state = '{REFUSED}'",
            (
                photo_id,
                doc_name,
                department,
                check,
                file_name,
                content_type,
                size_bytes,
                QUEUED,
                at.isoformat(),
            ),
        )
        return cursor.rowcount == 1

    def photos(
        self, doc_name: str | None = None, *, states: Iterable[str] | None = None
    ) -> list[PhotoEntry]:
        """The photo outbox (of one document), oldest first, in ``states`` (all when None)."""
        sql = f"SELECT {PHOTO_COLUMNS} FROM photos WHERE 1 = 1"
        params: list[object] = []
        if doc_name is not None:
            sql += " AND doc = ?"
            params.append(doc_name)
        if states is not None:
            wanted = list(states)
            sql += f" AND state IN ({', '.join('?' for _ in wanted)})"
            params += wanted
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [_photo(tuple(row)) for row in rows]

    def photo(self, entry_id: int) -> PhotoEntry | None:
        row = self._db.execute(
            f"SELECT {PHOTO_COLUMNS} FROM photos WHERE id = ?", (entry_id,)
        ).fetchone()
        return None if row is None else _photo(tuple(row))

    def photo_sent(self, entry_id: int, upload_id: str) -> None:
        """The bytes are at the ticket's URL for ``upload_id``; only a confirmation is due."""
        self._db.execute(
            "UPDATE photos SET state = ?, upload_id = ? WHERE id = ?", (SENT, upload_id, entry_id)
        )

    def photo_requeued(self, entry_id: int) -> None:
        """The bytes must be sent again, with a fresh ticket."""
        self._db.execute(
            "UPDATE photos SET state = ?, upload_id = NULL WHERE id = ? AND state != ?",
            (QUEUED, entry_id, DONE),
        )

    def photo_done(self, entry_id: int, at: datetime) -> None:
        self._db.execute(
            "UPDATE photos SET state = ?, done_at = ?, last_error = NULL, last_error_at = NULL "
            "WHERE id = ?",
            (DONE, at.isoformat(), entry_id),
        )

    def photo_refused(self, entry_id: int, error: str, at: datetime) -> None:
        """Refused for good: kept with the reason, never tried again unless requeued."""
        self._db.execute(
            "UPDATE photos SET state = ?, upload_id = NULL, last_error = ?, last_error_at = ? "
            "WHERE id = ?",
            (REFUSED, error, at.isoformat(), entry_id),
        )

    def photo_failed(self, entry_id: int, error: str, at: datetime) -> None:
        """An attempt failed for a reason that may pass (network, server): tried again later."""
        self._db.execute(
            "UPDATE photos SET attempts = attempts + 1, last_error = ?, last_error_at = ? "
            "WHERE id = ?",
            (error, at.isoformat(), entry_id),
        )

    def photo_retry(self, entry_id: int) -> None:
        """A refused photo is queued again (e.g. after the assignment was corrected)."""
        self._db.execute(
            "UPDATE photos SET state = ?, upload_id = NULL WHERE id = ? AND state = ?",
            (QUEUED, entry_id, REFUSED),
        )

    def forget_photo(self, entry_id: int) -> None:
        self._db.execute("DELETE FROM photos WHERE id = ?", (entry_id,))

    def photo_needed(self, photo_id: str) -> bool:
        """Whether some entry not yet done still needs the bytes of ``photo_id``."""
        row = self._db.execute(
            "SELECT 1 FROM photos WHERE sha256 = ? AND state != ? LIMIT 1", (photo_id, DONE)
        ).fetchone()
        return row is not None

    def photo_summary(self, doc_name: str | None = None) -> PhotoSummary:
        where, params = ("WHERE doc = ?", (doc_name,)) if doc_name is not None else ("", ())
        counts = dict(
            self._db.execute(
                f"SELECT state, COUNT(*) FROM photos {where} GROUP BY state", params
            ).fetchall()
        )
        latest = self._db.execute(
            f"SELECT last_error, last_error_at FROM photos {where} "
            f"{'AND' if where else 'WHERE'} state != ? AND last_error IS NOT NULL "
            "ORDER BY last_error_at DESC, id DESC LIMIT 1",
            (*params, DONE),
        ).fetchone()
        error, error_at = latest if latest is not None else (None, None)
        return PhotoSummary(
            pending=sum(int(counts.get(state, 0)) for state in PENDING_STATES),
            refused=int(counts.get(REFUSED, 0)),
            done=int(counts.get(DONE, 0)),
            last_error=error,
            last_error_at=_time(error_at),
        )

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
