"""``/sync/{doc}``: the y-websocket endpoint of the CRDT documents.

Authentication happens at the upgrade, with the same bearer tokens as GraphQL: the
``Authorization: Bearer <token>`` header, or, for browsers (which cannot set headers on a
websocket), the subprotocols ``onewindow.v1`` and ``onewindow.bearer.<token>``: the server then
answers with the subprotocol ``onewindow.v1`` and never sees the token in a URL (nor does an
access log). A ``?token=`` in the URL is not read. Authorization is per
document, by an injected ``access_for``. A refused connection is accepted and then closed with a
code and a reason, so that browsers see why:

| code | meaning |
| --- | --- |
| 4401 | no token, or an unknown, revoked or expired one: log in again |
| 4403 | the document exists and this user may not open it |
| 4404 | no such document on this server (checked before the user's rights) |
| 1002 | a frame that is not a y-websocket message |

``?ack=1`` asks for the OneWindow acknowledgements and errors (see ``sync.protocol``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from approval.core import lease
from approval.core.access import Viewer
from approval.core.auth import authenticate
from approval.core.errors import DomainError
from server.metrics import Metrics
from server.settings import Settings
from sync.policy import Access
from sync.server import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_UNKNOWN_DOCUMENT,
    Fanout,
    PolicyFor,
    SyncServer,
    UnknownDocument,
    close_reason,
)
from sync.store import UpdateStore

log = logging.getLogger("onewindow.server.sync")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

STATE_KEY = "sync_server"

AccessFor = Callable[[Viewer, str], Awaitable[Access | None]]
"""A viewer's rights on a document: None when it exists and is not theirs; raises
``sync.server.UnknownDocument`` when it does not exist (answered 4404, whoever asks)."""


SWEEP_LEASE = "sync-sweep"


@asynccontextmanager
async def running_sync_server(
    settings: Settings,
    policy_for: PolicyFor,
    *,
    fanout: Fanout | None = None,
    on_ack: Callable[[float], None] | None = None,
    holder: str = "",
    clock: Callable[[], datetime] | None = None,
    on_unloaded: Callable[[], None] | None = None,
) -> AsyncIterator[SyncServer]:
    """A SyncServer for the lifespan, catching up the rows of documents left behind by a
    crash, learning of the other instances' commits through ``fanout`` (and its poll), and,
    every ``settings.sync_sweep_seconds`` on the instance holding the ``sync-sweep`` lease,
    materialising documents whose rows stayed behind; closed (rooms flushed) at the end."""
    server = SyncServer(
        store=UpdateStore(),
        policy_for=policy_for,
        max_update_bytes=settings.sync_max_update_bytes,
        idle_seconds=settings.sync_idle_seconds,
        materialise_delay=settings.sync_materialise_ms / 1000,
        fanout=fanout,
        on_ack=on_ack,
        on_unloaded=on_unloaded,
    )
    server.start()  # materialises the documents whose rows are behind their log
    sweeping: asyncio.Task[None] | None = None
    if settings.sync_sweep_seconds > 0:
        sweeping = asyncio.create_task(
            sweep_while_holding(
                server,
                every=settings.sync_sweep_seconds,
                holder=holder or "sync",
                clock=clock or (lambda: datetime.now(UTC)),
            ),
            name="sync sweep",
        )
    try:
        yield server
    finally:
        if sweeping is not None:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
        await server.close()
        log.info("sync server closed")


async def sweep_while_holding(
    server: SyncServer, *, every: float, holder: str, clock: Callable[[], datetime]
) -> None:
    """``server.sweep()`` every ``every`` seconds while ``holder`` holds the sweep's lease
    (one instance sweeps; the lease lapses when it dies and another takes over)."""
    ttl = timedelta(seconds=max(3 * every, 30))
    try:
        while True:
            await asyncio.sleep(every)
            try:
                if await lease.acquire(name=SWEEP_LEASE, holder=holder, now=clock(), ttl=ttl):
                    await server.sweep()
            except Exception:
                log.exception("the sweep of documents behind their log failed")
    finally:
        with contextlib.suppress(Exception):
            await lease.release(name=SWEEP_LEASE, holder=holder)


class WebSocketChannel:
    """A Starlette websocket as a ``sync.server.Channel``."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> bytes | str | None:
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes")
        if data is not None:
            return bytes(data)
        text = message.get("text")
        return str(text) if text is not None else None

    async def send(self, data: bytes) -> None:
        await self.websocket.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            await self.websocket.close(code, close_reason(reason))


SUBPROTOCOL = "onewindow.v1"
BEARER_SUBPROTOCOL = "onewindow.bearer."


def offered_subprotocols(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [name.strip() for name in header.split(",") if name.strip()]


def bearer_token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for name in offered_subprotocols(websocket):
        if name.startswith(BEARER_SUBPROTOCOL) and len(name) > len(BEARER_SUBPROTOCOL):
            return name[len(BEARER_SUBPROTOCOL) :]
    return None  # never from the URL (?token=): access logs and proxies keep URLs


def sync_route(
    *, access_for: AccessFor, clock: Callable[[], datetime], metrics: Metrics | None = None
) -> WebSocketRoute:
    async def endpoint(websocket: WebSocket) -> None:
        doc_name = str(websocket.path_params["doc"])
        # A browser fails the connection unless one of its offered subprotocols is chosen.
        chosen = SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(websocket) else None
        await websocket.accept(subprotocol=chosen)

        async def refuse(code: int, reason: str) -> None:
            log.info("sync connection to %s refused (%d): %s", doc_name, code, reason)
            await websocket.close(code, close_reason(reason))

        server: SyncServer | None = getattr(websocket.state, STATE_KEY, None)
        if server is None:
            await websocket.close(CLOSE_INTERNAL_ERROR, "the sync server is not running")
            return
        token = bearer_token(websocket)
        if token is None:
            await refuse(
                CLOSE_UNAUTHENTICATED,
                "no bearer token: send 'Authorization: Bearer <token>' or the subprotocols "
                f"{SUBPROTOCOL} and {BEARER_SUBPROTOCOL}<token>",
            )
            return
        try:
            viewer = await authenticate(token=token, now=clock())
        except DomainError as error:
            await refuse(CLOSE_UNAUTHENTICATED, error.message)
            return
        try:
            server.policy(doc_name)  # a name no policy serves
            access = await access_for(viewer, doc_name)  # raises for a missing document
        except UnknownDocument as error:
            await refuse(CLOSE_UNKNOWN_DOCUMENT, str(error))
            return
        if access is None:
            await refuse(
                CLOSE_FORBIDDEN,
                f"{viewer.username} may not open {doc_name}; ask for an assignment",
            )
            return
        acks = websocket.query_params.get("ack", "") == "1"
        channel = WebSocketChannel(websocket)
        if metrics is None:
            await server.serve(doc_name, channel, access=access, acks=acks)
            return
        with metrics.connections_open.track_inprogress():
            await server.serve(doc_name, channel, access=access, acks=acks)

    return WebSocketRoute("/sync/{doc:path}", endpoint)
