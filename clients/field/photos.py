"""Photos on the tablet: sniffed, hashed and kept until the server confirms them.

A photo's id is the lowercase hex SHA-256 of its bytes (the server stores photos by content).
:class:`PhotoFolder` keeps one copy per content in a folder next to the local store, named by
the hash: a file is read once, in chunks, hashed and written to a temporary file that is
fsynced and renamed into place, so a copy is whole or absent and the same bytes twice make one
copy. The type comes from the bytes (JPEG, PNG, WebP), never from the file name.

The GraphQL documents and the error codes of the upload flow live here too; the flow itself is
``FieldClient.upload_photos`` (``session``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
MAX_FILE_NAME = 255
STALE_SECONDS = 3600  # a temporary copy this old was left by a crash
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')

# Refusals of requestUpload/confirmUpload that no retry can change: reported, never retried.
PERMANENT = frozenset(
    {"TYPE_NOT_ALLOWED", "TOO_LARGE", "INVALID_INPUT", "NOT_FOUND", "FORBIDDEN", "WRONG_DEPARTMENT"}
)
# confirmUpload answers after which the bytes must be sent again, with a fresh ticket.
SEND_AGAIN = frozenset({"UPLOAD_EXPIRED", "UPLOAD_NOT_RECEIVED", "SIZE_MISMATCH", "HASH_MISMATCH"})
# The login is not accepted: nothing is retried until the person logs in again.
LOGIN_ERRORS = frozenset({"UNAUTHENTICATED", "TOKEN_EXPIRED"})

REQUEST_UPLOAD = """
mutation RequestUpload($input: RequestUploadInput!) {
  requestUpload(input: $input) {
    upload { id status }
    ticket { url method headers { name value } expiresAt parts { number url offset size } }
    errors { code message field }
  }
}
"""

CONFIRM_UPLOAD = """
mutation ConfirmUpload($id: ID!) {
  confirmUpload(uploadId: $id) {
    upload { id status photo { id status url } }
    errors { code message field }
  }
}
"""


class NotAPhoto(ValueError):
    """The bytes are not a JPEG, PNG or WebP image (or there are none)."""


def sniff(head: bytes) -> str | None:
    """The photo type of bytes starting with ``head``, or None when it is none of ours."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _not_a_photo(what: str, head: bytes) -> NotAPhoto:
    if not head:
        return NotAPhoto(f"{what} is empty; take the photo again")
    return NotAPhoto(
        f"{what} is not a photo: its bytes are not JPEG, PNG or WebP (the name does not "
        "decide, a renamed file is still what its bytes are); attach the camera's JPEG, PNG "
        "or WebP file"
    )


def inspection_global_id(inspection_id: int) -> str:
    """The relay id GraphQL gives an inspection: base64 of ``Inspection:<id>``."""
    return base64.b64encode(f"Inspection:{inspection_id}".encode()).decode("ascii")


def plain_file_name(given: str, photo_id: str, content_type: str) -> str:
    """A file name the server accepts: the last part of a path, without control or reserved
    characters, a leading dot or '..', at most 255 characters; ``photo-<id>.<ext>`` when
    nothing is left."""
    last = given.replace("\\", "/").rsplit("/", 1)[-1]
    name = _BAD_NAME_CHARS.sub("_", last.strip()).replace("..", "_").lstrip(". ")
    if len(name) > MAX_FILE_NAME:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and 0 < len(ext) <= 10 else ""
        # Cut before the extension, and never end the cut on a dot (no '..' may appear).
        name = (stem if keep else name)[: MAX_FILE_NAME - len(keep) - 1].rstrip(". ") + (
            f".{keep}" if keep else ""
        )
    return name or f"photo-{photo_id[:12]}{PHOTO_TYPES.get(content_type, '')}"


@dataclass(frozen=True)
class Copied:
    """A photo kept in the folder."""

    photo_id: str  # the SHA-256 of its bytes
    size_bytes: int
    content_type: str
    path: Path


class PhotoFolder:
    """One file per photo content, named by its SHA-256, in ``root`` (made when first used)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, photo_id: str) -> Path:
        return self.root / photo_id

    def has(self, photo_id: str) -> bool:
        return self.path(photo_id).is_file()

    def add_file(self, source: Path) -> Copied:
        """Copy ``source`` in (streamed: read once, hashed while written)."""
        try:
            handle = source.open("rb")
        except OSError as error:
            raise FileNotFoundError(
                f"cannot read the photo {source} ({error.strerror or error}); check the path"
            ) from None
        with handle:
            return self._add(iter(lambda: handle.read(CHUNK), b""), str(source))

    def add_bytes(self, data: bytes) -> Copied:
        return self._add([bytes(data)] if data else [], "the photo")

    def delete(self, photo_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(photo_id).unlink()

    def digest(self, photo_id: str) -> str | None:
        """The SHA-256 of the kept copy now (None when it is gone): is it still whole?"""
        digest = hashlib.sha256()
        try:
            with self.path(photo_id).open("rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def leftovers(self) -> list[Path]:
        """Temporary files of copies that never finished (a crash while copying)."""
        return sorted(self.root.glob(".incoming-*")) if self.root.is_dir() else []

    def _drop_leftovers(self) -> None:
        """Temporary files a crash left behind (old enough not to be another copy running)."""
        for stale in self.leftovers():
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                    stale.unlink()

    def _add(self, source: Iterable[bytes], what: str) -> Copied:
        chunks = iter(source)
        first = next(chunks, b"")
        content_type = sniff(first[:16])
        if content_type is None:
            raise _not_a_photo(what, first)
        self.root.mkdir(parents=True, exist_ok=True)
        self._drop_leftovers()
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chain(first, chunks):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            photo_id = digest.hexdigest()
            target = self.path(photo_id)
            # Replaced even when a copy is there: a damaged one must not outlive a good one.
            os.replace(temporary, target)
            _sync_folder(self.root)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return Copied(photo_id, size, content_type, target)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
