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

Photos (``add_photo``) work offline too: the bytes are kept next to the local store, the photo
id (the SHA-256 of the bytes) goes into the check's ``photos`` like any edit, and the photo
outbox remembers what is still to deliver. ``upload_photos()`` delivers them through GraphQL
(``requestUpload``, a PUT of the bytes to the ticket, ``confirmUpload``), each content once;
``run`` does it after the documents' first sync, and again whenever a photo is added.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import anyio
import httpx
from pycrdt import Array, Doc, Map
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from approval.fieldwork.documents import (
    AGENCY_ROOT,
    CHECK_RESULT_LABELS,
    DOCUMENT_ROOTS,
    ENTRY_KIND_LABELS,
    ENTRY_KINDS,
    INSPECTION_ROOT,
    MAX_PHOTOS,
    LayoutError,
    check_container,
    parse_doc_name,
    validate_agency,
    validate_inspection,
)
from clients.field import wire
from clients.field.photos import (
    CHUNK,
    CONFIRM_UPLOAD,
    LOGIN_ERRORS,
    PERMANENT,
    REQUEST_UPLOAD,
    SEND_AGAIN,
    NotAPhoto,
    PhotoFolder,
    inspection_global_id,
    plain_file_name,
)
from clients.field.store import (
    PENDING_STATES,
    REFUSED,
    SENT,
    DocStatus,
    LocalStore,
    PhotoEntry,
    PhotoSummary,
)

log = logging.getLogger("onewindow.field")

EMPTY_UPDATE = b"\x00\x00"
COMPACT_AFTER = 200  # updates of one document kept before a synced history is compacted
RESULT_LABELS: dict[str, str] = {
    outcome.value: label for outcome, label in CHECK_RESULT_LABELS.items()
}
"""Check results as stored (pass, fail, not_applicable, rectify) -> the label people read."""

PHOTOS = "photos"
"""The name ``run`` gives the photo uploads in ``on_error``."""

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


PHOTO_OUTCOME_LABELS = {
    "uploaded": "已上传",
    "already": "已上传",
    "refused": "已拒绝",
    "failed": "待上传",
}
"""What became of a photo in an upload round -> the label people read."""

PHOTO_STEPS = 3  # tickets asked for one photo in one round, at most


@dataclass(frozen=True)
class PhotoOutcome:
    """What became of one photo in an upload round.

    ``outcome``: ``uploaded`` (its bytes were sent and confirmed), ``already`` (the server had
    these bytes: confirmed, nothing sent), ``refused`` (for good, ``message`` says why: never
    tried again) or ``failed`` (tried again later)."""

    entry: PhotoEntry
    outcome: str
    message: str = ""
    index: int = 0  # 1-based place in the round
    total: int = 0  # photos in the round

    @property
    def label(self) -> str:
        return PHOTO_OUTCOME_LABELS[self.outcome]


@dataclass
class PhotoRound:
    """One ``upload_photos`` round."""

    uploaded: int = 0  # bytes sent (PUT) and confirmed
    already: int = 0  # confirmed without sending: the server had the bytes
    puts: int = 0  # photos whose bytes were sent (one PUT, or one per part)
    refused: list[PhotoOutcome] = field(default_factory=list)
    failed: list[PhotoOutcome] = field(default_factory=list)


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
        if code in LOGIN_ERRORS:
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
    setup { code companyName businessType { name } }
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
        object_transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 20.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
    ) -> None:
        """``http_transport`` carries GraphQL and the PUTs to the server's own upload URLs;
        ``object_transport`` the PUTs to presigned URLs of another host (S3, MinIO). None:
        the real network."""
        self.base_url = base_url
        self.token = token
        self.store = LocalStore(store_path)
        self.username = username or self.store.get_setting("username") or ""
        self._connect = connect
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._http_transport = http_transport
        self._object_transport = object_transport
        self.photo_folder = PhotoFolder(self.store.photo_folder)
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._docs: dict[str, Doc] = {}
        self._subscriptions: dict[str, Any] = {}
        self._remote = False  # True while applying the server's updates
        self._changed: dict[str, asyncio.Event] = {}
        self._stop = asyncio.Event()
        self._photos_added = asyncio.Event()
        self._photo_turn = asyncio.Lock()  # one upload round at a time

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

    def _compact(self, doc_name: str) -> None:
        """Once everything is acknowledged, a long history becomes one update of the whole
        document: reopening stays fast and the file stops growing with every edit."""
        if self.store.update_count(doc_name) > COMPACT_AFTER:
            self.store.compact(doc_name, self.open(doc_name).get_update())

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

    def _record(
        self, doc_name: str, edit: Callable[[Doc], None], *, department: str | None
    ) -> None:
        """Apply ``edit`` to the local document after the server's own layout rules
        (``approval.fieldwork.documents``) accepted it on a copy: a value the server would
        refuse is refused here at once, before it is recorded, with the same reason."""
        kind, _ = parse_doc_name(doc_name)
        doc, _ = self._container(doc_name, lambda d: d.get(DOCUMENT_ROOTS[kind], type=Map))
        after: Doc = Doc()
        after.apply_update(doc.get_update())
        try:
            with after.transaction():
                edit(after)
            if kind == "inspection":
                validate_inspection(
                    doc, after, department_code=department, role="inspector", writable=True
                )
            else:
                validate_agency(doc, after, role="agent", writable=True)
        except LayoutError as error:
            raise FieldError(f"not recorded: {error.reason}") from None
        with doc.transaction():
            edit(doc)

    def record_check(
        self,
        doc_name: str,
        department: str,
        check: str,
        result: str,
        *,
        note: str | None = None,
        measured: dict[str, float] | None = None,
    ) -> None:
        """Set one check's result (pass/fail/not_applicable/rectify), note and measurements,
        with who and when; the check's containers come from the server's layout. Photos go
        through ``add_photo``, which also queues their upload. Checked first by the server's
        layout rules (``FieldError`` with their reason)."""
        if result not in RESULT_LABELS:
            allowed = ", ".join(f"{k} ({v})" for k, v in RESULT_LABELS.items())
            raise FieldError(f"result {result!r} is not one of {allowed}")
        _, item = self._container(doc_name, lambda d: check_container(d, department, check))
        if not isinstance(item.get("measured"), Map):
            raise FieldError(
                f"{doc_name}: check {department}/{check} lacks its measured container; "
                "sync to get the server's layout"
            )
        at = self._clock().isoformat()

        def edit(doc: Doc) -> None:
            target = check_container(doc, department, check)
            target["result"] = result
            if note is not None:
                target["note"] = note
            measured_map = target["measured"]
            for name, value in (measured or {}).items():
                measured_map[name] = float(value)
            target["by"] = self.username
            target["at"] = at

        self._record(doc_name, edit, department=department)

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

        self._container(doc_name, find)
        key = str(uuid.uuid4())
        values: dict[str, Any] = {"description": description, "done": False}
        if due is not None:
            values["due"] = due.isoformat()

        def edit(doc: Doc) -> None:
            find(doc)[key] = Map(values)

        self._record(doc_name, edit, department=department)
        return key

    def add_agency_entry(
        self, doc_name: str, kind: str, text: str, *, due: date | None = None
    ) -> str:
        """A new entry (visit/call/todo) of an agency document, keyed by a fresh UUID."""
        if kind not in ENTRY_KINDS:
            allowed = ", ".join(f"{k} ({ENTRY_KIND_LABELS[k]})" for k in ENTRY_KINDS)
            raise FieldError(f"entry kind {kind!r} is not one of {allowed}")
        self._container(doc_name, lambda d: d.get(AGENCY_ROOT, type=Map))
        key = str(uuid.uuid4())
        values: dict[str, Any] = {
            "kind": kind,
            "text": text,
            "at": self._clock().isoformat(),
            "done": False,
        }
        if due is not None:
            values["due"] = due.isoformat()

        def edit(doc: Doc) -> None:
            doc.get(AGENCY_ROOT, type=Map)[key] = Map(values)

        self._record(doc_name, edit, department=None)
        return key

    # --- photos ----------------------------------------------------------------------------

    def add_photo(
        self,
        doc_name: str,
        department: str,
        check: str,
        photo: str | os.PathLike[str] | bytes,
        *,
        content_type: str | None = None,
        file_name: str | None = None,
    ) -> str:
        """Attach a photo (a file's path, or its bytes) to a check; works offline. Returns the
        photo id, the SHA-256 of the bytes.

        The bytes are copied next to the local store (one copy per content), the id is added
        to the check's ``photos`` (once; the change goes to the outbox like any edit) and the
        photo is queued for ``upload_photos``. The type is sniffed from the bytes: JPEG, PNG
        or WebP, anything else is refused (``content_type``, if given, must agree)."""
        source = None if isinstance(photo, bytes | bytearray | memoryview) else Path(photo)
        doc, item = self._container(doc_name, lambda d: check_container(d, department, check))
        photo_list = item.get("photos")
        if not isinstance(photo_list, Array):
            raise FieldError(
                f"{doc_name}: check {department}/{check} lacks its photos container; "
                "sync to get the server's layout"
            )
        try:
            if source is not None:
                copied = self.photo_folder.add_file(source)
            else:
                assert not isinstance(photo, str | os.PathLike)
                copied = self.photo_folder.add_bytes(bytes(photo))
        except (NotAPhoto, FileNotFoundError) as error:
            raise FieldError(str(error)) from None
        except OSError as error:
            raise FieldError(
                f"cannot keep a copy of the photo in {self.photo_folder.root} ({error}); "
                "free some space on this tablet and attach it again"
            ) from None
        photo_id = copied.photo_id
        try:
            wanted = (content_type or "").split(";", 1)[0].strip().lower()
            if wanted and wanted != copied.content_type:
                raise FieldError(
                    f"the photo's bytes are {copied.content_type}, not {wanted}; the type comes "
                    "from the bytes, leave it out"
                )
            present = list(photo_list.to_py() or [])
            if photo_id not in present and len(present) >= MAX_PHOTOS:
                raise FieldError(
                    f"check {department}/{check} has {len(present)} photos already, at most "
                    f"{MAX_PHOTOS}"
                )
            given = file_name if file_name is not None else (source.name if source else "")
            with self.store.transaction():
                self.store.add_photo(
                    photo_id=photo_id,
                    doc_name=doc_name,
                    department=department,
                    check=check,
                    file_name=plain_file_name(given, photo_id, copied.content_type),
                    content_type=copied.content_type,
                    size_bytes=copied.size_bytes,
                    at=self._clock(),
                )
                if photo_id not in present:
                    with doc.transaction():
                        photo_list.append(photo_id)
        finally:
            if not self.store.photo_needed(photo_id):
                self.photo_folder.delete(photo_id)  # refused above, or delivered already
        self._photos_added.set()
        return photo_id

    def photos(self, doc_name: str | None = None) -> list[PhotoEntry]:
        """The photo outbox (of one document): every photo attached here, oldest first."""
        return self.store.photos(doc_name)

    def photo_summary(self) -> PhotoSummary:
        """Photos waiting to upload, refused and uploaded on this tablet, and the last error."""
        return self.store.photo_summary()

    def retry_refused_photos(self) -> int:
        """Queue the refused photos again (e.g. once the assignment was corrected)."""
        refused = self.store.photos(states=[REFUSED])
        for entry in refused:
            self.store.photo_retry(entry.id)
        if refused:
            self._photos_added.set()
        return len(refused)

    def forget_refused_photos(self) -> int:
        """Drop the refused photos from the outbox and their copies (the ids stay on their
        checks, shown as not uploaded)."""
        refused = self.store.photos(states=[REFUSED])
        for entry in refused:
            self.store.forget_photo(entry.id)
            if not self.store.photo_needed(entry.photo_id):
                self.photo_folder.delete(entry.photo_id)
        return len(refused)

    async def upload_photos(
        self, *, on_photo: Callable[[PhotoOutcome], None] | None = None
    ) -> PhotoRound:
        """Deliver every queued photo: ask for a ticket, PUT the bytes, confirm; then forget
        the local copy. Bytes the server has already are confirmed without sending them, a
        photo confirmed already is skipped, one sent before a restart is only confirmed.

        A refusal for good (the server's code and message) is kept and reported in the round,
        never retried; a photo that failed for a passing reason is in ``failed`` and is tried
        again next round. Raises SyncError (recorded as the photo's last error) when the
        network, the server or its file storage is not there: the next round carries on."""
        async with self._photo_turn:
            queued = self.store.photos(states=PENDING_STATES)
            round_ = PhotoRound()
            for index, queued_entry in enumerate(queued, start=1):
                entry = self.store.photo(queued_entry.id)
                if entry is None or not entry.pending:
                    continue
                try:
                    outcome = await self._deliver(entry, round_)
                except SyncError as error:
                    self.store.photo_failed(entry.id, str(error), self._clock())
                    raise
                outcome = PhotoOutcome(
                    self.store.photo(entry.id) or entry,
                    outcome.outcome,
                    outcome.message,
                    index,
                    len(queued),
                )
                if outcome.outcome == "uploaded":
                    round_.uploaded += 1
                elif outcome.outcome == "already":
                    round_.already += 1
                elif outcome.outcome == "refused":
                    round_.refused.append(outcome)
                else:
                    round_.failed.append(outcome)
                if on_photo is not None:
                    on_photo(outcome)
            return round_

    async def _photo_call(self, query: str, variables: dict[str, Any], name: str) -> Any:
        try:
            data = await graphql(
                self.base_url,
                query,
                variables,
                token=self.token,
                transport=self._http_transport,
                http_timeout=self.timeout,
            )
        except SyncError:
            raise
        except FieldError as error:
            raise SyncError(f"{error}; the photos stay on this tablet and are sent later") from None
        payload = data.get(name)
        if not isinstance(payload, dict):
            raise SyncError(f"the server answered {name} without a payload; is it a OneWindow?")
        return payload

    async def _deliver(self, entry: PhotoEntry, round_: PhotoRound) -> PhotoOutcome:
        _, inspection_id = parse_doc_name(entry.doc_name)
        upload_id = entry.upload_id if entry.state == SENT else None
        sent = upload_id is not None  # the bytes went out before a restart
        for _ in range(PHOTO_STEPS):
            if upload_id is None:
                asked = await self._photo_call(
                    REQUEST_UPLOAD,
                    {
                        "input": {
                            "kind": "PHOTO",
                            "sha256": entry.photo_id,
                            "sizeBytes": entry.size_bytes,
                            "contentType": entry.content_type,
                            "fileName": entry.file_name,
                            "check": {
                                "inspectionId": inspection_global_id(inspection_id),
                                "department": entry.department,
                                "checkCode": entry.check,
                            },
                        }
                    },
                    "requestUpload",
                )
                if asked.get("errors"):
                    return self._photo_error(entry, asked["errors"][0])
                upload = asked.get("upload") or {}
                ticket = asked.get("ticket")
                if ticket is None:
                    if upload.get("status") == "CONFIRMED":
                        return self._photo_done(entry, "already")
                    raise SyncError("the server gave no upload ticket; try again later")
                damaged = self._local_copy_problem(entry)
                if damaged is not None:
                    return self._photo_refuse(entry, damaged)
                status = await self._put(ticket, entry)
                if status in (403, 404):  # the ticket is no longer valid: ask for another
                    continue
                if status == 413:
                    return self._photo_fail(
                        entry, "the file storage found the file larger than its ticket allows"
                    )
                if not 200 <= status < 300:
                    return self._photo_fail(entry, f"the file storage answered HTTP {status}")
                round_.puts += 1
                upload_id = str(upload["id"])
                sent = True
                self.store.photo_sent(entry.id, upload_id)
            confirmed = await self._photo_call(CONFIRM_UPLOAD, {"id": upload_id}, "confirmUpload")
            errors = confirmed.get("errors") or []
            if not errors:
                return self._photo_done(entry, "uploaded" if sent else "already")
            code = str(errors[0].get("code") or "")
            if code in SEND_AGAIN or (code == "NOT_FOUND" and entry.upload_id == upload_id):
                # the bytes did not arrive whole, or the ticket (or the upload, unknown to
                # this server now) is gone: send them again with a fresh ticket
                log.info("photo %s: %s, sending it again", entry.photo_id[:12], code)
                self.store.photo_requeued(entry.id)
                upload_id = None
                if code in ("SIZE_MISMATCH", "HASH_MISMATCH"):
                    damaged = self._local_copy_problem(entry, verify=True)
                    if damaged is not None:
                        return self._photo_refuse(entry, damaged)
                continue
            return self._photo_error(entry, errors[0])
        return self._photo_fail(
            entry, f"not delivered after {PHOTO_STEPS} tickets; it is tried again later"
        )

    def _local_copy_problem(self, entry: PhotoEntry, *, verify: bool = False) -> str | None:
        """Why the kept copy cannot be sent (gone, or no longer the photo's bytes), or None."""
        path = self.photo_folder.path(entry.photo_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return (
                f"the copy kept on this tablet ({path}) is gone; attach the photo again "
                "(its id stays on the check until then, shown as not uploaded)"
            )
        if size != entry.size_bytes or (
            verify and self.photo_folder.digest(entry.photo_id) != entry.photo_id
        ):
            return (
                f"the copy kept on this tablet ({path}) is damaged (its bytes changed); "
                "attach the photo again"
            )
        return None

    async def _put(self, ticket: dict[str, Any], entry: PhotoEntry) -> int:
        """Send the kept copy as the ticket says: the whole file to its URL, or each part to
        its own (large files on S3). The HTTP status of the first PUT not answered 2xx (or
        200), or SyncError when the storage cannot be reached or fails (5xx)."""
        method = str(ticket.get("method") or "PUT")
        headers = {str(h["name"]): str(h["value"]) for h in ticket.get("headers") or []}
        if ticket.get("url"):
            return await self._put_range(
                str(ticket["url"]), method, headers, entry, 0, entry.size_bytes
            )
        parts = sorted(ticket.get("parts") or [], key=lambda part: int(part["number"]))
        if not parts or sum(int(part["size"]) for part in parts) != entry.size_bytes:
            raise SyncError(
                "the server's upload ticket names no address for the whole file nor parts "
                "that make it up; the photo stays on this tablet and is sent later"
            )
        for part in parts:
            status = await self._put_range(
                str(part["url"]), method, headers, entry, int(part["offset"]), int(part["size"])
            )
            if not 200 <= status < 300:
                return status
        return 200

    async def _put_range(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        entry: PhotoEntry,
        offset: int,
        size: int,
    ) -> int:
        """PUT ``size`` bytes of the kept copy from ``offset`` to ``url``, streamed."""
        base = http_base(self.base_url)
        transport = self._http_transport
        if url.startswith("/"):
            url = base + url
        elif urlsplit(url)[:2] != urlsplit(base)[:2]:
            transport = self._object_transport  # a presigned URL of another host
        sent_headers = {**headers, "Content-Length": str(size)}  # never chunked: S3 refuses it
        path = self.photo_folder.path(entry.photo_id)

        async def body() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as handle:
                await handle.seek(offset)
                left = size
                while left > 0:
                    chunk = await handle.read(min(CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    yield chunk

        where = urlsplit(url).netloc or url
        try:
            async with httpx.AsyncClient(transport=transport, timeout=self.timeout) as client:
                response = await client.request(method, url, content=body(), headers=sent_headers)
        except httpx.HTTPError as error:
            raise SyncError(
                f"cannot send the photo to {where} ({type(error).__name__}: {error}); it stays "
                "on this tablet and is sent when the network is back"
            ) from None
        if response.status_code >= 500:
            raise SyncError(
                f"the file storage at {where} answered HTTP {response.status_code}; the photo "
                "stays on this tablet and is sent later"
            )
        if not 200 <= response.status_code < 300:
            log.warning(
                "photo %s: PUT answered %s: %s",
                entry.photo_id[:12],
                response.status_code,
                response.text[:200],
            )
        return response.status_code

    def _photo_error(self, entry: PhotoEntry, error: dict[str, Any]) -> PhotoOutcome:
        """A payload error of requestUpload/confirmUpload: a refusal for good, a reason to stop
        the round (login, storage), or a failure of this photo that may pass."""
        code = str(error.get("code") or "")
        message = str(error.get("message") or code)
        if code in LOGIN_ERRORS:
            raise NotAuthenticated(
                f"the server did not accept your login ({message}); log in again with "
                "`onewindow-field login` (your photos stay on this tablet)"
            )
        if code == "STORAGE_UNAVAILABLE":
            raise SyncError(
                f"the server's file storage is unavailable ({message}); the photos stay on "
                "this tablet and are sent later"
            )
        if code in PERMANENT:
            return self._photo_refuse(entry, f"{message} ({code})")
        return self._photo_fail(entry, f"{message} ({code})")

    def _photo_done(self, entry: PhotoEntry, outcome: str) -> PhotoOutcome:
        self.store.photo_done(entry.id, self._clock())
        if not self.store.photo_needed(entry.photo_id):
            self.photo_folder.delete(entry.photo_id)
        log.info("photo %s (%s): %s", entry.photo_id[:12], entry.file_name, outcome)
        return PhotoOutcome(entry, outcome)

    def _photo_refuse(self, entry: PhotoEntry, reason: str) -> PhotoOutcome:
        self.store.photo_refused(entry.id, reason, self._clock())
        log.warning("photo %s (%s) refused: %s", entry.photo_id[:12], entry.file_name, reason)
        return PhotoOutcome(entry, "refused", reason)

    def _photo_fail(self, entry: PhotoEntry, reason: str) -> PhotoOutcome:
        self.store.photo_failed(entry.id, reason, self._clock())
        log.warning("photo %s (%s) not uploaded: %s", entry.photo_id[:12], entry.file_name, reason)
        return PhotoOutcome(entry, "failed", reason)

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
        on_photo: Callable[[PhotoOutcome], None] | None = None,
        photos: bool = True,
    ) -> None:
        """Keep ``doc_names`` synced until ``stop()``: live edits go out as they are made,
        reconnecting with backoff. ``on_error(doc, error, delay)`` hears of each failure
        (delay None: not retried, e.g. the login expired).

        With ``photos``, queued photos are uploaded once every document had its first sync
        (or its first failure), and whenever a photo is added; a failed round is tried again
        with the same backoff. ``on_photo`` hears of each photo, ``on_error`` of a failed
        round with the name ``PHOTOS``."""
        self._stop.clear()
        names = list(dict.fromkeys(doc_names))
        waiting = set(names)
        first_round = asyncio.Event()

        def settled(name: str) -> None:
            waiting.discard(name)
            if not waiting:
                first_round.set()

        def result_seen(result: SyncResult) -> None:
            settled(result.doc_name)
            if on_result is not None:
                on_result(result)

        def error_seen(name: str, error: SyncError, delay: float | None) -> None:
            settled(name)
            if on_error is not None:
                on_error(name, error, delay)

        if not waiting:
            first_round.set()
        documents = [
            asyncio.create_task(self._keep(name, result_seen, error_seen), name=f"sync {name}")
            for name in names
        ]
        tasks = list(documents)
        if photos:
            tasks.append(
                asyncio.create_task(
                    self._keep_photos(first_round, on_photo, on_error), name="sync photos"
                )
            )
        try:
            if documents:
                await asyncio.gather(*documents)
                # Every document stopped (asked to, or for good): the photos stop with them.
                self.stop()
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
            await self._until_stopped_or(self._sleep_coro(delay))

    async def _keep_photos(
        self,
        first_round: asyncio.Event,
        on_photo: Callable[[PhotoOutcome], None] | None,
        on_error: Callable[[str, SyncError, float | None], None] | None,
    ) -> None:
        """Upload photos while ``run`` runs: after the documents' first round, whenever one is
        added, and after a failure with backoff (nothing happens while none is queued)."""
        await self._until_stopped_or(first_round.wait())
        attempt = 0
        while not self._stop.is_set():
            self._photos_added.clear()
            if self.store.photo_summary().pending:
                failure: SyncError | None = None
                try:
                    done = await self.upload_photos(on_photo=on_photo)
                    if done.failed:
                        failure = SyncError(
                            f"{len(done.failed)} photo(s) not uploaded: {done.failed[0].message}"
                        )
                except SyncError as error:
                    failure = error
                if failure is not None:
                    if not failure.retry:
                        if on_error is not None:
                            on_error(PHOTOS, failure, None)
                        return
                    delay = backoff_delay(
                        attempt, self._rng, base=self.backoff_base, cap=self.backoff_cap
                    )
                    attempt += 1
                    if on_error is not None:
                        on_error(PHOTOS, failure, delay)
                    await self._until_stopped_or(self._sleep_coro(delay))
                    continue
                attempt = 0
            await self._until_stopped_or(self._photos_added.wait())

    async def _until_stopped_or(self, waiting: Awaitable[Any]) -> None:
        """Wait for ``waiting`` unless ``stop()`` comes first."""
        stopping = asyncio.create_task(self._stop.wait())
        other = asyncio.ensure_future(waiting)
        try:
            await asyncio.wait({stopping, other}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopping, other):
                task.cancel()
            await asyncio.gather(stopping, other, return_exceptions=True)

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
        held: set[int] = set()  # numbers the server holds for missing dependencies
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
                        self._compact(doc_name)
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
                    held.discard(message.number)
                    ids = numbered.pop(message.number, [])
                    self.store.acknowledge(ids)
                    result.acknowledged += len(ids)
                elif isinstance(message, wire.HeldMessage):
                    # the server lacks something it builds on: send the whole state; the held
                    # update is acked or refused by its number once that arrives
                    held.add(message.number)
                    await send_update(wire.sync_step2(self.open(doc_name).get_update()), [])
                elif isinstance(message, wire.AckUpToMessage):
                    # numbers grow in insertion order; refused ones were popped by their error,
                    # held ones wait for their own answer
                    settled = []
                    for number in numbered:
                        if number > message.number:
                            break
                        if number not in held:
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
                    held.discard(message.number)
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
