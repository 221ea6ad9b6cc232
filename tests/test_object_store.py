"""The object store contract, run against the local folder, MinIO-on-moto and (opt-in) MinIO.

The local store's HTTP face (``server/objects_endpoint.py``) is served through
``httpx.ASGITransport`` with the lifespan state a server would give each request.
"""

from __future__ import annotations

import os
import stat
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import anyio.to_thread
import httpx
import pytest
import urllib3
from minio.error import S3Error
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from server.objects_endpoint import object_routes
from storage.local_store import LocalObjectStore, load_or_create_secret
from storage.minio_store import MinioObjectStore, open_minio_store
from storage.objects import (
    ObjectStore,
    ObjectStoreError,
    content_disposition,
    validate_key,
)
from tests.object_support import fresh_bucket, make_minio_store

SECRET = b"0123456789abcdef0123456789abcdef"
BASE_URL = "http://testserver"
CHINESE_NAME = "现场检查照片 第1张.jpg"
BAD_KEYS = ["../x", "/x", "A", "a//b"]
MINUTE = timedelta(minutes=1)


def now() -> datetime:
    return datetime.now(UTC)


def local_store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root, secret=SECRET, url_prefix=BASE_URL)


@pytest.fixture(params=["local", "moto", "minio"])
def unready_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A store whose bucket or folder does not exist yet."""
    if request.param == "local":
        return local_store(tmp_path / "objects")
    if request.param == "moto":
        return make_minio_store(request.getfixturevalue("moto_s3"), fresh_bucket())
    store: ObjectStore = request.getfixturevalue("real_minio")
    return store


@pytest.fixture
async def store(unready_store: ObjectStore) -> ObjectStore:
    await unready_store.ensure_ready()
    return unready_store


@asynccontextmanager
async def serving(
    store: ObjectStore, *, clock: Callable[[], datetime] = now
) -> AsyncIterator[ASGIApp]:
    """The object routes with their lifespan running, as uvicorn would serve them."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"object_store": store}

    app = Starlette(routes=object_routes(clock=clock), lifespan=lifespan)
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope = {**scope, "state": dict(state or {})}
            await app(scope, receive, send)

        yield asgi


@asynccontextmanager
async def http_for(store: ObjectStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client that reaches the store's ticket URLs."""
    if isinstance(store, LocalObjectStore):
        async with (
            serving(store) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client,
        ):
            yield client
    else:
        async with httpx.AsyncClient(timeout=10) as client:
            yield client


async def read_all(store: ObjectStore, key: str, *, chunk_size: int = 1 << 20) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, chunk_size=chunk_size)])


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


# --- the contract --------------------------------------------------------------------------


async def test_ensure_ready_creates_the_bucket_or_folder(unready_store: ObjectStore) -> None:
    await unready_store.ensure_ready()
    await unready_store.ensure_ready()  # a second start finds it
    if isinstance(unready_store, LocalObjectStore):
        assert unready_store.root.is_dir()
    else:
        assert isinstance(unready_store, MinioObjectStore)
        client, bucket = unready_store.client, unready_store.bucket
        assert await anyio.to_thread.run_sync(client.bucket_exists, bucket)
    assert await keys(unready_store) == []


async def test_stat_of_a_missing_object_is_none(store: ObjectStore) -> None:
    assert await store.stat("photos/none.jpg") is None


async def test_write_stat_read_round_trip(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40
    before = now() - MINUTE
    await store.write("thumbs/ab/cd-256.jpg", data, content_type="image/jpeg")
    info = await store.stat("thumbs/ab/cd-256.jpg")
    assert info is not None
    assert (info.key, info.size) == ("thumbs/ab/cd-256.jpg", len(data))
    assert info.modified.utcoffset() == timedelta(0)
    assert before <= info.modified <= now() + MINUTE
    assert await read_all(store, "thumbs/ab/cd-256.jpg") == data


async def test_read_streams_in_chunks(store: ObjectStore) -> None:
    data = os.urandom(10_000)
    await store.write("m/file.bin", data, content_type="application/octet-stream")
    chunks = [chunk async for chunk in store.read("m/file.bin", chunk_size=1024)]
    assert len(chunks) == 10
    assert all(len(chunk) <= 1024 for chunk in chunks)
    assert b"".join(chunks) == data


async def test_reading_a_missing_object_fails(store: ObjectStore) -> None:
    with pytest.raises(ObjectStoreError, match="missing"):
        await read_all(store, "m/none.bin")


async def test_promote_moves_the_object(store: ObjectStore) -> None:
    await store.write("uploads/u1", b"photo bytes", content_type="image/jpeg")
    await store.promote("uploads/u1", "photos/ab/abcdef")
    assert await store.stat("uploads/u1") is None
    assert await read_all(store, "photos/ab/abcdef") == b"photo bytes"


async def test_promote_onto_an_existing_target_only_deletes_the_source(
    store: ObjectStore,
) -> None:
    await store.write("photos/ab/same", b"kept", content_type="image/jpeg")
    await store.write("uploads/u2", b"retry", content_type="image/jpeg")
    await store.promote("uploads/u2", "photos/ab/same")
    assert await store.stat("uploads/u2") is None
    assert await read_all(store, "photos/ab/same") == b"kept"


async def test_promote_of_a_missing_source_fails(store: ObjectStore) -> None:
    with pytest.raises(ObjectStoreError, match="missing"):
        await store.promote("uploads/none", "photos/none")


async def test_delete_removes_and_a_missing_key_is_fine(store: ObjectStore) -> None:
    await store.write("m/gone", b"x", content_type="text/plain")
    await store.delete("m/gone")
    assert await store.stat("m/gone") is None
    await store.delete("m/gone")
    await store.delete("never/was")


async def test_list_with_prefix_in_key_order(store: ObjectStore) -> None:
    for key in ["b/4", "a/2/x", "ab/3", "a/1", "a-c"]:
        await store.write(key, key.encode(), content_type="text/plain")
    assert await keys(store) == ["a-c", "a/1", "a/2/x", "ab/3", "b/4"]
    assert await keys(store, "a/") == ["a/1", "a/2/x"]
    assert await keys(store, "a") == ["a-c", "a/1", "a/2/x", "ab/3"]
    assert await keys(store, "a/2") == ["a/2/x"]
    assert await keys(store, "c/") == []
    sizes = {info.key: info.size async for info in store.list()}
    assert sizes["a/2/x"] == 5


async def test_put_ticket_lets_a_client_upload(store: ObjectStore) -> None:
    data = os.urandom(5000)
    ticket = await store.put_ticket(
        "uploads/t1", content_type="image/png", max_size=10_000, now=now(), expires=MINUTE
    )
    assert ticket.method == "PUT"
    assert ticket.headers == {"Content-Type": "image/png"}
    assert ticket.expires_at > now()
    async with http_for(store) as http:
        response = await http.put(ticket.url, content=data, headers=ticket.headers)
    assert response.status_code == 200, response.text
    info = await store.stat("uploads/t1")
    assert info is not None and info.size == len(data)
    assert await read_all(store, "uploads/t1") == data


async def test_get_url_downloads_with_type_and_chinese_name(store: ObjectStore) -> None:
    data = os.urandom(3000)
    await store.write("photos/cd/xyz", data, content_type="image/jpeg")
    url = await store.get_url(
        "photos/cd/xyz",
        now=now(),
        expires=MINUTE,
        file_name=CHINESE_NAME,
        content_type="image/jpeg",
    )
    async with http_for(store) as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(data))
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline; filename=")
    assert f"filename*=UTF-8''{quote(CHINESE_NAME)}" in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == CHINESE_NAME


@pytest.mark.parametrize("bad", BAD_KEYS)
async def test_every_method_refuses_a_bad_key(store: ObjectStore, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        await store.stat(bad)
    with pytest.raises(ValueError, match="invalid object key"):
        await read_all(store, bad)
    with pytest.raises(ValueError, match="invalid object key"):
        await store.write(bad, b"x", content_type="text/plain")
    with pytest.raises(ValueError, match="invalid object key"):
        await store.promote(bad, "ok/key")
    with pytest.raises(ValueError, match="invalid object key"):
        await store.promote("ok/key", bad)
    with pytest.raises(ValueError, match="invalid object key"):
        await store.delete(bad)
    with pytest.raises(ValueError, match="invalid object key"):
        await store.put_ticket(
            bad, content_type="text/plain", max_size=10, now=now(), expires=MINUTE
        )
    with pytest.raises(ValueError, match="invalid object key"):
        await store.get_url(
            bad, now=now(), expires=MINUTE, file_name="x.txt", content_type="text/plain"
        )
    with pytest.raises(ValueError, match="invalid object key prefix"):
        await keys(store, "/x")


def test_validate_key() -> None:
    for good in ["a", "photos/ab/0f3c.jpg", "x_y-z/1.2.3", "a" * 512]:
        assert validate_key(good) == good
    for bad in [*BAD_KEYS, "", "a/", ".", "..", "a/../b", "a/./b", ".tmp/x", "a b", "é", "a" * 513]:
        with pytest.raises(ValueError):
            validate_key(bad)


def test_content_disposition_has_an_ascii_fallback() -> None:
    assert content_disposition("report.pdf") == (
        "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert content_disposition("现场照片.jpg") == (
        "inline; filename=\"_.jpg\"; filename*=UTF-8''%E7%8E%B0%E5%9C%BA%E7%85%A7%E7%89%87.jpg"
    )
    assert content_disposition('照片"\r\n') == (
        "inline; filename=\"file\"; filename*=UTF-8''%E7%85%A7%E7%89%87%22"
    )


async def test_an_unreachable_minio_is_reported_with_its_endpoint() -> None:
    store = make_minio_store("127.0.0.1:1", fresh_bucket())
    with pytest.raises(ObjectStoreError, match=r"127\.0\.0\.1:1.*ONEWINDOW_MINIO_ENDPOINT"):
        await store.ensure_ready()
    with pytest.raises(ObjectStoreError, match=r"127\.0\.0\.1:1"):
        await store.stat("photos/x")


class RefusingClient:
    """A ``minio.Minio`` stand-in that answers like MinIO does to a wrong access key."""

    _base_url = type("BaseURL", (), {"host": "minio.example:9000"})()

    def bucket_exists(self, bucket: str) -> bool:
        raise S3Error(
            urllib3.HTTPResponse(body=b"", status=403),
            "InvalidAccessKeyId",
            "The Access Key Id you provided does not exist in our records.",
            f"/{bucket}",
            None,
            None,
            bucket_name=bucket,
        )


async def test_wrong_minio_credentials_name_the_settings_to_check() -> None:
    store = MinioObjectStore(RefusingClient(), "photos")  # type: ignore[arg-type]
    with pytest.raises(ObjectStoreError) as refused:
        await store.ensure_ready()
    message = str(refused.value)
    assert "minio.example:9000" in message and "'photos'" in message
    assert "InvalidAccessKeyId" in message
    assert "ONEWINDOW_MINIO_ACCESS_KEY" in message


async def test_minio_refuses_a_missing_bucket_clearly(moto_s3: str) -> None:
    store = make_minio_store(moto_s3, fresh_bucket())
    with pytest.raises(ObjectStoreError, match="bucket does not exist"):
        await store.write("a/b", b"x", content_type="text/plain")


# --- the local store's tokens and endpoint ------------------------------------------------


async def test_an_expired_ticket_is_refused(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    await store.write("m/old", b"old", content_type="text/plain")
    long_ago = now() - timedelta(hours=2)
    ticket = await store.put_ticket(
        "m/new", content_type="text/plain", max_size=10, now=long_ago, expires=timedelta(hours=1)
    )
    url = await store.get_url(
        "m/old", now=long_ago, expires=timedelta(hours=1), file_name="a", content_type="text/plain"
    )
    async with http_for(store) as http:
        upload = await http.put(ticket.url, content=b"new", headers=ticket.headers)
        download = await http.get(url)
    assert upload.status_code == 403
    assert upload.json()["error"] == "expired"
    assert "ask for a new one" in upload.json()["message"]
    assert download.status_code == 403
    assert download.json()["error"] == "expired"
    assert await store.stat("m/new") is None


def _tamper(url: str) -> str:
    """Change one character of the token's payload."""
    head, token = url.rsplit("/", 1)
    flipped = "A" if token[5] != "A" else "B"
    return f"{head}/{token[:5]}{flipped}{token[6:]}"


async def test_a_tampered_or_misused_token_is_refused(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    await store.write("m/doc", b"doc", content_type="text/plain")
    ticket = await store.put_ticket(
        "m/doc", content_type="text/plain", max_size=10, now=now(), expires=MINUTE
    )
    url = await store.get_url(
        "m/doc", now=now(), expires=MINUTE, file_name="a.txt", content_type="text/plain"
    )
    other = LocalObjectStore(tmp_path, secret=b"another secret of 32 bytes......")
    foreign = await other.get_url(
        "m/doc", now=now(), expires=MINUTE, file_name="a.txt", content_type="text/plain"
    )
    download_token = url.rsplit("/", 1)[1]
    async with http_for(store) as http:
        answers = [
            await http.put(_tamper(ticket.url), content=b"evil"),
            await http.get(_tamper(url)),
            await http.get(f"{BASE_URL}{foreign}"),
            await http.get(f"{BASE_URL}/objects/not-a-token"),
            # a download token cannot upload, an upload token cannot download
            await http.put(f"{BASE_URL}/objects/upload/{download_token}", content=b"evil"),
            await http.get(ticket.url.replace("/objects/upload/", "/objects/")),
        ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "invalid"
    assert await read_all(store, "m/doc") == b"doc"


async def test_a_body_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    ticket = await store.put_ticket(
        "m/big", content_type="text/plain", max_size=100_000, now=now(), expires=MINUTE
    )

    async def body() -> AsyncIterator[bytes]:  # streamed: no Content-Length
        for _ in range(20):
            yield b"x" * 10_000

    async with http_for(store) as http:
        response = await http.put(ticket.url, content=body(), headers=ticket.headers)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert await store.stat("m/big") is None
    assert list((tmp_path / ".tmp").iterdir()) == []


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    ticket = await store.put_ticket(
        "m/big", content_type="text/plain", max_size=1000, now=now(), expires=MINUTE
    )
    read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"x" * 1001

    async with http_for(store) as http:
        response = await http.put(
            ticket.url, content=body(), headers={**ticket.headers, "Content-Length": "1001"}
        )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "1000" in response.json()["message"]
    assert not read
    assert await store.stat("m/big") is None


async def test_receiving_100_mb_keeps_memory_flat(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    chunk = os.urandom(64 * 1024)
    count = 1600  # 100 MiB
    ticket = await store.put_ticket(
        "m/huge", content_type="video/mp4", max_size=len(chunk) * count, now=now(), expires=MINUTE
    )

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    async with http_for(store) as http:
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            response = await http.put(ticket.url, content=body(), headers=ticket.headers)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert response.json() == {"key": "m/huge", "size": len(chunk) * count}
    assert peak - baseline < 8 * 1024 * 1024
    assert (tmp_path / "m" / "huge").stat().st_size == len(chunk) * count


async def test_a_deleted_object_answers_404(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_ready()
    await store.write("m/doc", b"doc", content_type="text/plain")
    url = await store.get_url(
        "m/doc", now=now(), expires=MINUTE, file_name="a.txt", content_type="text/plain"
    )
    await store.delete("m/doc")
    async with http_for(store) as http:
        response = await http.get(url)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_the_endpoint_sends_minio_clients_to_their_presigned_url(moto_s3: str) -> None:
    store = make_minio_store(moto_s3, fresh_bucket())
    async with (
        serving(store) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as http,
    ):
        response = await http.get("/objects/some-token")
    assert response.status_code == 404
    assert "MinIO" in response.json()["message"]


def test_the_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "objects.secret"
    secret = load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["objects.secret"]
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="delete it"):
        load_or_create_secret(path)


async def test_presigned_urls_use_the_public_address_when_one_is_given() -> None:
    store = open_minio_store(
        endpoint="minio:9000",
        access_key="key",
        secret_key="secret-key",
        bucket="onewindow",
        region="us-east-1",
        secure=False,
        public_url="https://files.example.cn",
    )
    now = datetime.now(UTC)
    ticket = await store.put_ticket(
        "incoming/x", content_type="image/jpeg", max_size=10, now=now, expires=timedelta(minutes=5)
    )
    assert ticket.url.startswith("https://files.example.cn/onewindow/incoming/x?")
    url = await store.get_url(
        "photos/ab/c", now=now, expires=timedelta(minutes=5), file_name="a.jpg", content_type="x/y"
    )
    assert url.startswith("https://files.example.cn/onewindow/photos/ab/c?")
    with pytest.raises(ValueError, match="ONEWINDOW_MINIO_PUBLIC_URL"):
        open_minio_store(
            endpoint="minio:9000",
            access_key="key",
            secret_key="secret-key",
            bucket="onewindow",
            region="us-east-1",
            secure=False,
            public_url="files.example.cn/path",
        )
