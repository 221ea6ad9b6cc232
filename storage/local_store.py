"""The object store in a folder: the embedded default, with no server to run.

Objects live at ``root/<key>``. Every write goes to a temporary file in ``root/.tmp``, is
fsynced and then renamed into place (``os.replace``), so a reader sees an object whole or not
at all, and a crash leaves at most a stray temporary file.

Tickets are the server's own URLs (``server/objects_endpoint.py`` answers them):
``{url_prefix}/objects/upload/{token}`` to PUT the bytes and ``{url_prefix}/objects/{token}``
to GET them. A token is ``<payload>.<signature>``, both base64url without padding: the payload
is compact JSON with the use (``put``/``get``), the key, the expiry in unix seconds, the
content type, and the maximum size (uploads) or the file name (downloads); the signature is
HMAC-SHA256 of the payload with the store's secret. Nothing is kept on the server per ticket,
so tickets survive a restart as long as the secret does (:func:`load_or_create_secret`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO

import anyio.to_thread

from storage.objects import (
    ObjectInfo,
    ObjectStoreError,
    PutTicket,
    TicketError,
    expiry_time,
    utc,
    validate_key,
    validate_prefix,
)

SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
TMP_DIR = ".tmp"
MAX_TOKEN_CHARS = 4096
LIST_BATCH = 1000  # objects found per thread hop while listing
RECEIVE_BUFFER = 1 << 20  # bytes of an upload gathered before one write in a thread
_SIGNATURE_CONTEXT = b"onewindow-objects-v1."
PUT, GET = "put", "get"


@dataclass(frozen=True)
class UploadGrant:
    """What a valid upload token allows."""

    key: str
    max_size: int
    content_type: str
    expires_at: datetime


@dataclass(frozen=True)
class LocalDownload:
    """A file to send for a valid download token."""

    path: Path
    size: int
    content_type: str
    file_name: str


class LocalObjectStore:
    """:class:`storage.objects.ObjectStore` in a folder, with signed tokens for transfers."""

    kind = "local"

    def __init__(self, root: Path, *, secret: bytes, url_prefix: str = "") -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the object token secret must have at least {MIN_SECRET_BYTES} bytes "
                "(use load_or_create_secret)"
            )
        self._root = Path(root)
        self._tmp = self._root / TMP_DIR
        self._secret = secret
        self._url_prefix = url_prefix.rstrip("/")

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore(root={str(self._root)!r})"

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    # --- files -----------------------------------------------------------------------------

    def _failure(self, action: str, error: OSError) -> ObjectStoreError:
        return ObjectStoreError(
            f"cannot {action} in the object folder {self._root}: {error}; check "
            "ONEWINDOW_OBJECT_DIR and that the folder is writable by the server and has space"
        )

    def _new_temp(self) -> tuple[BinaryIO, Path]:
        """An open temporary file in ``root/.tmp`` (created when missing)."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self._tmp, prefix="object-")
        return os.fdopen(handle, "wb"), Path(name)

    def _settle(self, temp: Path, key: str) -> None:
        """Rename a finished temporary file to the key's path and make the rename durable."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_directory(target.parent)

    def _info(self, key: str) -> ObjectInfo | None:
        try:
            found = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISREG(found.st_mode):
            return None
        return ObjectInfo(
            key=key, size=found.st_size, modified=datetime.fromtimestamp(found.st_mtime, UTC)
        )

    # --- the interface ---------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Create the folder and its temporary folder when missing."""
        try:
            await anyio.to_thread.run_sync(
                functools.partial(self._tmp.mkdir, parents=True, exist_ok=True)
            )
        except OSError as error:
            raise self._failure("create the folder", error) from error

    async def stat(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        try:
            return await anyio.to_thread.run_sync(self._info, key)
        except OSError as error:
            raise self._failure(f"stat {key}", error) from error

    async def read(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the file in chunks, reading each in a thread; the file is always closed."""
        path = self._path(key)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        try:
            file = await anyio.to_thread.run_sync(_open_for_reading, path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise ObjectStoreError(f"object {key} is missing from {self._root}") from error
        except OSError as error:
            raise self._failure(f"read {key}", error) from error
        try:
            while chunk := await anyio.to_thread.run_sync(file.read, chunk_size):
                yield chunk
        except OSError as error:
            raise self._failure(f"read {key}", error) from error
        finally:
            file.close()

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        """Write atomically; the content type is not kept (download tokens carry it)."""
        validate_key(key)

        def write() -> None:
            file, temp = self._new_temp()
            try:
                with file:
                    _finish(file, data)
                self._settle(temp, key)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise

        try:
            await anyio.to_thread.run_sync(write)
        except OSError as error:
            raise self._failure(f"write {key}", error) from error

    async def promote(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``, or drop ``source`` when ``target`` exists."""
        source_path, target_path = self._path(source), self._path(target)

        def promote() -> None:
            if source_path == target_path or self._info(target) is not None:
                if source_path != target_path:
                    source_path.unlink(missing_ok=True)
                elif self._info(source) is None:
                    raise FileNotFoundError(source)
                return
            target_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source_path, target_path)
            _fsync_directory(target_path.parent)

        try:
            await anyio.to_thread.run_sync(promote)
        except FileNotFoundError as error:
            raise ObjectStoreError(
                f"cannot promote {source} to {target}: the source is missing from {self._root}"
            ) from error
        except OSError as error:
            raise self._failure(f"promote {source} to {target}", error) from error

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await anyio.to_thread.run_sync(functools.partial(path.unlink, missing_ok=True))
        except OSError as error:
            raise self._failure(f"delete {key}", error) from error

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walk the folder in key order (as S3 lists), a batch per thread hop."""
        validate_prefix(prefix)
        walk = self._walk(self._root, "", prefix)

        def batch() -> list[ObjectInfo]:
            page: list[ObjectInfo] = []
            for info in walk:
                page.append(info)
                if len(page) >= LIST_BATCH:
                    break
            return page

        try:
            while page := await anyio.to_thread.run_sync(batch):
                for info in page:
                    yield info
        except OSError as error:
            raise self._failure(f"list {prefix or 'all objects'}", error) from error
        finally:
            walk.close()

    def _walk(self, folder: Path, base: str, prefix: str) -> Generator[ObjectInfo, None, None]:
        """Objects under ``folder`` (whose keys start with ``base``) that match ``prefix``.

        Entries are visited sorted by name, a folder as ``name/``: that is exactly the order of
        the full keys, so the walk needs one folder's names in memory at a time.
        """
        try:
            with os.scandir(folder) as scan:
                entries = [
                    (entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""), entry)
                    for entry in scan
                    if not entry.name.startswith(".")
                ]
        except (FileNotFoundError, NotADirectoryError):
            return
        entries.sort(key=lambda pair: pair[0])
        for name, entry in entries:
            key = base + name
            if name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
                continue
            if not key.startswith(prefix) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                found = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while we walk
                continue
            yield ObjectInfo(
                key=key, size=found.st_size, modified=datetime.fromtimestamp(found.st_mtime, UTC)
            )

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
        """The server's own upload URL with a signed token. Always one streamed PUT, whatever
        the size (``part_size`` is ignored): the body goes to disk as it arrives."""
        validate_key(key)
        if max_size < 1:
            raise ValueError("max_size must be positive")
        expires_at = expiry_time(now, expires)
        token = self._sign(
            {
                "use": PUT,
                "key": key,
                "exp": int(expires_at.timestamp()),
                "max": max_size,
                "type": content_type,
            }
        )
        return PutTicket(
            url=f"{self._url_prefix}/objects/upload/{token}",
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=expires_at,
        )

    async def complete_parts(
        self, key: str, *, multipart_id: str, part_count: int
    ) -> tuple[int, ...]:
        """Never needed: this store gives no tickets in parts."""
        raise ObjectStoreError(
            f"the local store takes whole files; upload {multipart_id!r} in parts is unknown"
        )

    async def abort_parts(self, key: str, *, multipart_id: str) -> None:
        """Nothing to drop: this store gives no tickets in parts."""

    async def get_url(
        self, key: str, *, now: datetime, expires: timedelta, file_name: str, content_type: str
    ) -> str:
        """The server's own download URL with a signed token."""
        validate_key(key)
        expires_at = expiry_time(now, expires)
        token = self._sign(
            {
                "use": GET,
                "key": key,
                "exp": int(expires_at.timestamp()),
                "type": content_type,
                "name": file_name,
            }
        )
        return f"{self._url_prefix}/objects/{token}"

    # --- the endpoints' side ---------------------------------------------------------------

    def check_upload(self, token: str, *, now: datetime) -> UploadGrant:
        """What ``token`` allows to upload, or TicketError ("invalid" / "expired")."""
        claims = self._verify(token, use=PUT, now=now)
        return UploadGrant(
            key=claims["key"],
            max_size=claims["max"],
            content_type=claims["type"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )

    async def receive(self, token: str, body: AsyncIterator[bytes], *, now: datetime) -> ObjectInfo:
        """Store an upload's body at the token's key, streaming it through a temporary file.

        At most :data:`RECEIVE_BUFFER` bytes are held in memory. As soon as more than the
        ticket's maximum has arrived the upload stops with TicketError("too_large") and the
        temporary file is removed.
        """
        grant = self.check_upload(token, now=now)
        try:
            file, temp = await anyio.to_thread.run_sync(self._new_temp)
        except OSError as error:
            raise self._failure("start an upload", error) from error
        try:
            size = 0
            buffer = bytearray()
            with file:
                async for chunk in body:
                    size += len(chunk)
                    if size > grant.max_size:
                        raise TicketError(
                            "too_large",
                            f"the upload is larger than the {grant.max_size} bytes this ticket "
                            "allows; ask for a new ticket with the file's real size",
                        )
                    buffer += chunk
                    if len(buffer) >= RECEIVE_BUFFER:
                        await anyio.to_thread.run_sync(file.write, bytes(buffer))
                        buffer.clear()
                await anyio.to_thread.run_sync(_finish, file, bytes(buffer))
            await anyio.to_thread.run_sync(self._settle, temp, grant.key)
        except OSError as error:
            await anyio.to_thread.run_sync(_remove, temp)
            raise self._failure(f"store an upload of {grant.key}", error) from error
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_remove, temp)
            raise
        info = await self.stat(grant.key)
        if info is None:  # deleted between our rename and now
            raise ObjectStoreError(f"the upload of {grant.key} vanished right after it was stored")
        return info

    def open_download(self, token: str, *, now: datetime) -> LocalDownload:
        """The file a download token names, or TicketError / ObjectStoreError (missing)."""
        claims = self._verify(token, use=GET, now=now)
        key: str = claims["key"]
        info = self._info(key)
        if info is None:
            raise ObjectStoreError(f"object {key} is missing from {self._root}")
        return LocalDownload(
            path=self._path(key),
            size=info.size,
            content_type=claims["type"],
            file_name=claims["name"],
        )

    # --- tokens ----------------------------------------------------------------------------

    def _signature(self, payload: bytes) -> bytes:
        digest = hmac.new(self._secret, _SIGNATURE_CONTEXT + payload, hashlib.sha256).digest()
        return _b64encode(digest).encode("ascii")

    def _sign(self, claims: dict[str, Any]) -> str:
        payload = _b64encode(
            json.dumps(claims, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        ).encode("ascii")
        return f"{payload.decode('ascii')}.{self._signature(payload).decode('ascii')}"

    def _verify(self, token: str, *, use: str, now: datetime) -> dict[str, Any]:
        invalid = TicketError(
            "invalid",
            "this link is not valid (damaged, or made by another server); ask for a new one",
        )
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise invalid
        payload, _, signature = token.partition(".")
        try:
            payload_bytes = payload.encode("ascii")
            signature_bytes = signature.encode("ascii")
        except UnicodeEncodeError:
            raise invalid from None
        if not hmac.compare_digest(self._signature(payload_bytes), signature_bytes):
            raise invalid
        try:
            claims = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error):
            raise invalid from None
        if not _claims_ok(claims, use):
            raise invalid
        if utc(now).timestamp() >= claims["exp"]:
            raise TicketError("expired", "this link has expired; ask for a new one")
        return dict(claims)


def _claims_ok(claims: object, use: str) -> bool:
    if not isinstance(claims, dict) or claims.get("use") != use:
        return False
    fields: dict[str, type] = {"key": str, "exp": int, "type": str}
    fields.update({"max": int} if use == PUT else {"name": str})
    if not all(isinstance(claims.get(name), kind) for name, kind in fields.items()):
        return False
    try:
        validate_key(claims["key"])
    except ValueError:
        return False
    return True


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _open_for_reading(path: Path) -> BinaryIO:
    file = path.open("rb")
    if not S_ISREG(os.fstat(file.fileno()).st_mode):
        file.close()
        raise IsADirectoryError(str(path))
    return file


def _finish(file: BinaryIO, rest: bytes) -> None:
    """Write the last bytes and make the file durable before it is renamed into place."""
    file.write(rest)
    file.flush()
    os.fsync(file.fileno())


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system can)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte token secret kept at ``path``, created (mode 0600) on first use.

    Creation links a finished temporary file into place, so two processes starting at once
    agree on one secret (the second finds the first's file) and nobody reads half a file.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
        temp = Path(name)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(secrets.token_bytes(SECRET_BYTES))
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temp, path)  # fails when another process was first: keep theirs
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links
                if not path.exists():
                    os.replace(temp, path)
            _fsync_directory(path.parent)
        finally:
            temp.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise ValueError(
            f"the object token secret {path} has {len(secret)} bytes, not {SECRET_BYTES}; "
            "delete it to make a new one (links already handed out stop working)"
        )
    return secret
