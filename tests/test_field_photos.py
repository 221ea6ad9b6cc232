"""Photos taken offline on the field client, delivered once the network is back.

The real server (``server.app.create_app``: GraphQL, the sync endpoint with the real field
documents, the local object store under ``/objects``) runs under uvicorn; the tablet is a
``FieldClient`` whose network the test cuts (websocket connections and HTTP) and whose process
the test restarts (close, reopen on the same SQLite file). A server stop is a real one: the
app's lifespan ends and a new app is served on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import random
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from starlette.applications import Starlette

from approval.fieldwork.documents import (
    InspectionLayout,
    initial_update,
    inspection_doc_name,
    read_inspection,
)
from approval.fieldwork.inspections import assign_inspectors, schedule_site_check
from approval.files.uploads import check_file_name
from clients.field import (
    PHOTOS,
    FieldClient,
    FieldError,
    LocalStore,
    PhotoOutcome,
    StoreError,
    SyncError,
)
from clients.field.photos import plain_file_name, sniff
from clients.field.session import WebSocket, connect_websocket
from clients.field.store import SCHEMA, SCHEMA_VERSION
from server.app import create_app
from server.settings import Settings
from storage.db import open_database
from storage.enums import UploadStatus
from storage.models import CheckResult, StoredObject, Upload
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.fieldwork_support import clerk
from tests.helpers import create_project, db_id
from tests.photo_support import make_jpeg, make_png
from tests.sync_support import TIMEOUT, InLoopServer, field_cli, free_port, until

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = InspectionLayout({"zjj": ["C01", "C02", "C03"], "xf": ["X01"]})
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00\x00\x00" + b"\x00" * 14
NOT_AN_IMAGE = b"MZ\x90\x00\x03\x00\x00\x00 this is a program, renamed .jpg" + b"\x00" * 64

CHECK_PHOTOS = """
query($id: ID!) {
  inspection(id: $id) {
    departments { department { code } checks { code photos { id status statusLabel url } } }
  }
}"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def photo(seed: int) -> bytes:
    return make_jpeg(width=160 + seed, height=120, noise=True)


def too_large_png() -> bytes:
    """A real PNG of random pixels, about 1.4 MB: more than the 1 MB these tests allow."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (800, 600), rng.randbytes(800 * 600 * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- the tablet's network ------------------------------------------------------------------


@dataclass
class Network:
    """The tablet's network: websockets and HTTP, cut and restored by the test. Every HTTP
    request that went out is logged; PUTs (the bytes of photos) are counted apart."""

    online: bool = True
    cut_after_put: bool = False  # the network drops right after a PUT went through
    put_status: int | None = None  # answer PUTs with this status instead of sending them
    requests: list[tuple[str, str]] = field(default_factory=list)
    puts: list[str] = field(default_factory=list)
    _inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def connect(self, url: str, headers: dict[str, str]) -> WebSocket:
        if not self.online:
            raise OSError("Network is unreachable (cut by the test)")
        return await connect_websocket(url, headers)

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        return _Transport(self)

    def graphql_calls(self) -> int:
        return sum(1 for _, url in self.requests if url.endswith("/graphql"))

    async def close(self) -> None:
        await self._inner.aclose()


class _Transport(httpx.AsyncBaseTransport):
    def __init__(self, network: Network) -> None:
        self.network = network

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        net = self.network
        if not net.online:
            raise httpx.ConnectError("Network is unreachable (cut by the test)", request=request)
        net.requests.append((request.method, str(request.url)))
        if request.method == "PUT" and net.put_status is not None:
            await request.aread()
            return httpx.Response(net.put_status, text="storage trouble", request=request)
        response = await net._inner.handle_async_request(request)
        if request.method == "PUT":
            await response.aread()
            net.puts.append(str(request.url))
            if net.cut_after_put:
                net.online = False
        return response

    async def aclose(self) -> None:  # the client closes its transport; the network stays
        return None


# --- the server ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(app: Starlette, port: int) -> AsyncIterator[None]:
    """``app`` under uvicorn on 127.0.0.1:``port`` (the same port again after a restart)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="websockets-sansio", timeout_graceful_shutdown=2
    )
    server = InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await task
        sock.close()


@dataclass
class Site:
    """A site check by zjj with ``inspector`` assigned, and the whole server app serving it."""

    database: str
    settings: Settings
    clock: Clock
    tokens: dict[str, str]
    inspection_id: int
    checks: list[str]  # zjj's check codes
    tmp: Path
    port: int = field(default_factory=free_port)
    clients: list[FieldClient] = field(default_factory=list)
    _stack: AsyncExitStack | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def doc_name(self) -> str:
        return inspection_doc_name(self.inspection_id)

    @property
    def objects(self) -> Path:
        return self.settings.object_dir

    async def start(self) -> None:
        assert self._stack is None
        stack = AsyncExitStack()
        await stack.enter_async_context(
            served(create_app(self.settings, clock=self.clock), self.port)
        )
        self._stack = stack

    async def stop(self) -> None:
        """Stop the server; its lifespan closed the database, the test's must answer again."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
            await open_database(self.database)

    def tablet(self, network: Network, name: str = "tablet", **options: Any) -> FieldClient:
        client = FieldClient(
            self.base,
            self.tokens["inspector"],
            self.tmp / f"{name}.sqlite3",
            connect=network.connect,
            http_transport=network.transport,
            username="inspector",
            timeout=TIMEOUT,
            **options,
        )
        self.clients.append(client)
        return client

    def restart(self, tablet: FieldClient, network: Network, name: str = "tablet") -> FieldClient:
        """The tablet's process ends and starts again on the same local store."""
        tablet.close()
        self.clients.remove(tablet)
        return self.tablet(network, name)

    async def graphql(self, query: str, variables: dict[str, Any], as_: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base, timeout=TIMEOUT) as http:
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.tokens[as_]}"},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def check_photos(self) -> dict[str, list[dict[str, Any]]]:
        """zjj's checks and their photos as GraphQL shows them to the supervisor."""
        gid = base64.b64encode(f"Inspection:{self.inspection_id}".encode()).decode()
        data = await self.graphql(CHECK_PHOTOS, {"id": gid}, "supervisor")
        section = next(
            d for d in data["inspection"]["departments"] if d["department"]["code"] == "zjj"
        )
        return {c["code"]: c["photos"] for c in section["checks"]}

    async def download(self, url: str) -> bytes:
        async with httpx.AsyncClient(base_url=self.base, timeout=TIMEOUT) as http:
            response = await http.get(url)
        assert response.status_code == 200, response.text
        return response.content

    def stored_files(self, prefix: str) -> list[Path]:
        folder = self.objects / prefix
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


@pytest.fixture
async def site(
    gql: GraphQLClient, clock: Clock, database: str, tmp_path: Path
) -> AsyncIterator[Site]:
    project = await create_project(gql)
    inspection = await schedule_site_check(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zjj"],
        now=clock(),
    )
    await assign_inspectors(
        viewer=await clerk(), inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    codes = (
        await CheckResult.filter(inspection_id=inspection.id)
        .order_by("id")
        .values_list("check_code", flat=True)
    )
    assert len(codes) >= 3
    settings = Settings(
        database_url=database,
        supervise_seconds=0,
        notify_seconds=0,
        log_level="warning",
        object_dir=tmp_path / "objects",
        photo_max_mb=1,
        sync_materialise_ms=50,
    )
    value = Site(
        database=database,
        settings=settings,
        clock=clock,
        tokens=gql.tokens,
        inspection_id=inspection.id,
        checks=[str(c) for c in codes],
        tmp=tmp_path,
    )
    await value.start()
    try:
        yield value
    finally:
        for client in value.clients:
            client.close()
        await value.stop()


async def eventually(condition: Callable[[], Awaitable[Any]], what: str) -> Any:
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                result = await condition()
                if result:
                    return result
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen") from None


async def shown_ready(site: Site, wanted: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """Wait until GraphQL shows exactly ``wanted`` (check -> photo ids), every photo READY."""

    async def check() -> dict[str, list[dict[str, Any]]] | None:
        shown = await site.check_photos()
        got = {code: [p["id"] for p in shown[code]] for code in wanted}
        ready = all(p["status"] == "READY" for code in wanted for p in shown[code])
        return shown if got == wanted and ready else None

    try:
        result: dict[str, list[dict[str, Any]]] = await eventually(check, "the photos in GraphQL")
    except TimeoutError:
        raise AssertionError(
            f"GraphQL never showed {wanted}: {await site.check_photos()}"
        ) from None
    return result


def check_photo_ids(tablet: FieldClient, doc_name: str, check: str) -> list[str]:
    return list(read_inspection(tablet.open(doc_name))["zjj"].checks[check].photos)


# --- the must-show round trip ----------------------------------------------------------------


async def test_photos_taken_offline_reach_the_server_once_after_a_restart(site: Site) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc = site.doc_name
    c1, c2 = site.checks[0], site.checks[1]
    await tablet.sync(doc)  # the layout, while online

    network.online = False  # the tablet goes out of reach
    jpeg, png = photo(1), make_png(width=40, height=30)
    path = site.tmp / "DCIM" / "IMG_0001.JPG"
    path.parent.mkdir()
    path.write_bytes(jpeg)
    tablet.record_check(doc, "zjj", c1, "rectify", note="栏杆高度不足")
    assert tablet.add_photo(doc, "zjj", c1, path) == sha(jpeg)
    assert tablet.add_photo(doc, "zjj", c1, path) == sha(jpeg)  # again: nothing new
    assert tablet.add_photo(doc, "zjj", c2, png, file_name="护栏.png") == sha(png)
    assert tablet.add_photo(doc, "zjj", c2, jpeg) == sha(jpeg)  # the same bytes, another check
    assert check_photo_ids(tablet, doc, c1) == [sha(jpeg)]
    assert check_photo_ids(tablet, doc, c2) == [sha(png), sha(jpeg)]
    # One copy per content, named by its hash, next to the local store; nothing half-written.
    folder = site.tmp / "tablet.photos"
    assert sorted(p.name for p in folder.iterdir()) == sorted([sha(jpeg), sha(png)])
    assert (folder / sha(jpeg)).read_bytes() == jpeg
    queued = tablet.photos(doc)
    assert [(e.check, e.photo_id, e.content_type, e.state) for e in queued] == [
        (c1, sha(jpeg), "image/jpeg", "queued"),
        (c2, sha(png), "image/png", "queued"),
        (c2, sha(jpeg), "image/jpeg", "queued"),
    ]
    assert queued[0].file_name == "IMG_0001.JPG" and queued[1].file_name == "护栏.png"
    status = tablet.status(doc)
    assert (status.pending, status.photos_pending) == (4, 3)  # result + 3 photo ids; 3 photos

    with pytest.raises(SyncError, match="cannot reach"):
        await tablet.sync(doc)
    with pytest.raises(SyncError, match="Network is unreachable"):
        await tablet.upload_photos()
    status = tablet.status(doc)
    assert status.photos_pending == 3
    assert status.photo_error is not None and "Network is unreachable" in status.photo_error
    assert network.puts == []

    tablet = site.restart(tablet, network)  # the tablet restarts, still offline
    assert tablet.status(doc).photos_pending == 3
    assert check_photo_ids(tablet, doc, c2) == [sha(png), sha(jpeg)]

    network.online = True  # the network is back
    synced = await tablet.sync(doc)
    assert synced.acknowledged == 4 and synced.refusals == []
    outcomes: list[PhotoOutcome] = []
    done = await tablet.upload_photos(on_photo=outcomes.append)
    assert [(o.entry.check, o.outcome, o.index, o.total) for o in outcomes] == [
        (c1, "uploaded", 1, 3),
        (c2, "uploaded", 2, 3),
        (c2, "already", 3, 3),  # the server had these bytes: nothing sent
    ]
    assert (done.uploaded, done.already, done.puts, done.refused, done.failed) == (2, 1, 2, [], [])
    assert len(network.puts) == 2  # every content once
    assert await StoredObject.filter(sha256__in=[sha(jpeg), sha(png)]).count() == 2
    assert len(site.stored_files("photos")) == 2
    assert site.stored_files("incoming") == []
    assert await Upload.filter(status=UploadStatus.CONFIRMED).count() == 3  # one per check
    assert list(folder.iterdir()) == []  # delivered: the copies are gone
    status = tablet.status(doc)
    assert (status.pending, status.photos_pending, status.photo_error) == (0, 0, None)
    assert [e.state for e in tablet.photos()] == ["done"] * 3

    before = len(network.requests)
    again = await tablet.upload_photos()  # nothing left: nothing asked, nothing sent
    assert (again.uploaded, again.already, again.puts) == (0, 0, 0)
    assert len(network.requests) == before

    shown = await shown_ready(site, {c1: [sha(jpeg)], c2: [sha(png), sha(jpeg)]})
    assert await site.download(shown[c1][0]["url"]) == jpeg
    assert await site.download(shown[c2][0]["url"]) == png
    assert shown[c2][1]["statusLabel"] == "已上传"


async def test_a_photo_in_a_synced_check_is_pending_until_its_bytes_arrive(site: Site) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc, check = site.doc_name, site.checks[0]
    await tablet.sync(doc)
    data = photo(2)
    tablet.add_photo(doc, "zjj", check, data)
    await tablet.sync(doc)  # the document first; the photo not yet

    async def pending() -> list[dict[str, Any]] | None:
        photos = (await site.check_photos())[check]
        return photos or None

    shown = await eventually(pending, "the photo id in GraphQL")
    assert shown == [{"id": sha(data), "status": "PENDING", "statusLabel": "待上传", "url": None}]
    assert tablet.status(doc).photos_pending == 1

    await tablet.upload_photos()
    ready = await shown_ready(site, {check: [sha(data)]})
    assert await site.download(ready[check][0]["url"]) == data


async def test_an_upload_interrupted_before_its_confirmation_resumes_after_restarts(
    site: Site,
) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc, check = site.doc_name, site.checks[0]
    await tablet.sync(doc)
    first, second = photo(3), photo(4)
    tablet.add_photo(doc, "zjj", check, first)

    # The bytes go out, then the server stops before the confirmation.
    network.cut_after_put = True
    with pytest.raises(SyncError, match="cannot reach"):
        await tablet.upload_photos()
    assert len(network.puts) == 1
    [entry] = tablet.photos()
    assert entry.state == "sent" and entry.upload_id is not None
    await site.stop()
    assert not await StoredObject.exists()
    assert len(site.stored_files("incoming")) == 1  # staged, not yet confirmed
    tablet = site.restart(tablet, network)

    # A second photo's PUT breaks off halfway: it is sent again with a fresh ticket.
    tablet.add_photo(doc, "zjj", check, second)
    await site.start()
    network.cut_after_put = False
    network.online = True
    network.put_status = 503
    with pytest.raises(SyncError, match="HTTP 503"):
        await tablet.upload_photos()  # the first is confirmed, the second's PUT fails
    assert [e.state for e in tablet.photos()] == ["done", "queued"]
    assert tablet.status(doc).photo_error is not None
    assert "HTTP 503" in (tablet.status(doc).photo_error or "")
    assert len(network.puts) == 1  # the first photo was not sent again

    tablet = site.restart(tablet, network)
    network.put_status = None
    done = await tablet.upload_photos()
    assert (done.uploaded, done.puts) == (1, 1)
    assert len(network.puts) == 2  # each photo's bytes went through once
    for data in (first, second):
        assert await StoredObject.filter(sha256=sha(data)).count() == 1
    assert len(site.stored_files("photos")) == 2
    await tablet.sync(doc)
    shown = await shown_ready(site, {check: [sha(first), sha(second)]})
    assert await site.download(shown[check][0]["url"]) == first
    assert await site.download(shown[check][1]["url"]) == second


async def test_bytes_sent_on_an_expired_ticket_are_sent_again_on_a_fresh_one(site: Site) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc, check = site.doc_name, site.checks[0]
    await tablet.sync(doc)
    data = photo(11)
    tablet.add_photo(doc, "zjj", check, data)
    network.cut_after_put = True
    with pytest.raises(SyncError):
        await tablet.upload_photos()
    site.clock.now += timedelta(minutes=16)  # tickets last 15 minutes
    network.cut_after_put, network.online = False, True
    outcomes: list[PhotoOutcome] = []
    done = await tablet.upload_photos(on_photo=outcomes.append)
    assert [o.outcome for o in outcomes] == ["uploaded"] and done.puts == 1
    assert len(network.puts) == 2  # the expired ticket's bytes were dropped by the server
    assert await StoredObject.filter(sha256=sha(data)).count() == 1
    assert site.stored_files("incoming") == []
    assert tablet.status(doc).photos_pending == 0


async def test_refusals_are_reported_and_not_retried(site: Site) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc, check = site.doc_name, site.checks[0]
    await tablet.sync(doc)
    network.online = False

    # Refused on the tablet: a program renamed .jpg, an empty file, a type that disagrees.
    fake = site.tmp / "现场照片.jpg"
    fake.write_bytes(NOT_AN_IMAGE)
    with pytest.raises(FieldError, match="is not a photo"):
        tablet.add_photo(doc, "zjj", check, fake)
    with pytest.raises(FieldError, match="empty"):
        tablet.add_photo(doc, "zjj", check, b"")
    with pytest.raises(FieldError, match="image/png, not image/jpeg"):
        tablet.add_photo(doc, "zjj", check, make_png(), content_type="image/jpeg")
    with pytest.raises(FieldError, match="cannot read the photo"):
        tablet.add_photo(doc, "zjj", check, site.tmp / "no-such.jpg")
    assert tablet.photos() == [] and check_photo_ids(tablet, doc, check) == []
    assert tablet.status(doc).pending == 0
    assert not (site.tmp / "tablet.photos").exists() or not any(
        (site.tmp / "tablet.photos").iterdir()
    )

    # Refused by the server: larger than its limit (1 MB here). The others still go.
    big, small = too_large_png(), photo(5)
    tablet.add_photo(doc, "zjj", check, big, file_name="全景.png")
    tablet.add_photo(doc, "zjj", site.checks[1], small)
    network.online = True
    await tablet.sync(doc)
    outcomes: list[PhotoOutcome] = []
    done = await tablet.upload_photos(on_photo=outcomes.append)
    assert [o.outcome for o in outcomes] == ["refused", "uploaded"]
    refusal = outcomes[0]
    assert "TOO_LARGE" in refusal.message and "at most" in refusal.message
    assert refusal.label == "已拒绝" and done.refused == [refusal]
    status = tablet.status(doc)
    assert (status.photos_pending, status.photos_refused) == (0, 1)
    assert status.photo_error is not None and "TOO_LARGE" in status.photo_error

    calls = network.graphql_calls()
    again = await tablet.upload_photos()  # not retried
    assert network.graphql_calls() == calls and again.refused == []
    assert [e.state for e in tablet.photos()] == ["refused", "done"]
    assert not await StoredObject.filter(sha256=sha(big)).exists()
    # Referenced by its check, never delivered: shown as waiting, not as an error.
    shown = (await shown_ready(site, {site.checks[1]: [sha(small)]}))[check]
    assert [(p["id"], p["status"]) for p in shown] == [(sha(big), "PENDING")]

    # The person may drop it (its copy goes) or queue it again.
    assert tablet.retry_refused_photos() == 1
    assert tablet.photo_summary().pending == 1
    await tablet.upload_photos()
    assert tablet.photo_summary().refused == 1
    assert tablet.forget_refused_photos() == 1
    assert tablet.photo_summary().refused == 0
    assert not (site.tmp / "tablet.photos" / sha(big)).exists()


async def test_run_uploads_photos_after_the_documents_and_retries_with_backoff(
    site: Site,
) -> None:
    network = Network()
    tablet = site.tablet(network)
    doc, check = site.doc_name, site.checks[0]
    await tablet.sync(doc)
    network.online = False
    first = photo(6)
    tablet.add_photo(doc, "zjj", check, first)
    errors: list[tuple[str, str, float | None]] = []
    outcomes: list[PhotoOutcome] = []
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.02)

    tablet._sleep = sleep
    running = asyncio.create_task(
        tablet.run(
            [doc],
            on_error=lambda name, error, delay: errors.append((name, str(error), delay)),
            on_photo=outcomes.append,
        )
    )
    try:
        await until(lambda: any(name == PHOTOS for name, _, _ in errors), "a failed photo round")
        assert outcomes == [] and network.puts == []
        network.online = True
        await until(lambda: tablet.photo_summary().pending == 0, "the photo to be uploaded")
        assert [o.outcome for o in outcomes] == ["uploaded"]
        second = photo(7)
        tablet.add_photo(doc, "zjj", site.checks[1], second)  # taken while run runs
        await until(lambda: len(outcomes) == 2, "the new photo to be uploaded")
        await until(lambda: tablet.status(doc).pending == 0, "the document to be synced")
    finally:
        tablet.stop()
        async with asyncio.timeout(TIMEOUT):
            await running
    assert [o.outcome for o in outcomes] == ["uploaded", "uploaded"]
    assert len(network.puts) == 2
    photo_delays = [delay for name, _, delay in errors if name == PHOTOS]
    assert photo_delays and all(delay is not None for delay in photo_delays)
    assert set(photo_delays) <= set(delays)  # each retry waited the delay it announced
    await shown_ready(site, {check: [sha(first)], site.checks[1]: [sha(second)]})


# --- the command line ----------------------------------------------------------------------


async def cli(store: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    return await field_cli(store, *args, stdin=stdin)


async def test_cli_attaches_photos_and_sync_uploads_them(site: Site) -> None:
    store = site.tmp / "cli.sqlite3"
    number = str(site.inspection_id)
    c1, c2 = site.checks[0], site.checks[1]
    code, out = await cli(
        store, "login", "--server", site.base, "--username", "inspector", stdin=PASSWORD + "\n"
    )
    assert code == 0, out
    code, out = await cli(store, "sync", "--once", "--inspection", number)
    assert code == 0, out

    shots = site.tmp / "shots"
    shots.mkdir()
    (shots / "a.jpg").write_bytes(photo(8))
    (shots / "b.png").write_bytes(make_png(width=20, height=20))
    (shots / "fake.jpg").write_bytes(NOT_AN_IMAGE)
    where = ["--inspection", number, "--department", "zjj", "--check"]
    code, out = await cli(store, "photo", *where, c1, str(shots / "fake.jpg"))
    assert code == 1 and "is not a photo" in out
    code, out = await cli(
        store, "record", *where, c1, "--result", "pass", "--photo", str(shots / "a.jpg")
    )
    assert code == 0, out
    assert f"as photo {sha(photo(8))[:12]}" in out and "1 photo(s) waiting to upload" in out
    code, out = await cli(store, "photo", *where, c2, str(shots / "b.png"), str(shots / "a.jpg"))
    assert code == 0, out

    code, out = await cli(store, "status")
    assert f"{site.doc_name}: 4 pending" in out and "3 photo(s) waiting to upload" in out
    assert "photos: 3 waiting to upload (待上传)" in out

    code, out = await cli(store, "sync", "--once", "--inspection", number)
    assert code == 0, out
    assert "[1/3] photo" in out and "a.jpg" in out and "bytes sent" in out
    assert "[3/3] photo" in out and "nothing sent" in out
    assert "photos: 2 uploaded, 1 already on the server, 0 refused, 0 to try again" in out

    code, out = await cli(store, "photos")
    assert code == 0 and out.count("已上传 (done)") == 3
    code, out = await cli(store, "status")
    assert "photos: 0 waiting to upload" in out and "3 uploaded (已上传)" in out
    await shown_ready(
        site, {c1: [sha(photo(8))], c2: [sha(make_png(width=20, height=20)), sha(photo(8))]}
    )


# --- the tablet alone: copies, sniffing, the store's schema ---------------------------------


@pytest.fixture
def offline(tmp_path: Path) -> Generator[FieldClient, None, None]:
    """A tablet that has an inspection document (laid out as the server would) and no server."""
    path = tmp_path / "alone.sqlite3"
    store = LocalStore(path)
    store.add_remote("inspection/7", initial_update(LAYOUT))
    store.close()
    client = FieldClient("http://127.0.0.1:9", "token", path, username="inspector")
    try:
        yield client
    finally:
        client.close()


def test_a_photo_is_kept_once_per_content_and_goes_to_the_outbox(
    offline: FieldClient, tmp_path: Path
) -> None:
    doc = "inspection/7"
    data = photo(9)
    first = offline.add_photo(doc, "zjj", "C01", data)
    pending = offline.status(doc).pending
    assert offline.add_photo(doc, "zjj", "C01", data) == first  # no new change, no new entry
    assert offline.status(doc).pending == pending == 1
    offline.add_photo(doc, "zjj", "C02", data)
    offline.add_photo(doc, "zjj", "C02", WEBP, file_name="../../etc/passwd")
    folder = tmp_path / "alone.photos"
    assert sorted(p.name for p in folder.iterdir()) == sorted([first, sha(WEBP)])
    entries = offline.photos(doc)
    assert [(e.check, e.content_type) for e in entries] == [
        ("C01", "image/jpeg"),
        ("C02", "image/jpeg"),
        ("C02", "image/webp"),
    ]
    assert entries[2].file_name == "passwd"  # a name the server accepts
    assert entries[0].file_name == f"photo-{first[:12]}.jpg"
    assert offline.status(doc).photos_pending == 3

    # The outbox survives a restart; the photo ids are in the document like any edit.
    offline.close()
    reopened = FieldClient("http://127.0.0.1:9", "token", tmp_path / "alone.sqlite3")
    try:
        assert [e.photo_id for e in reopened.photos(doc)] == [first, first, sha(WEBP)]
        section = read_inspection(reopened.open(doc))["zjj"]
        assert section.checks["C01"].photos == (first,)
        assert section.checks["C02"].photos == (first, sha(WEBP))
        with pytest.raises(FieldError, match="no such check"):
            reopened.add_photo(doc, "zjj", "C99", data)
        with pytest.raises(FieldError, match="not on this tablet yet"):
            reopened.add_photo("inspection/8", "zjj", "C01", data)
    finally:
        reopened.close()


def test_sniffing_and_file_names() -> None:
    assert sniff(make_jpeg()[:16]) == "image/jpeg"
    assert sniff(make_png()[:16]) == "image/png"
    assert sniff(WEBP[:16]) == "image/webp"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff(b"%PDF-1.7") is None and sniff(b"") is None
    sha_ = "ab" * 32
    assert plain_file_name("IMG_1.JPG", sha_, "image/jpeg") == "IMG_1.JPG"
    assert plain_file_name("..\\boot.ini", sha_, "image/png") == "boot.ini"
    assert plain_file_name("..jpg", sha_, "image/jpeg") == "_jpg"
    assert plain_file_name('a:b*?"<>|\x01.jpg', sha_, "image/jpeg") == "a_b_______.jpg"
    assert plain_file_name("", sha_, "image/webp") == f"photo-{sha_[:12]}.webp"
    long = plain_file_name("x" * 300 + ".jpeg", sha_, "image/jpeg")
    assert len(long) == 255 and long.endswith(".jpeg")
    # Every name it makes is one the server accepts, also when the cut lands on a dot.
    for given in ("a" * 249 + ".bbbbb.jpeg", "a" * 248 + ". .c.jpg", "x" * 300 + ".jpeg", "..jpg"):
        made = plain_file_name(given, sha_, "image/jpeg")
        assert check_file_name(made) == made


def test_an_older_local_store_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the first client's file: no photos table, user_version 0
    db.execute(
        "INSERT INTO updates (doc, data, local, pending) VALUES ('inspection/1', x'00', 1, 1)"
    )
    db.execute("INSERT INTO settings (key, value) VALUES ('token', 'kept')")
    db.commit()
    db.close()

    store = LocalStore(path)
    try:
        assert store.version == SCHEMA_VERSION
        assert store.get_setting("token") == "kept"
        assert store.status("inspection/1").pending == 1
        assert store.photos() == []
    finally:
        store.close()
    again = LocalStore(path)  # opening again changes nothing
    try:
        assert again.version == SCHEMA_VERSION and again.status("inspection/1").pending == 1
    finally:
        again.close()

    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer onewindow-field"):
        LocalStore(path)


async def test_tickets_in_parts_and_presigned_urls_go_to_the_object_store(tmp_path: Path) -> None:
    """A fake server: a ticket in parts on another host (S3) and a whole-file URL on the
    server's own host; each request goes through the transport meant for it, in one piece of
    known length (S3 takes no chunked uploads)."""
    data = make_jpeg(width=400, height=300, noise=True)
    small = photo(10)
    part_size = -(-len(data) // 3)
    received: dict[str, bytes] = {}
    graphql_seen: list[str] = []

    async def server(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "onewindow.test"
        if request.method == "PUT":  # the whole-file ticket, on the server's own host
            assert request.headers["content-length"] == str(len(small))
            received["whole"] = await request.aread()
            return httpx.Response(200, json={"key": "incoming/2", "size": len(small)})
        query = json.loads(await request.aread())
        body: str = query["query"]
        variables: dict[str, Any] = query["variables"]
        graphql_seen.append("requestUpload" if "requestUpload" in body else "confirmUpload")
        if "requestUpload" in body:
            facts = variables["input"]
            assert facts["check"]["inspectionId"] == base64.b64encode(b"Inspection:7").decode()
            if facts["sha256"] == sha(data):
                parts = [
                    {
                        "number": n + 1,
                        "url": f"https://s3.example.test/b/incoming/1?partNumber={n + 1}",
                        "offset": n * part_size,
                        "size": min(part_size, len(data) - n * part_size),
                    }
                    for n in range(3)
                ]
                ticket: dict[str, Any] = {
                    "url": None,
                    "method": "PUT",
                    "headers": [],
                    "parts": parts,
                }
                upload = {"id": "1", "status": "PENDING"}
            else:
                url = "http://onewindow.test/objects/upload/token"
                ticket = {"url": url, "method": "PUT", "headers": [], "parts": []}
                upload = {"id": "2", "status": "PENDING"}
            ticket["expiresAt"] = "2026-03-02T10:00:00+00:00"
            answer = {"upload": upload, "ticket": ticket, "errors": []}
            return httpx.Response(200, json={"data": {"requestUpload": answer}})
        joined = b"".join(received.get(f"part{n}", b"") for n in (1, 2, 3))
        ok = joined == data if variables["id"] == "1" else received.get("whole") == small
        payload: dict[str, Any] = {
            "upload": {"id": variables["id"], "status": "CONFIRMED"},
            "errors": [],
        }
        if not ok:
            error = {"code": "UPLOAD_NOT_RECEIVED", "message": "no bytes", "field": None}
            payload = {"upload": None, "errors": [error]}
        return httpx.Response(200, json={"data": {"confirmUpload": payload}})

    async def storage(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "s3.example.test" and request.method == "PUT"
        assert "transfer-encoding" not in request.headers
        content = await request.aread()
        assert request.headers["content-length"] == str(len(content))
        received[f"part{request.url.params['partNumber']}"] = content
        return httpx.Response(200)

    path = tmp_path / "parts.sqlite3"
    store = LocalStore(path)
    store.add_remote("inspection/7", initial_update(LAYOUT))
    store.close()
    client = FieldClient(
        "http://onewindow.test",
        "token",
        path,
        http_transport=httpx.MockTransport(server),
        object_transport=httpx.MockTransport(storage),
    )
    try:
        client.add_photo("inspection/7", "zjj", "C01", data)
        client.add_photo("inspection/7", "zjj", "C02", small)
        done = await client.upload_photos()
    finally:
        client.close()
    assert (done.uploaded, done.puts, done.failed, done.refused) == (2, 2, [], [])
    assert [len(received[f"part{n}"]) for n in (1, 2, 3)] == [
        part_size,
        part_size,
        len(data) - 2 * part_size,
    ]
    assert graphql_seen == ["requestUpload", "confirmUpload"] * 2
