"""The field client: local documents that work offline, synced with the server when it is there.

``FieldClient.open(doc)`` gives the local pycrdt ``Doc``; every local transaction's update is
written to the local store's outbox before anything else happens. ``sync(doc)`` connects to
``/sync/{doc}?ack=1`` and speaks y-websocket with the OneWindow acknowledgements: it sends the
outbox (each update numbered as the server counts them), answers the server's sync step 1,
applies what the server sends, and marks an outbox update sent when an ack covers it (the
server acknowledges a committed group at once: "ack up to N", see ``wire``). A refused
update stays in the local document (a CRDT cannot take it back), so after a refusal the client
reports the server's reason, drops its local state and resyncs from the server's: **call
``open(doc)`` again afterwards**, the old ``Doc`` object is stale.

``run(docs)`` keeps documents synced: it reconnects after a lost connection with exponential
backoff and full jitter (delay = rng() x min(cap, base x 2^attempt)) until ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pycrdt import Array, Doc, Map
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from approval.documents import (
    AGENCY_ROOT,
    CHECK_RESULT_LABELS,
    ENTRY_KIND_LABELS,
    ENTRY_KINDS,
    INSPECTION_ROOT,
    LayoutError,
    check_container,
)
from clients.field import wire
from clients.field.store import DocStatus, LocalStore

log = logging.getLogger("onewindow.field")

EMPTY_UPDATE = b"\x00\x00"
RESULT_LABELS: dict[str, str] = {
    outcome.value: label for outcome, label in CHECK_RESULT_LABELS.items()
}
"""Check results as stored (pass, fail, not_applicable, rectify) -> the label people read."""

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_DOCUMENT = 4404


class WebSocket(Protocol):
    """What the client needs of a websocket connection (websockets' ClientConnection has it)."""

    async def send(self, message: bytes) -> None: ...

    async def recv(self) -> bytes | str: ...

    async def close(self) -> None: ...


Connect = Callable[[str, dict[str, str]], Awaitable[WebSocket]]
Sleep = Callable[[float], Awaitable[None]]


async def connect_websocket(url: str, headers: dict[str, str]) -> WebSocket:
    """The default ``connect``: a real websocket (websockets' asyncio client)."""
    connection = await websockets_connect(
        url, additional_headers=headers, open_timeout=10, max_size=16 << 20
    )
    return connection


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- errors --------------------------------------------------------------------------------


class FieldError(Exception):
    """Something the person can act on; the message says what was wrong and what to do."""


class SyncError(FieldError):
    """A sync did not finish. ``retry``: trying again later may help (the network, the server)."""

    retry = True


class NotAuthenticated(SyncError):
    retry = False


class NotAllowed(SyncError):
    retry = False


class UnknownDocument(SyncError):
    retry = False


@dataclass(frozen=True)
class Refusal:
    """An update the server did not keep, with its reason."""

    number: int
    code: str
    reason: str

    def __str__(self) -> str:
        return f"the server refused a change ({self.code}): {self.reason}"


@dataclass
class SyncResult:
    doc_name: str
    sent: int = 0  # outbox updates sent
    acknowledged: int = 0  # outbox updates the server acknowledged
    received: int = 0  # updates received from the server
    refusals: list[Refusal] = field(default_factory=list)
    dropped: int = 0  # pending local changes dropped after a refusal


def backoff_delay(attempt: int, rng: Callable[[], float], *, base: float, cap: float) -> float:
    """Full jitter: a uniform delay up to ``min(cap, base * 2**attempt)``."""
    return rng() * min(cap, base * (2 ** min(attempt, 60)))


def websocket_base(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://")
    if base.startswith(("ws://", "wss://")):
        return base
    raise FieldError(
        f"server address {base_url!r} must start with http:// or https://, "
        "e.g. https://onewindow.example.gov.cn"
    )


def http_base(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("wss://"):
        return "https://" + base.removeprefix("wss://")
    if base.startswith("ws://"):
        return "http://" + base.removeprefix("ws://")
    return base


# --- GraphQL -------------------------------------------------------------------------------


async def graphql(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    http_timeout: float = 20.0,
) -> dict[str, Any]:
    """POST a query to ``{base_url}/graphql``; the ``data``, or FieldError with the reason."""
    url = http_base(base_url) + "/graphql"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(transport=transport, timeout=http_timeout) as client:
            response = await client.post(
                url, json={"query": query, "variables": variables or {}}, headers=headers
            )
    except httpx.HTTPError as error:
        raise SyncError(
            f"cannot reach {url} ({type(error).__name__}: {error}); check the network and "
            "the server address, then try again"
        ) from None
    if response.status_code != 200:
        raise SyncError(
            f"{url} answered HTTP {response.status_code}; check the server address "
            "(it is the address of the OneWindow service) and try again"
        )
    try:
        body = response.json()
    except ValueError:
        raise SyncError(f"{url} did not answer with JSON; is this a OneWindow server?") from None
    errors = body.get("errors") or []
    if errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code", "")
        if code == "UNAUTHENTICATED":
            raise NotAuthenticated(
                f"the server does not accept your login ({first.get('message')}); "
                "log in again with `onewindow-field login`"
            )
        raise FieldError(f"the server refused the request: {first.get('message')}")
    data: dict[str, Any] = body.get("data") or {}
    return data


LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    token expiresAt viewer { username displayName role }
    errors { code message field }
  }
}
"""

MY_INSPECTIONS = """
query MyInspections($openOnly: Boolean!) {
  myInspections(openOnly: $openOnly) {
    id kind kindLabel status statusLabel due scheduledFor documentName round
    project { name }
    departments { department { code name } }
  }
}
"""


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: str
    username: str
    display_name: str


async def login(
    base_url: str,
    username: str,
    password: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Login:
    data = await graphql(
        base_url,
        LOGIN,
        {"username": username, "password": password},
        transport=transport,
    )
    payload = data.get("login") or {}
    if payload.get("errors"):
        messages = "; ".join(str(e.get("message")) for e in payload["errors"])
        raise FieldError(f"login refused: {messages}; check the user name and password")
    viewer = payload.get("viewer") or {}
    return Login(
        token=str(payload["token"]),
        expires_at=str(payload.get("expiresAt") or ""),
        username=str(viewer.get("username") or username),
        display_name=str(viewer.get("displayName") or username),
    )


# --- the client ----------------------------------------------------------------------------


class FieldClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        store_path: str | Path,
        *,
        connect: Connect = connect_websocket,
        clock: Callable[[], datetime] = utc_now,
        rng: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        username: str = "",
        http_transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 20.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.store = LocalStore(store_path)
        self.username = username or self.store.get_setting("username") or ""
        self._connect = connect
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._http_transport = http_transport
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._docs: dict[str, Doc] = {}
        self._subscriptions: dict[str, Any] = {}
        self._remote = False  # True while applying the server's updates
        self._changed: dict[str, asyncio.Event] = {}
        self._stop = asyncio.Event()

    def close(self) -> None:
        for name in list(self._docs):
            self._forget(name)
        self.store.close()

    # --- documents -------------------------------------------------------------------------

    def open(self, doc_name: str) -> Doc:
        """The local document (built from the store on first use); edit it offline freely."""
        doc = self._docs.get(doc_name)
        if doc is not None:
            return doc
        doc = Doc()
        self._remote = True
        try:
            for update in self.store.history(doc_name):
                doc.apply_update(update)
        finally:
            self._remote = False
        self._subscriptions[doc_name] = doc.observe(
            lambda event: self._on_local(doc_name, bytes(event.update))
        )
        self._docs[doc_name] = doc
        return doc

    def _on_local(self, doc_name: str, update: bytes) -> None:
        if self._remote or update == EMPTY_UPDATE:
            return
        self.store.add_local(doc_name, update)
        event = self._changed.get(doc_name)
        if event is not None:
            event.set()

    def _apply_remote(self, doc_name: str, update: bytes) -> None:
        doc = self.open(doc_name)
        self._remote = True
        try:
            doc.apply_update(update)
        finally:
            self._remote = False
        self.store.add_remote(doc_name, update)

    def _forget(self, doc_name: str) -> None:
        doc = self._docs.pop(doc_name, None)
        subscription = self._subscriptions.pop(doc_name, None)
        if doc is not None and subscription is not None:
            doc.unobserve(subscription)

    def status(self, doc_name: str) -> DocStatus:
        return self.store.status(doc_name)

    def documents(self) -> list[str]:
        return self.store.documents()

    # --- helpers on the layout -------------------------------------------------------------

    def _container(self, doc_name: str, find: Callable[[Doc], Map[Any]]) -> tuple[Doc, Map[Any]]:
        if not self.store.has(doc_name):
            raise FieldError(
                f"{doc_name} is not on this tablet yet; sync it once while online "
                "(`onewindow-field sync --once`) before recording offline"
            )
        doc = self.open(doc_name)
        try:
            return doc, find(doc)
        except LayoutError as error:
            raise FieldError(f"{error.reason} (in {doc_name}); sync to get the latest") from None

    def record_check(
        self,
        doc_name: str,
        department: str,
        check: str,
        result: str,
        *,
        note: str | None = None,
        measured: dict[str, float] | None = None,
        photos: Sequence[str] = (),
    ) -> None:
        """Set one check's result (pass/fail/not_applicable/rectify), note, measurements and
        photos, with who and when; the check's containers come from the server's layout."""
        if result not in RESULT_LABELS:
            allowed = ", ".join(f"{k} ({v})" for k, v in RESULT_LABELS.items())
            raise FieldError(f"result {result!r} is not one of {allowed}")
        doc, item = self._container(doc_name, lambda d: check_container(d, department, check))
        measured_map = item.get("measured")
        photo_list = item.get("photos")
        if not isinstance(measured_map, Map) or not isinstance(photo_list, Array):
            raise FieldError(
                f"{doc_name}: check {department}/{check} lacks its measured/photos containers; "
                "sync to get the server's layout"
            )
        with doc.transaction():
            item["result"] = result
            if note is not None:
                item["note"] = note
            for name, value in (measured or {}).items():
                measured_map[name] = float(value)
            present = set(photo_list.to_py() or [])
            for photo in photos:
                if photo not in present:
                    photo_list.append(photo)
                    present.add(photo)
            item["by"] = self.username
            item["at"] = self._clock().isoformat()

    def add_rectification(
        self, doc_name: str, department: str, description: str, *, due: date | None = None
    ) -> str:
        """A new rectification item in the department's section, keyed by a fresh UUID."""

        def find(doc: Doc) -> Map[Any]:
            section = doc.get(INSPECTION_ROOT, type=Map).get(department)
            items = section.get("rectifications") if isinstance(section, Map) else None
            if not isinstance(items, Map):
                raise LayoutError(f"{INSPECTION_ROOT}/{department}: no such section")
            return items

        doc, items = self._container(doc_name, find)
        key = str(uuid.uuid4())
        values: dict[str, Any] = {"description": description, "done": False}
        if due is not None:
            values["due"] = due.isoformat()
        with doc.transaction():
            items[key] = Map(values)
        return key

    def add_agency_entry(
        self, doc_name: str, kind: str, text: str, *, due: date | None = None
    ) -> str:
        """A new entry (visit/call/todo) of an agency document, keyed by a fresh UUID."""
        if kind not in ENTRY_KINDS:
            allowed = ", ".join(f"{k} ({ENTRY_KIND_LABELS[k]})" for k in ENTRY_KINDS)
            raise FieldError(f"entry kind {kind!r} is not one of {allowed}")
        doc, entries = self._container(doc_name, lambda d: d.get(AGENCY_ROOT, type=Map))
        key = str(uuid.uuid4())
        values: dict[str, Any] = {
            "kind": kind,
            "text": text,
            "at": self._clock().isoformat(),
            "done": False,
        }
        if due is not None:
            values["due"] = due.isoformat()
        with doc.transaction():
            entries[key] = Map(values)
        return key

    # --- GraphQL ---------------------------------------------------------------------------

    async def my_inspections(self, *, open_only: bool = True) -> list[dict[str, Any]]:
        data = await graphql(
            self.base_url,
            MY_INSPECTIONS,
            {"openOnly": open_only},
            token=self.token,
            transport=self._http_transport,
            http_timeout=self.timeout,
        )
        return list(data.get("myInspections") or [])

    # --- sync ------------------------------------------------------------------------------

    async def sync(self, doc_name: str) -> SyncResult:
        """One round: send the outbox, take the server's state, wait for every ack; raises
        SyncError (status keeps the reason) when it cannot finish."""
        return await self._session(doc_name, stay=False)

    def stop(self) -> None:
        """End ``run`` (its connections close, pending changes stay in the outbox)."""
        self._stop.set()

    async def run(
        self,
        doc_names: Iterable[str],
        *,
        on_result: Callable[[SyncResult], None] | None = None,
        on_error: Callable[[str, SyncError, float | None], None] | None = None,
    ) -> None:
        """Keep ``doc_names`` synced until ``stop()``: live edits go out as they are made,
        reconnecting with backoff. ``on_error(doc, error, delay)`` hears of each failure
        (delay None: not retried, e.g. the login expired)."""
        self._stop.clear()
        tasks = [
            asyncio.create_task(self._keep(name, on_result, on_error), name=f"sync {name}")
            for name in doc_names
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(
        self,
        doc_name: str,
        on_result: Callable[[SyncResult], None] | None,
        on_error: Callable[[str, SyncError, float | None], None] | None,
    ) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                await self._session(doc_name, stay=True, on_synced=on_result)
                continue  # it returns only once stopped
            except SyncError as failure:
                error = failure
                if not error.retry:
                    if on_error is not None:
                        on_error(doc_name, error, None)
                    return
            if self._stop.is_set():
                return
            delay = backoff_delay(attempt, self._rng, base=self.backoff_base, cap=self.backoff_cap)
            attempt += 1
            if on_error is not None:
                on_error(doc_name, error, delay)
            stopping = asyncio.create_task(self._stop.wait())
            sleeping = asyncio.create_task(self._sleep_coro(delay))
            try:
                await asyncio.wait({stopping, sleeping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stopping, sleeping):
                    task.cancel()
                await asyncio.gather(stopping, sleeping, return_exceptions=True)

    async def _sleep_coro(self, delay: float) -> None:
        await self._sleep(delay)

    def _fail(self, doc_name: str, error: SyncError) -> SyncError:
        self.store.failed(doc_name, str(error), self._clock())
        return error

    async def _open_connection(self, doc_name: str) -> WebSocket:
        url = f"{websocket_base(self.base_url)}/sync/{quote(doc_name, safe='/')}?ack=1"
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with asyncio.timeout(self.timeout):
                return await self._connect(url, headers)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            raise self._fail(
                doc_name,
                SyncError(
                    f"cannot reach the sync server at {url.split('?')[0]} "
                    f"({type(error).__name__}: {error or 'timed out'}); your changes are kept "
                    "on this tablet: sync again when the network is back"
                ),
            ) from None

    def _closed_error(self, doc_name: str, ws: WebSocket) -> SyncError:
        code = getattr(ws, "close_code", None)
        reason = getattr(ws, "close_reason", None) or ""
        if code == CLOSE_UNAUTHENTICATED:
            error: SyncError = NotAuthenticated(
                f"the server did not accept your login ({reason}); log in again with "
                "`onewindow-field login` (your changes stay on this tablet)"
            )
        elif code == CLOSE_FORBIDDEN:
            error = NotAllowed(f"{reason}; this tablet keeps your changes until you may sync")
        elif code == CLOSE_UNKNOWN_DOCUMENT:
            error = UnknownDocument(f"{reason}; check the inspection number")
        else:
            error = SyncError(
                f"the connection closed ({code} {reason}); your changes are kept on this "
                "tablet: sync again later"
            )
        return self._fail(doc_name, error)

    async def _session(
        self,
        doc_name: str,
        *,
        stay: bool,
        on_synced: Callable[[SyncResult], None] | None = None,
    ) -> SyncResult:
        ws = await self._open_connection(doc_name)
        result = SyncResult(doc_name)
        changed = self._changed.setdefault(doc_name, asyncio.Event())
        try:
            return await self._exchange(doc_name, ws, result, changed, stay, on_synced)
        except ConnectionClosed:
            raise self._closed_error(doc_name, ws) from None
        except OSError as error:
            raise self._fail(
                doc_name, SyncError(f"the connection broke ({error}); sync again later")
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _exchange(
        self,
        doc_name: str,
        ws: WebSocket,
        result: SyncResult,
        changed: asyncio.Event,
        stay: bool,
        on_synced: Callable[[SyncResult], None] | None,
    ) -> SyncResult:
        doc = self.open(doc_name)
        numbered: dict[int, list[int]] = {}  # update number -> outbox ids it carries
        counter = 0
        last_sent = 0
        answered_step1 = False
        have_step2 = False
        resyncing = False
        must_reset = False
        first_report = True

        async def send_update(frame: bytes, ids: list[int]) -> None:
            nonlocal counter
            counter += 1
            numbered[counter] = ids
            await ws.send(frame)

        async def send_outbox() -> None:
            nonlocal last_sent
            changed.clear()
            for entry in self.store.outbox(doc_name, after=last_sent):
                await send_update(wire.sync_update(entry.data), [entry.id])
                last_sent = entry.id
                result.sent += 1

        await ws.send(wire.sync_step1(doc.get_state()))
        await send_outbox()
        receiving: asyncio.Task[bytes | str] = asyncio.create_task(ws.recv())
        waking = asyncio.create_task(changed.wait())
        # a one-shot sync finishes its round even while ``run`` is being stopped
        stop = self._stop if stay else asyncio.Event()
        stopping = asyncio.create_task(stop.wait())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while True:
                caught_up = have_step2 and answered_step1 and not numbered and not resyncing
                if caught_up and (not stay or first_report or result != SyncResult(doc_name)):
                    if not result.refusals:
                        self.store.synced(doc_name, self._clock())
                    if not stay:
                        return result
                    if on_synced is not None:
                        on_synced(result)
                    first_report = False
                    result = SyncResult(doc_name)
                if stop.is_set():
                    return result
                wait = None if stay and caught_up else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    {receiving, waking, stopping}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise self._fail(
                        doc_name,
                        SyncError(
                            f"the server did not finish the sync within {self.timeout:g} s; "
                            "your changes are kept on this tablet: sync again later"
                        ),
                    )
                if waking in done:
                    await send_outbox()
                    deadline = loop.time() + self.timeout
                    waking = asyncio.create_task(changed.wait())
                if stopping in done:
                    return result
                if receiving not in done:
                    continue
                frame = receiving.result()
                receiving = asyncio.create_task(ws.recv())
                if isinstance(frame, str):
                    continue
                try:
                    message = wire.decode(frame)
                except wire.ProtocolError as error:
                    raise self._fail(
                        doc_name,
                        SyncError(f"the server sent a broken message ({error}); sync again"),
                    ) from None
                if isinstance(message, wire.SyncMessage):
                    if message.kind == wire.SyncType.STEP1:
                        update = self.open(doc_name).get_update(message.payload)
                        await send_update(wire.sync_step2(update), [])
                        answered_step1 = True
                    else:
                        self._apply_remote(doc_name, message.payload)
                        result.received += 1
                        if message.kind == wire.SyncType.STEP2:
                            have_step2 = True
                            resyncing = False
                elif isinstance(message, wire.AckMessage):
                    ids = numbered.pop(message.number, [])
                    self.store.acknowledge(ids)
                    result.acknowledged += len(ids)
                elif isinstance(message, wire.AckUpToMessage):
                    # numbers grow in insertion order; refused ones were popped by their error
                    settled = []
                    for number in numbered:
                        if number > message.number:
                            break
                        settled.append(number)
                    ids = [i for number in settled for i in numbered.pop(number)]
                    self.store.acknowledge(ids)
                    result.acknowledged += len(ids)
                elif isinstance(message, wire.ErrorMessage):
                    refusal = Refusal(message.number, message.code, message.reason)
                    log.warning("%s: %s", doc_name, refusal)
                    if message.number == 0:
                        self._fail(doc_name, SyncError(str(refusal)))
                        continue
                    numbered.pop(message.number, None)
                    result.refusals.append(refusal)
                    must_reset = True
                    self._fail(doc_name, SyncError(f"{refusal}; your local copy was reset"))
                elif isinstance(message, wire.PermissionDeniedMessage):
                    self._fail(doc_name, SyncError(f"the server refused: {message.reason}"))
                if must_reset and not numbered:
                    # every answer is in: drop the local state, take the server's
                    must_reset = False
                    result.dropped += self._reset(doc_name)
                    last_sent = 0
                    have_step2 = False
                    resyncing = True
                    await ws.send(wire.sync_step1(self.open(doc_name).get_state()))
                deadline = loop.time() + self.timeout
        finally:
            for task in (receiving, waking, stopping):
                task.cancel()
            await asyncio.gather(receiving, waking, stopping, return_exceptions=True)

    def _reset(self, doc_name: str) -> int:
        """Forget the local document (refused changes cannot be taken out of a CRDT) and
        start from an empty one that the server's sync step 2 fills."""
        self._forget(doc_name)
        dropped = self.store.replace(doc_name, Doc().get_update())
        self.open(doc_name)
        return dropped
