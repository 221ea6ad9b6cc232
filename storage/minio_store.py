"""The object store on MinIO (or any S3 server) through the ``minio`` SDK.

The SDK is synchronous, so every call runs in a worker thread (``anyio.to_thread``) and the
event loop never waits on the network.

Build the client with ``region=`` (:func:`open_minio_store` does): presigning then needs no
network call. Without a region the SDK asks the server for the bucket's location the first
time it presigns, which blocks a thread on the network and fails when the server is down.

Limits of a plain presigned PUT: it signs the method, bucket, key and expiry, not the body,
so ``max_size`` cannot be enforced by the store (a POST policy could, but clients would need
multipart forms). The domain checks the size with :meth:`MinioObjectStore.stat` when the
client confirms the upload, and deletes what is too large. The Content-Type the client sends
is stored with the object.

Large files go in parts (S3 multipart upload): one presigned URL per part, and the server
joins them at confirmation from what ListParts reports.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from storage.objects import (
    ObjectInfo,
    ObjectStoreError,
    PartTicket,
    PutTicket,
    content_disposition,
    expiry_time,
    utc,
    validate_key,
    validate_prefix,
)

P = ParamSpec("P")
T = TypeVar("T")

MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"})
CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
    }
)
LIST_BATCH = 1000  # objects fetched per thread hop while listing (one S3 page)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3: every part but the last
MAX_PARTS = 10_000
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 120.0


class MinioObjectStore:
    """:class:`storage.objects.ObjectStore` on one bucket of a MinIO/S3 server."""

    kind = "minio"

    def __init__(self, client: Minio, bucket: str, *, presign_client: Minio | None = None) -> None:
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"invalid bucket name {bucket!r}: use 3-63 characters of a-z, 0-9, '.', '-', "
                "starting and ending with a letter or digit (check ONEWINDOW_MINIO_BUCKET)"
            )
        self._client = client
        # URLs for tablets and browsers are signed for the address they reach MinIO at, which
        # may differ from the server's own (a proxy, a container network).
        self._presigner = presign_client or client
        self._bucket = bucket
        base_url = getattr(client, "_base_url", None)  # the SDK keeps the endpoint here only
        self._endpoint = str(getattr(base_url, "host", "") or "the MinIO endpoint")

    @property
    def client(self) -> Minio:
        """The SDK client, for administration the interface does not cover."""
        return self._client

    @property
    def bucket(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"MinioObjectStore(endpoint={self._endpoint!r}, bucket={self._bucket!r})"

    # --- calling the SDK -------------------------------------------------------------------

    def _failure(self, action: str, error: BaseException) -> ObjectStoreError:
        """Turn what the SDK or urllib3 raised into a message an operator can act on."""
        where = f"MinIO at {self._endpoint} (bucket {self._bucket!r})"
        if isinstance(error, S3Error):
            detail = f"{error.code}: {error.message}"
            if error.code == "NoSuchBucket":
                return ObjectStoreError(
                    f"{where} could not {action}: the bucket does not exist; start the server "
                    "once (it creates the bucket) or check ONEWINDOW_MINIO_BUCKET"
                )
            if error.code in CREDENTIAL_CODES:
                return ObjectStoreError(
                    f"{where} refused to {action} ({detail}); check ONEWINDOW_MINIO_ACCESS_KEY, "
                    "ONEWINDOW_MINIO_SECRET_KEY and ONEWINDOW_MINIO_REGION, and that the key "
                    "may use this bucket"
                )
            return ObjectStoreError(f"{where} could not {action} ({detail})")
        if isinstance(error, urllib3.exceptions.SSLError):
            return ObjectStoreError(
                f"cannot {action}: TLS with MinIO at {self._endpoint} failed ({error}); check "
                "ONEWINDOW_MINIO_SECURE (false for a plain http endpoint) and the certificate"
            )
        if isinstance(error, urllib3.exceptions.HTTPError | OSError):
            reason = getattr(error, "reason", None) or error
            return ObjectStoreError(
                f"cannot {action}: MinIO at {self._endpoint} is unreachable ({reason}); check "
                "ONEWINDOW_MINIO_ENDPOINT (host:port, no scheme) and that the server is running"
            )
        if isinstance(error, InvalidResponseError):
            return ObjectStoreError(
                f"{where} could not {action}: the answer was not S3 ({error}); check that "
                "ONEWINDOW_MINIO_ENDPOINT names the S3 API port of MinIO, not its console"
            )
        if isinstance(error, ServerError):
            return ObjectStoreError(
                f"{where} could not {action}: server error {error.status_code}; see the MinIO "
                "server's log"
            )
        return ObjectStoreError(f"{where} could not {action}: {error}")

    async def _run(
        self, action: str, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Call the SDK in a worker thread and translate its failures."""
        try:
            return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._failure(action, error) from error

    # --- the interface ---------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Create the bucket when missing; ObjectStoreError when MinIO cannot be reached."""

        def ensure() -> None:
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket)
            except S3Error as error:
                # Another process created it between our check and our request: fine.
                if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

        await self._run("create or find the bucket", ensure)

    async def stat(self, key: str) -> ObjectInfo | None:
        validate_key(key)

        def stat() -> ObjectInfo | None:
            try:
                found = self._client.stat_object(self._bucket, key)
            except S3Error as error:
                if error.code in MISSING_CODES:
                    return None
                raise
            return ObjectInfo(key=key, size=found.size or 0, modified=_utc_time(found))

        return await self._run(f"stat {key}", stat)

    async def read(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the object, one chunk per thread hop; the response is always released."""
        validate_key(key)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        try:
            response = await self._run(f"read {key}", self._client.get_object, self._bucket, key)
        except ObjectStoreError as error:
            cause = error.__cause__
            if isinstance(cause, S3Error) and cause.code in MISSING_CODES:
                raise ObjectStoreError(
                    f"object {key} is missing from bucket {self._bucket!r} at {self._endpoint}"
                ) from cause
            raise
        try:
            chunks: Iterator[bytes] = response.stream(chunk_size)
            while True:
                chunk = await self._run(f"read {key}", next, chunks, b"")
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        validate_key(key)
        await self._run(
            f"write {key}",
            self._client.put_object,
            self._bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    async def promote(self, source: str, target: str) -> None:
        """Server-side copy then remove; when the target exists, only remove the source."""
        validate_key(source)
        validate_key(target)
        if source == target:
            if await self.stat(source) is None:
                raise ObjectStoreError(f"cannot promote {source}: it is missing")
            return
        if await self.stat(target) is None:
            try:
                await self._run(
                    f"copy {source} to {target}",
                    self._client.copy_object,
                    self._bucket,
                    target,
                    CopySource(self._bucket, source),
                )
            except ObjectStoreError as error:
                cause = error.__cause__
                if isinstance(cause, S3Error) and cause.code in MISSING_CODES:
                    # A retry after a copy that succeeded may find the source gone already.
                    if await self.stat(target) is not None:
                        return
                    raise ObjectStoreError(
                        f"cannot promote {source} to {target}: the source is missing from "
                        f"bucket {self._bucket!r}"
                    ) from cause
                raise
        await self.delete(source)

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._run(f"delete {key}", self._client.remove_object, self._bucket, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix`` in key order, a page per thread hop."""
        validate_prefix(prefix)
        found: Iterator[Any] = iter(())

        def start() -> None:
            nonlocal found
            found = iter(self._client.list_objects(self._bucket, prefix=prefix, recursive=True))

        def batch() -> list[ObjectInfo]:
            page: list[ObjectInfo] = []
            for item in found:
                if item.is_dir:
                    continue
                page.append(
                    ObjectInfo(key=item.object_name, size=item.size or 0, modified=_utc_time(item))
                )
                if len(page) >= LIST_BATCH:
                    break
            return page

        await self._run(f"list {prefix or 'all objects'}", start)
        while page := await self._run(f"list {prefix or 'all objects'}", batch):
            for info in page:
                yield info

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
        """A presigned PUT, or presigned part uploads when ``max_size`` is above ``part_size``;
        ``max_size`` is checked by the domain at confirm (see module doc)."""
        validate_key(key)
        if max_size < 1:
            raise ValueError("max_size must be positive")
        expires_at = expiry_time(now, expires)
        if part_size is not None and max_size > part_size:
            return await self._parts_ticket(
                key,
                content_type=content_type,
                size=max_size,
                part_size=part_size,
                now=now,
                expires=expires,
            )
        url = await self._run(
            f"presign an upload of {key}",
            self._presigner.get_presigned_url,
            "PUT",
            self._bucket,
            key,
            expires=expires,
            request_date=utc(now),
        )
        return PutTicket(
            url=url, method="PUT", headers={"Content-Type": content_type}, expires_at=expires_at
        )

    async def _parts_ticket(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        part_size: int,
        now: datetime,
        expires: timedelta,
    ) -> PutTicket:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        count = -(-size // part_size)
        if count > MAX_PARTS:
            raise ValueError(f"{count} parts of {part_size} bytes; S3 takes at most {MAX_PARTS}")
        multipart_id = await self._run(
            f"start an upload in parts of {key}",
            self._client._create_multipart_upload,
            self._bucket,
            key,
            {"Content-Type": content_type},
        )
        parts = []
        for number in range(1, count + 1):
            url = await self._run(
                f"presign part {number} of {key}",
                self._presigner.get_presigned_url,
                "PUT",
                self._bucket,
                key,
                expires=expires,
                request_date=utc(now),
                extra_query_params={"partNumber": str(number), "uploadId": multipart_id},
            )
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            parts.append(PartTicket(number=number, url=url, offset=offset, size=length))
        return PutTicket(
            url="",
            method="PUT",
            headers={},
            expires_at=expiry_time(now, expires),
            parts=tuple(parts),
            multipart_id=multipart_id,
        )

    async def complete_parts(
        self, key: str, *, multipart_id: str, part_count: int
    ) -> tuple[int, ...]:
        """Join the arrived parts when all ``part_count`` are there (ListParts, then
        CompleteMultipartUpload with the ETags S3 reports: the client's word is not needed)."""
        validate_key(key)

        def complete() -> tuple[int, ...]:
            arrived: dict[int, Part] = {}
            marker: str | None = None
            while True:
                listed = self._client._list_parts(
                    self._bucket, key, multipart_id, max_parts=1000, part_number_marker=marker
                )
                arrived.update({p.part_number: p for p in listed.parts})
                if not listed.is_truncated:
                    break
                marker = listed.next_part_number_marker
            missing = tuple(n for n in range(1, part_count + 1) if n not in arrived)
            if missing:
                return missing
            ordered = [Part(n, arrived[n].etag) for n in range(1, part_count + 1)]
            self._client._complete_multipart_upload(self._bucket, key, multipart_id, ordered)
            return ()

        return await self._run(f"join the parts of {key}", complete)

    async def abort_parts(self, key: str, *, multipart_id: str) -> None:
        validate_key(key)

        def abort() -> None:
            try:
                self._client._abort_multipart_upload(self._bucket, key, multipart_id)
            except S3Error as error:
                if error.code != "NoSuchUpload":
                    raise

        await self._run(f"drop the parts of {key}", abort)

    async def get_url(
        self, key: str, *, now: datetime, expires: timedelta, file_name: str, content_type: str
    ) -> str:
        """A presigned GET whose answer carries the content type and the file name."""
        validate_key(key)
        expiry_time(now, expires)
        return await self._run(
            f"presign a download of {key}",
            self._presigner.presigned_get_object,
            self._bucket,
            key,
            expires=expires,
            response_headers={
                "response-content-type": content_type,
                "response-content-disposition": content_disposition(file_name),
            },
            request_date=utc(now),
        )


def _utc_time(item: Any) -> datetime:
    """An SDK object's last-modified time, timezone-aware UTC."""
    modified: datetime | None = item.last_modified
    if modified is None:
        return datetime.now(UTC)
    if modified.tzinfo is None:
        return modified.replace(tzinfo=UTC)
    return modified.astimezone(UTC)


def open_minio_store(
    *,
    endpoint: str,
    access_key: str,
    secret_key: str,
    bucket: str,
    region: str,
    secure: bool,
    public_url: str = "",
) -> MinioObjectStore:
    """A store on ``bucket`` at ``endpoint`` (``host:port``, no scheme).

    ``public_url`` (``https://files.example.cn``) is where clients reach MinIO when that is not
    ``endpoint``: presigned URLs are signed for it (presigning makes no network call).

    ``region`` is required so that presigning makes no network call. The HTTP pool retries a
    refused connection twice and a failed request three times (the SDK's default retries five
    times with back-off, which makes a wrong endpoint take many seconds to report).
    """
    if "://" in endpoint:
        raise ValueError(
            f"MinIO endpoint {endpoint!r} must be host:port without a scheme; "
            "use secure=True/False (ONEWINDOW_MINIO_SECURE) to choose https or http"
        )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=3, connect=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )
    client = Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        region=region,
        http_client=http,
    )
    presigner = None
    if public_url:
        public = urlsplit(public_url)
        if public.scheme not in ("http", "https") or not public.netloc or public.path.strip("/"):
            raise ValueError(
                f"public MinIO URL {public_url!r} must be http(s)://host[:port] without a path "
                "(check ONEWINDOW_MINIO_PUBLIC_URL)"
            )
        presigner = Minio(
            public.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=public.scheme == "https",
            region=region,
        )
    return MinioObjectStore(client, bucket, presign_client=presigner)
