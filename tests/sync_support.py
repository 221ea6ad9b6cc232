"""What the sync tests share: a permissive policy, a real uvicorn server, a pycrdt client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from pycrdt import Doc, Map, Text
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from sync import protocol
from sync.policy import Access, UpdateRefused

TIMEOUT = 10.0  # every network wait of the tests is bounded by this


def access(username: str = "writer", *, writable: bool = True, user_id: int = 1) -> Access:
    return Access(
        user_id=user_id,
        username=username,
        role="inspector",
        department_code="zjj",
        writable=writable,
    )


@dataclass
class PermissivePolicy:
    """Accepts every update except one setting the key ``forbidden`` of the map ``m``."""

    initial: bytes | None = None
    materialised: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    validated: int = 0
    fail_materialise: bool = False

    def initial_update(self, doc_name: str) -> bytes | None:
        return self.initial

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        self.validated += 1
        if "forbidden" in after.get("m", type=Map):
            raise UpdateRefused("the key 'forbidden' may not be set; remove it and send again")

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        if self.fail_materialise:
            raise RuntimeError("materialisation failed on purpose")
        self.materialised.append((doc_name, doc.get("m", type=Map).to_py() or {}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class InLoopServer(uvicorn.Server):
    """uvicorn in the test's event loop, leaving signals to the test runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # the test runner owns signals
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free 127.0.0.1 port in this event loop; yields ws://..."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
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
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await task
        sock.close()


@contextlib.asynccontextmanager
async def serving_onewindow(
    database: str, clock: Callable[[], datetime]
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The whole app (``server.app.create_app``: GraphQL and the sync rooms) served over the
    test database: its ws:// base and an HTTP client of it. The app's lifespan closes the
    database it opened, so the session's is opened again afterwards."""
    from server.app import create_app
    from server.settings import Settings
    from storage.db import open_database

    settings = Settings(
        database_url=database, supervise_seconds=0, notify_seconds=0, log_level="warning"
    )
    try:
        async with serving(create_app(settings, clock=clock)) as base:
            http_base = base.replace("ws://", "http://", 1)
            async with httpx.AsyncClient(base_url=http_base, timeout=TIMEOUT) as http:
                yield base, http
    finally:
        await open_database(database)


class SyncClient:
    """A pycrdt document synced over a real websocket, speaking y-websocket."""

    def __init__(self, ws: ClientConnection, doc: Doc) -> None:
        self.ws = ws
        self.doc = doc
        self.sent = 0  # update messages (step 2 and update) sent, as the server counts them
        self.acks: set[int] = set()  # update numbers acknowledged (cumulative acks expanded)
        self.acked_upto = 0  # the highest cumulative ack
        self.errors: list[protocol.ErrorMessage] = []
        self.held: set[int] = set()  # update numbers held and not answered yet
        self.denied: list[str] = []
        self.presence: dict[int, Any] = {}
        self.synced = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._outgoing: list[bytes] = []

    @classmethod
    async def open(
        cls,
        base: str,
        doc_name: str,
        *,
        token: str | None = None,
        header: bool = True,
        ack: bool = True,
        doc: Doc | None = None,
    ) -> SyncClient:
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        if ack:
            query["ack"] = "1"
        subprotocols: list[Subprotocol] = []
        if token is not None:
            if header:
                headers["Authorization"] = f"Bearer {token}"
            else:  # as browsers do: no header, no token in the URL
                subprotocols = [
                    Subprotocol("onewindow.v1"),
                    Subprotocol(f"onewindow.bearer.{token}"),
                ]
        url = f"{base}/sync/{doc_name}" + (f"?{urlencode(query)}" if query else "")
        ws = await connect(
            url,
            additional_headers=headers,
            subprotocols=subprotocols or None,
            open_timeout=TIMEOUT,
        )
        if subprotocols:
            assert ws.subprotocol == "onewindow.v1", ws.subprotocol
        client = cls(ws, doc if doc is not None else Doc())
        client._reader = asyncio.create_task(client._read())
        await client.send_raw(protocol.sync_step1(client.doc.get_state()))
        return client

    async def send_raw(self, frame: bytes | str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(frame)

    async def send_update(self, update: bytes) -> int:
        self.sent += 1
        await self.send_raw(protocol.sync_update(update))
        return self.sent

    def make(self, edit: Callable[[Doc], None]) -> bytes:
        """Make a local change without sending it; returns its update."""
        made: list[bytes] = []
        subscription = self.doc.observe(lambda event: made.append(event.update))
        try:
            with self.doc.transaction():
                edit(self.doc)
        finally:
            self.doc.unobserve(subscription)
        assert len(made) == 1
        return made[0]

    async def change(self, edit: Callable[[Doc], None]) -> int:
        """Make a local change and send it; returns its update number."""
        return await self.send_update(self.make(edit))

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes), frame
                self._on(protocol.decode(frame))
                await self._flush()
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self._changed.set()

    def _on(self, message: protocol.Message) -> None:
        if isinstance(message, protocol.SyncMessage):
            if message.kind == protocol.SyncType.STEP1:
                self.sent += 1
                self._outgoing.append(protocol.sync_step2(self.doc.get_update(message.payload)))
            else:
                self.doc.apply_update(message.payload)
                if message.kind == protocol.SyncType.STEP2:
                    self.synced.set()
        elif isinstance(message, protocol.AwarenessMessage):
            for entry in message.entries:
                if entry.state == "null":
                    self.presence.pop(entry.client_id, None)
                else:
                    self.presence[entry.client_id] = entry.parsed()
        elif isinstance(message, protocol.AckMessage):
            self.acks.add(message.number)
            self.held.discard(message.number)
        elif isinstance(message, protocol.AckUpToMessage):
            refused = {error.number for error in self.errors}
            self.acks.update(
                number
                for number in range(self.acked_upto + 1, message.number + 1)
                if number not in refused and number not in self.held
            )
            self.acked_upto = max(self.acked_upto, message.number)
        elif isinstance(message, protocol.HeldMessage):
            self.held.add(message.number)
        elif isinstance(message, protocol.ErrorMessage):
            self.errors.append(message)
            self.held.discard(message.number)
        elif isinstance(message, protocol.PermissionDeniedMessage):
            self.denied.append(message.reason)

    async def _flush(self) -> None:
        for frame in self._outgoing:
            await self.send_raw(frame)
        self._outgoing = []

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until ``condition()`` holds; it is checked after every message."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while not condition():
                    if self.close_code is not None and not condition():
                        raise AssertionError(
                            f"closed ({self.close_code} {self.close_reason}) before {what}"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def until_closed(self) -> tuple[int | None, str]:
        await self.until(lambda: self.close_code is not None, "the connection to close")
        return self.close_code, self.close_reason

    def map(self) -> dict[str, Any]:
        return self.doc.get("m", type=Map).to_py() or {}

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            async with asyncio.timeout(TIMEOUT):
                await self._reader


def set_key(key: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc.get("m", type=Map)[key] = value

    return edit


def document_json(doc: Doc) -> dict[str, Any]:
    """Every root map of ``doc`` as plain data, by name."""
    return {root: doc.get(root, type=Map).to_py() or {} for root in sorted(doc.keys())}


def recorded(doc: Doc) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


def two_writers() -> tuple[list[bytes], list[bytes]]:
    """A writes "abc"; B (who saw it) appends "XYZ" and deletes A's "a"; C sets m.b.

    Returns A's update and the others (B's two and C's one)."""
    a: Doc = Doc(client_id=101)
    from_a = recorded(a)
    a.get("t", type=Text).insert(0, "abc")
    b: Doc = Doc(client_id=202)
    b.apply_update(from_a[0])
    from_b = recorded(b)
    text = b.get("t", type=Text)
    text.insert(3, "XYZ")  # its origin is A's item
    del text[0:1]  # deletes A's item
    c: Doc = Doc(client_id=303)
    from_c = recorded(c)
    c.get("m", type=Map)["b"] = 2  # independent of A
    return from_a, from_b + from_c


ROOT = Path(__file__).resolve().parent.parent


async def field_cli(store: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    """``onewindow-field ARGS`` in a subprocess on the local store ``store``: exit code, output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.field.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "ONEWINDOW_FIELD_STORE": str(store)},
        cwd=ROOT,
    )
    try:
        async with asyncio.timeout(30):
            out, _ = await process.communicate(stdin.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"onewindow-field {' '.join(args)} did not finish") from None
    assert process.returncode is not None
    return process.returncode, out.decode()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` to hold; AssertionError naming ``what`` after TIMEOUT."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
