"""The object store: where photos and material files are kept, behind one small interface.

Two stores implement :class:`ObjectStore`: :class:`storage.minio_store.MinioObjectStore` (MinIO
or any S3 server, for production) and :class:`storage.local_store.LocalObjectStore` (a folder,
the embedded default). The domain only sees this module, so the two must behave alike; the
contract tests in ``tests/test_object_store.py`` run against both.

Why the shape:

- Bytes never pass through the application on the way in: a client asks for a
  :class:`PutTicket` and sends the file straight to the store (a presigned URL for MinIO, the
  server's own upload URL for the local store). Downloads work the same way with
  :meth:`ObjectStore.get_url`.
- Keys are content-addressed where it matters (the same bytes, the same key), so
  :meth:`ObjectStore.promote` may find its target present already and then only drops the
  source, and retries are harmless.
- Keys are a narrow alphabet (:func:`validate_key`) so that a key is a safe relative path on
  every filesystem and needs no escaping in a URL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import quote

MAX_KEY_LENGTH = 512
MIN_EXPIRY = timedelta(seconds=1)
# S3 refuses presigned URLs valid for longer than seven days; the local store keeps the same
# limit so that code tested against one store works against the other.
MAX_EXPIRY = timedelta(days=7)

_SEGMENT = r"[a-z0-9_\-][a-z0-9._\-]*"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX = re.compile(r"[a-z0-9._/\-]*")
_RFC5987_SAFE = "!#$&+^`|"  # attr-char of RFC 5987 besides letters, digits and "-._~"


class ObjectStoreError(Exception):
    """The store failed: unreachable, refused our credentials, or lost an object.

    The message says what failed and what to check, because it ends up in a log read by
    whoever runs the server.
    """


class TicketError(Exception):
    """A local upload or download token was refused.

    ``reason`` is ``"invalid"`` (forged, damaged or for another use), ``"expired"`` or
    ``"too_large"`` (the body was longer than the ticket allows); the endpoint maps it to an
    HTTP status and the message tells the client what to do.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware UTC


@dataclass(frozen=True)
class PartTicket:
    """One part of a file sent in parts: PUT bytes ``offset`` to ``offset + size`` to ``url``."""

    number: int
    url: str
    offset: int
    size: int


@dataclass(frozen=True)
class PutTicket:
    """Where and how a client sends the bytes of one object.

    A large file on an S3 store goes in parts (``parts`` not empty, ``url`` empty): each part
    to its own URL, then :meth:`ObjectStore.complete_parts` joins them under the key.
    """

    url: str  # where to PUT the bytes ("" when sent in parts)
    method: str  # always "PUT"
    headers: dict[str, str]  # headers the client must send (Content-Type)
    expires_at: datetime
    parts: tuple[PartTicket, ...] = ()
    multipart_id: str = ""  # the store's id of the upload in parts


class ObjectStore(Protocol):
    """What the domain needs from a place that keeps bytes.

    Every method refuses a bad key with ``ValueError`` (see :func:`validate_key`) and reports a
    failing store with :class:`ObjectStoreError`.
    """

    kind: str  # "minio" | "local"

    async def ensure_ready(self) -> None:
        """Create the bucket or folder when missing; ObjectStoreError when unreachable."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """The object's size and time, or None when there is no such object."""
        ...

    def read(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the object's bytes in chunks of at most ``chunk_size``.

        ObjectStoreError (at the first iteration) when the object is missing. A caller that
        stops early should close the iterator (``contextlib.aclosing``) to free the connection.
        """
        ...

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store a small object (a thumbnail) made by the server itself."""
        ...

    async def promote(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``; when ``target`` exists already, just drop ``source``.

        Content addressing makes the shortcut safe: the same key holds the same bytes.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order, streamed."""
        ...

    async def put_ticket(
        self,
        key: str,
        *,
        content_type: str,
        max_size: int,
        now: datetime,
        expires: timedelta,
        part_size: int | None = None,
    ) -> PutTicket:
        """A short-lived ticket for a client to upload ``key`` itself.

        With ``part_size`` a store that takes files in parts (S3) answers a ticket in parts of
        that size when ``max_size`` is larger; a store that streams whole files (the local
        folder) ignores it."""
        ...

    async def complete_parts(
        self, key: str, *, multipart_id: str, part_count: int
    ) -> tuple[int, ...]:
        """Join the parts of an upload in parts under ``key``; the part numbers still missing
        (nothing is joined then), or ``()`` when done."""
        ...

    async def abort_parts(self, key: str, *, multipart_id: str) -> None:
        """Drop an upload in parts and whatever parts arrived; unknown ids are not an error."""
        ...

    async def get_url(
        self, key: str, *, now: datetime, expires: timedelta, file_name: str, content_type: str
    ) -> str:
        """A short-lived download URL that answers with ``content_type`` and ``file_name``."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` when it is a valid object key, else raise ``ValueError``.

    Lowercase ASCII letters, digits and ``/ . _ -``; segments separated by single slashes, none
    empty, none ``.`` or ``..`` and none starting with a dot (the local store keeps its own
    files under dot-names); no leading slash; at most 512 characters.
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a string, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise ValueError(
            f"invalid object key {key[:80]!r}: use 1-{MAX_KEY_LENGTH} characters of a-z, 0-9, "
            "'/', '.', '_', '-', with no leading '/', no empty segment and no segment "
            "starting with '.'"
        )
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` when it may start a key (``""`` lists everything), else ValueError."""
    if not isinstance(prefix, str):
        raise ValueError(f"object key prefix must be a string, got {type(prefix).__name__}")
    if (
        len(prefix) > MAX_KEY_LENGTH
        or not _PREFIX.fullmatch(prefix)
        or prefix.startswith("/")
        or "//" in prefix
    ):
        raise ValueError(
            f"invalid object key prefix {prefix[:80]!r}: use a-z, 0-9, '/', '.', '_', '-', "
            "with no leading '/' and no empty segment"
        )
    return prefix


def check_expiry(expires: timedelta) -> timedelta:
    """Refuse lifetimes S3 would refuse (under a second or over seven days)."""
    if not MIN_EXPIRY <= expires <= MAX_EXPIRY:
        raise ValueError(f"expires must be between 1 second and 7 days, got {expires}")
    return expires


def utc(now: datetime) -> datetime:
    """``now`` in UTC; a naive datetime is refused because its zone would be a guess."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (pass the injected clock's time)")
    return now.astimezone(UTC)


def expiry_time(now: datetime, expires: timedelta) -> datetime:
    """When a ticket issued at ``now`` expires, to the whole second (as S3 counts it)."""
    return utc(now).replace(microsecond=0) + check_expiry(expires)


def content_disposition(file_name: str, *, disposition: str = "inline") -> str:
    """A Content-Disposition value that carries any file name (RFC 6266 / RFC 5987).

    Browsers that know ``filename*`` get the exact (possibly Chinese) name; the quoted
    ``filename`` is an ASCII fallback with everything else replaced by ``_``.
    """
    name = file_name.replace("\r", " ").replace("\n", " ").strip() or "file"
    fallback = re.sub(r'[^\x20-\x7e]+|["\\]', "_", name)
    if not fallback.strip("_. "):
        _, dot, extension = fallback.rpartition(".")
        fallback = f"file.{extension}" if dot and extension.strip("_ ") else "file"
    encoded = quote(name, safe=_RFC5987_SAFE)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
