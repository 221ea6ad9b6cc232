"""A soak of several instances (issue 12): live websocket editors of real inspections and
GraphQL readers of their rows, on real server processes sharing PostgreSQL and Redis.

``bench/sync_bench.py --soak SECONDS`` runs it at full size; ``tests/test_soak.py`` runs the
same code small. The pieces:

- :func:`arrange` (Tortoise open on the database, catalog loaded): a project, one 现场踏勘
  (site check) per document with every department that has a checklist, an inspector of each
  department assigned to all of them, and their tokens;
- :func:`run_soak`: ``plan.instances`` processes of ``python -m server.cli serve`` (the real
  app: ``server.fieldsync.FieldPolicy``, the inspection rules, materialisation of the check and
  rectification rows) cooperating through Redis; ``plan.clients`` websocket clients, client
  ``i`` on instance ``i % instances``, ``plan.per_doc`` consecutive clients on each document
  (each an inspector of another department), each making ``plan.client_rate`` edits a second of
  its section while applying the others'; ``plan.graphql_clients`` HTTP clients reading the
  inspections' check rows through GraphQL on every instance in turn; then every check below;
- :func:`verify`: what was acknowledged against what the log holds. The truth it judges by is
  not the soak's own: the updates each client was told are committed (its acks) against the
  log read from PostgreSQL (snapshot and rows, ``read_log``). An acknowledged update is lost
  when the log's state does not integrate it (``sync.store.integrated``); a connected client
  is wrong when its document differs from the log's;
- the rows: each inspection's check and rectification rows read through GraphQL must end equal
  to what its log holds (``read_inspection``), and the time they took after the last ack is the
  materialisation lag (:func:`rows_equal_logs`);
- every instance's copy of every document, as a fresh client is served it
  (:func:`instance_views`, kept in the result), must equal its log (:func:`views_differing`).

The result's exit code (``SoakResult.exit_code``, the report's last line) is 1 when any check
failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Map
from strawberry.relay import GlobalID
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from approval.catalog.load import load_catalog
from approval.catalog.parse import load_default_catalog
from approval.core.auth import create_user, issue_token, viewer_of
from approval.core.calendar import load_package_calendar
from approval.core.codes import credit_code_with_check
from approval.fieldwork.documents import (
    INSPECTION_ROOT,
    inspection_doc_name,
    read_inspection,
)
from approval.fieldwork.documents import initial_update as layout_update
from approval.fieldwork.inspections import (
    assign_inspectors,
    inspection_layout,
    schedule_site_check,
)
from approval.projects.projects import ProjectApplication, create_project
from bench.support import (
    Process,
    cpu_seconds,
    free_port,
    inspection_edit,
    listening_process,
    print_profile,
    process_memory_kib,
)
from storage.db import close_database, migrate, open_database, recreate_postgres_database
from storage.enums import ProjectType, Role
from storage.models import ChecklistTemplate
from sync import protocol
from sync.protocol import decode_state_vector
from sync.store import integrated

ROOT = Path(__file__).resolve().parent.parent  # the instances import this checkout's code
ROWS_QUERY = """
query($id: ID!) {
  inspection(id: $id) {
    departments {
      department { code }
      checks { code outcome note measured photoIds recordedBy recordedAt }
      rectifications { uuid description due done }
    }
  }
}"""


@dataclass(frozen=True)
class SoakPlan:
    seconds: float
    clients: int = 500
    per_doc: int = 5
    client_rate: float = 0.5  # edits a second per client
    graphql_clients: int = 3
    instances: int = 3
    settle: float = 60.0  # seconds after the edits stop for the acks, convergence and rows

    @property
    def documents(self) -> int:
        return -(-self.clients // self.per_doc)


@dataclass(frozen=True)
class SoakDocument:
    name: str
    inspection_id: int
    layout: bytes  # the server's initial update of the document
    checks: dict[str, list[str]]  # department code -> its check codes


@dataclass(frozen=True)
class Arrangement:
    documents: list[SoakDocument]
    departments: list[str]  # the participating departments, client i writes i % len
    tokens: dict[str, str]  # department code -> its inspector's bearer token
    salt: int  # rectification UUIDs of this arrangement's clients (see inspection_edit)


async def arrange(*, documents: int, now: datetime) -> Arrangement:
    """``documents`` site checks of one new project, with every department that has a
    checklist and an inspector of each assigned; needs the database open and the catalog
    loaded. ``now`` is the instances' (real) time: the tokens are valid for two hours."""
    run = uuid.uuid4().hex[:8]
    clerk_user = await create_user(
        username=f"soak-clerk-{run}",
        password=f"soak-{run}",
        display_name="压测窗口",
        role=Role.WINDOW_CLERK,
    )
    clerk = await viewer_of(clerk_user)
    project = await create_project(
        viewer=clerk,
        form=ProjectApplication(
            name=f"压测项目{run}",
            credit_code=credit_code_with_check("91371400MA3C12345"),
            enterprise_name="德州压测建设有限公司",
            region_code="371402",
            project_type=ProjectType.APPROVAL,
            industry_code="84",
            land_area_m2=Decimal("12000.5"),
            floor_area_m2=Decimal("36000"),
            investment_10k_yuan=Decimal("28000"),
        ),
        now=now,
    )
    departments = sorted(
        {
            str(code)
            for code in await ChecklistTemplate.all().values_list("department__code", flat=True)
        }
    )
    if not departments:
        raise RuntimeError("no department has a checklist: load the catalog first")
    tokens: dict[str, str] = {}
    usernames = []
    for code in departments:
        user = await create_user(
            username=f"soak-{code}-{run}",
            password=f"soak-{run}",
            display_name=f"压测验收员{code}",
            role=Role.INSPECTOR,
            department_code=code,
        )
        usernames.append(user.username)
        tokens[code], _ = await issue_token(user=user, now=now, ttl=timedelta(hours=2))
    made = []
    for _ in range(documents):
        inspection = await schedule_site_check(
            viewer=clerk, project_id=project.id, department_codes=departments, now=now
        )
        await assign_inspectors(
            viewer=clerk, inspection_id=inspection.id, usernames=usernames, now=now
        )
        layout = await inspection_layout(inspection.id)
        made.append(
            SoakDocument(
                name=inspection_doc_name(inspection.id),
                inspection_id=inspection.id,
                layout=layout_update(layout),
                checks={code: list(checks) for code, checks in layout.departments.items()},
            )
        )
    return Arrangement(made, departments, tokens, salt=random.getrandbits(60))


# --- the clients ------------------------------------------------------------------------------


@dataclass
class SoakClient:
    """One live editor: an inspector of ``code`` on ``document`` through instance ``instance``."""

    index: int
    document: SoakDocument
    code: str
    instance: int
    salt: int
    doc: Doc = field(init=False)
    sent: int = 0  # update messages sent (sync step 2 and updates), numbered from 1
    edits: int = 0
    closed_normally: bool = False
    local: bool = False  # inside one of its own edits (the observer records only those)
    ws: ClientConnection | None = None
    connected_at: float = 0.0  # monotonic
    receiver: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.doc = Doc(client_id=2_000_000 + self.index)
        self.doc.apply_update(self.document.layout)
        # number -> (sent at, the edit's update; None: not an edit)
        self.pending: dict[int, tuple[float, bytes | None]] = {}
        self.acked: list[bytes] = []  # the edits the server acknowledged, in order
        self.held: set[int] = set()  # numbers answered "held", not settled yet
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds to its ack)
        self.errors: list[str] = []
        self.made: list[bytes] = []
        self.doc.observe(lambda event: self.made.append(event.update) if self.local else None)

    def edit(self) -> bytes:
        self.local = True
        try:
            with self.doc.transaction():
                inspection_edit(
                    self.doc,
                    self.code,
                    self.index,
                    self.edits,
                    checks=self.document.checks[self.code],
                    salt=self.salt,
                )
        finally:
            self.local = False
        self.edits += 1
        update = b"".join(self.made[-1:])
        self.made.clear()
        return update

    def settle(self, number: int, now: float) -> None:
        """Update ``number`` is committed (or needed nothing stored)."""
        at, update = self.pending.pop(number)
        self.held.discard(number)
        if update is not None:
            self.acked.append(update)
            self.latencies.append((at, now - at))

    def answer(self, message: protocol.Message, now: float) -> bytes | None:
        """Take the server's answer ``message`` (see ``sync.protocol``: "ack up to N" settles
        every update up to N except the held ones; a held update is settled later by an ack of
        its own number, or refused); what to send back, if anything."""
        if isinstance(message, protocol.SyncMessage):
            if message.kind == protocol.SyncType.STEP1:
                return protocol.sync_step2(self.doc.get_update(message.payload))
            self.doc.apply_update(message.payload)
        elif isinstance(message, protocol.AckUpToMessage):  # numbers only grow
            for number in [n for n in self.pending if n <= message.number and n not in self.held]:
                self.settle(number, now)
        elif isinstance(message, protocol.AckMessage):
            if message.number in self.pending:
                self.settle(message.number, now)
        elif isinstance(message, protocol.ErrorMessage):
            self.pending.pop(message.number, None)
            self.held.discard(message.number)
            self.errors.append(
                f"update #{message.number} refused ({message.code}): {message.reason}"
            )
        elif isinstance(message, protocol.PermissionDeniedMessage):
            self.errors.append(f"denied: {message.reason}")
        elif isinstance(message, protocol.HeldMessage):
            self.errors.append(f"update #{message.number} held")
            if message.number in self.pending:
                self.held.add(message.number)
                return protocol.sync_update(self.doc.get_update())  # the whole state again
        return None


async def soak_client(
    client: SoakClient,
    url: str,
    headers: dict[str, str],
    *,
    interval: float,
    until: float,
    gate: asyncio.Semaphore,
) -> None:
    """Connect (at most ``gate`` at once), sync, then one edit every ``interval`` seconds
    until ``until`` (monotonic); the connection stays open for the acks and the convergence
    check."""
    async with gate:
        ws = await connect(
            url, open_timeout=60, max_size=None, compression=None, additional_headers=headers
        )
    client.ws = ws
    client.connected_at = time.monotonic()

    async def send(payload: bytes, *, edit: bytes | None) -> None:
        client.sent += 1
        client.pending[client.sent] = (time.perf_counter(), edit)
        await ws.send(payload)

    async def receive() -> None:
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    client.errors.append(f"a text frame: {frame[:100]!r}")
                    continue
                reply = client.answer(protocol.decode(frame), time.perf_counter())
                if reply is not None:
                    await send(reply, edit=None)
        except ConnectionClosed as closed:
            if not client.closed_normally:
                client.errors.append(f"connection closed: {closed.rcvd}")
            return
        if not client.closed_normally:
            client.errors.append("connection closed by the server")

    client.receiver = receiver = asyncio.create_task(receive())
    await ws.send(protocol.sync_step1(client.doc.get_state()))
    next_at = time.monotonic() + random.uniform(0, interval)  # spread the clients' phases
    while True:
        await asyncio.sleep(max(0.0, min(next_at, until) - time.monotonic()))
        if time.monotonic() >= until or receiver.done():
            break
        update = client.edit()
        await send(protocol.sync_update(update), edit=update)
        next_at += interval


def global_id(inspection_id: int) -> str:
    return str(GlobalID("Inspection", str(inspection_id)))


async def read_rows(http: httpx.AsyncClient, url: str, token: str, inspection_id: int) -> Any:
    """An inspection's check and rectification rows as GraphQL shows them (normalised as
    :func:`rows_of_log`); raises ``RuntimeError`` on an error answer."""
    response = await http.post(
        url,
        json={"query": ROWS_QUERY, "variables": {"id": global_id(inspection_id)}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json() if response.status_code == 200 else {}
    inspection = (body.get("data") or {}).get("inspection")
    if response.status_code != 200 or body.get("errors") or inspection is None:
        raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")
    checks: dict[tuple[str, str], tuple[Any, ...]] = {}
    rectifications: dict[str, tuple[Any, ...]] = {}
    for department in inspection["departments"]:
        code = department["department"]["code"]
        for check in department["checks"]:
            at = check["recordedAt"]
            checks[(code, check["code"])] = (
                check["outcome"],
                check["note"],
                check["measured"],
                check["photoIds"],
                check["recordedBy"],
                datetime.fromisoformat(at) if at else None,
            )
        for item in department["rectifications"]:
            rectifications[item["uuid"]] = (code, item["description"], item["due"], item["done"])
    return checks, rectifications


def rows_of_log(doc: Doc) -> Any:
    """What an inspection's rows must hold once materialised from ``doc``."""
    checks: dict[tuple[str, str], tuple[Any, ...]] = {}
    rectifications: dict[str, tuple[Any, ...]] = {}
    for code, section in read_inspection(doc).items():
        for check in section.checks.values():
            checks[(code, check.code)] = (
                check.result.name if check.result else None,
                check.note,
                dict(check.measured),
                list(check.photos),
                check.by,
                check.at,
            )
        for item in section.rectifications.values():
            due = item.due.isoformat() if isinstance(item.due, date) else None
            rectifications[item.uuid] = (code, item.description, due, item.done)
    return checks, rectifications


async def graphql_poller(
    urls: Sequence[str],
    token: str,
    inspections: Sequence[int],
    *,
    until: float,
    counts: list[int],
    errors: list[str],
) -> None:
    """Read one inspection's rows after another, on every instance in turn, until ``until``."""
    async with httpx.AsyncClient(timeout=30) as http:
        number = random.randrange(len(inspections))
        while time.monotonic() < until:
            url = urls[number % len(urls)]
            try:
                await read_rows(http, url, token, inspections[number % len(inspections)])
                counts[0] += 1
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                errors.append(f"{url}: {error!r}"[:300])
            number += 1
            await asyncio.sleep(0.2)


# --- what the log holds -----------------------------------------------------------------------


async def read_log(database_url: str, doc_name: str) -> Doc:
    """A document as its durable log holds it: the snapshot, then the updates after it."""
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            doc: Doc = Doc()
            snapshot = await connection.fetchrow(
                "SELECT data, upto_id FROM document_snapshot WHERE doc = $1", doc_name
            )
            upto = 0
            if snapshot is not None:
                doc.apply_update(bytes(snapshot["data"]))
                upto = snapshot["upto_id"]
            for row in await connection.fetch(
                "SELECT data FROM document_update WHERE doc = $1 AND id > $2 ORDER BY id",
                doc_name,
                upto,
            ):
                doc.apply_update(bytes(row["data"]))
            return doc
    finally:
        await connection.close()


def content(doc: Doc) -> Any:
    return doc.get(INSPECTION_ROOT, type=Map).to_py() or {}


@dataclass
class Verdict:
    lost: list[str]  # one line per acknowledged update the log does not integrate
    wrong: list[SoakClient]  # still connected, its document differs from its log's


def verify(clients: Sequence[SoakClient], logs: dict[str, Doc]) -> Verdict:
    """Every client's acknowledged edits against its document's log (``logs``, read from the
    database): an acknowledged update the log's state does not integrate is lost; a client
    without errors (still connected) whose document differs from the log's is wrong."""
    lost = []
    for client in clients:
        log = logs[client.document.name]
        state = log.get_state()
        clocks = decode_state_vector(state)
        for number, update in enumerate(client.acked, start=1):
            if not integrated(update, state, clocks):
                lost.append(
                    f"client {client.index} ({client.document.name} through instance "
                    f"{client.instance + 1}): its acknowledged edit {number} of "
                    f"{len(client.acked)} is not in the log (the log holds its clock "
                    f"{clocks.get(client.doc.client_id, 0)})"
                )
    wrong = [
        c for c in clients if not c.errors and content(c.doc) != content(logs[c.document.name])
    ]
    return Verdict(lost, wrong)


async def materialisations(database_url: str, inspections: Sequence[int]) -> int:
    """How many materialisations of ``inspections`` changed rows (each records an audit event
    ``inspection.materialise``; one that found the rows as the document left them records none)."""
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        count = await connection.fetchval(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'inspection.materialise' "
            "AND entity_id = ANY($1::int[])",
            list(inspections),
        )
        return int(count)
    finally:
        await connection.close()


# --- the run ----------------------------------------------------------------------------------


@dataclass
class InstanceFigures:
    clients: int
    acked: int
    p50: float
    p95: float
    late_p95: float  # of the edits sent in the last third of the run (the backlog of the
    # connections' start gone, if the instances keep up)
    peak_rss_mib: float
    end_rss_mib: float
    cpu_seconds: float


@dataclass
class SoakResult:
    plan: SoakPlan
    clients: list[SoakClient]
    verdict: Verdict
    errors: list[str]
    unanswered: int
    rows_wrong: list[str]  # inspections whose rows never came to equal their log
    views: list[InstanceView]  # every instance's copy of every document at the end
    views_wrong: list[str]  # (document, instance) whose fresh client's view differs from the log
    logs: list[str]  # each instance's log, its end (warnings and errors: what to read first)
    rows_lag: float | None  # seconds after the last ack until every inspection's rows did
    rows_written: int  # materialisations that changed rows (audit events inspection.materialise)
    graphql_answered: int
    instances: list[InstanceFigures]
    listening_after: float
    sending: float  # seconds the edits ran
    acks_after: float  # seconds after the edits stopped until the last ack
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def edits(self) -> int:
        return sum(c.edits for c in self.clients)

    @property
    def acked(self) -> int:
        return sum(len(c.acked) for c in self.clients)

    @property
    def failed(self) -> bool:
        return bool(
            self.errors
            or self.unanswered
            or self.verdict.lost
            or self.verdict.wrong
            or self.rows_wrong
            or self.views_wrong
        )

    @property
    def exit_code(self) -> int:
        """``sync_bench.py --soak``'s: 1 when any check failed."""
        return 1 if self.failed else 0


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def instance_environment(
    *, database_url: str, redis_url: str, redis_prefix: str, port: int, workdir: Path
) -> dict[str, str]:
    """``onewindow serve``'s settings for one soak instance (no supervisor, no notifier)."""
    return {
        "ONEWINDOW_DATABASE_URL": database_url,
        "ONEWINDOW_REDIS_URL": redis_url,
        "ONEWINDOW_REDIS_PREFIX": redis_prefix,
        "ONEWINDOW_OBJECT_DIR": str(workdir / "objects"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ONEWINDOW_SUPERVISE_SECONDS": "0",
        "ONEWINDOW_NOTIFY_SECONDS": "0",
        "ONEWINDOW_LOG_LEVEL": "warning",
    }


async def rows_equal_logs(
    arrangement: Arrangement,
    urls: Sequence[str],
    logs: dict[str, Doc],
    *,
    http: httpx.AsyncClient,
) -> list[str]:
    """The inspections whose rows (through GraphQL at ``urls`` with ``http``, instance
    ``k % n`` for the k-th) differ from what their log holds, each with what differs."""
    token = arrangement.tokens[arrangement.departments[0]]
    wrong = []
    for number, document in enumerate(arrangement.documents):
        expected = rows_of_log(logs[document.name])
        try:
            shown = await read_rows(http, urls[number % len(urls)], token, document.inspection_id)
        except (httpx.HTTPError, RuntimeError, ValueError) as error:
            wrong.append(f"{document.name}: {error!r}"[:300])
            continue
        if shown != expected:
            checks = [k for k in expected[0] if shown[0].get(k) != expected[0][k]]
            checks += [k for k in shown[0] if k not in expected[0]]
            items = set(expected[1]) ^ set(shown[1]) | {
                k for k in expected[1] if shown[1].get(k) != expected[1][k]
            }
            wrong.append(
                f"{document.name}: {len(checks)} check row(s) and {len(items)} "
                f"rectification(s) differ from the log, e.g. {checks[:1]} {sorted(items)[:1]}"
            )
    return wrong


@dataclass(frozen=True)
class InstanceView:
    """What one instance served a fresh client of one document."""

    document: str
    instance: int  # numbered from 1
    update: bytes | None  # the room's whole state; None: no view (``error`` says why)
    error: str = ""


async def fresh_view(url: str, headers: dict[str, str]) -> bytes:
    """A document as an instance serves it to a fresh client: its answer to an empty sync
    step 1 (the room's whole state, as an update)."""
    doc: Doc = Doc()
    async with (
        asyncio.timeout(30),
        connect(url, open_timeout=30, max_size=None, additional_headers=headers) as ws,
    ):
        await ws.send(protocol.sync_step1(doc.get_state()))
        async for frame in ws:
            if isinstance(frame, bytes):
                message = protocol.decode(frame)
                if isinstance(message, protocol.SyncMessage) and (
                    message.kind == protocol.SyncType.STEP2
                ):
                    return message.payload
    raise ConnectionClosed(None, None)


async def instance_views(arrangement: Arrangement, ports: Sequence[int]) -> list[InstanceView]:
    """Every instance's copy of every document: a fresh client on each instance (every room
    still open, the soak's clients still connected)."""
    headers = {"Authorization": f"Bearer {arrangement.tokens[arrangement.departments[0]]}"}
    gate = asyncio.Semaphore(20)

    async def one(document: SoakDocument, number: int) -> InstanceView:
        url = f"ws://127.0.0.1:{ports[number]}/sync/{document.name}"
        try:
            async with gate:
                return InstanceView(document.name, number + 1, await fresh_view(url, headers))
        except (OSError, TimeoutError, ConnectionClosed) as error:
            return InstanceView(document.name, number + 1, None, repr(error))

    return list(
        await asyncio.gather(*(one(d, n) for d in arrangement.documents for n in range(len(ports))))
    )


def views_differing(views: Sequence[InstanceView], logs: dict[str, Doc]) -> list[str]:
    """The views (:func:`instance_views`) that differ from their document's log (read from
    the database) or were not served, each with why."""
    wrong = []
    for view in views:
        where = f"{view.document} on instance {view.instance}"
        if view.update is None:
            wrong.append(f"{where}: no view ({view.error})")
            continue
        doc: Doc = Doc()
        doc.apply_update(view.update)
        if content(doc) != content(logs[view.document]):
            wrong.append(f"{where}: differs from the log")
    return wrong


async def run_soak(
    plan: SoakPlan,
    arrangement: Arrangement,
    *,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    workdir: Path,
    say: Callable[[str], None] = print,
    profile_to: Path | None = None,
) -> SoakResult:
    """The soak on an arranged database (see the module's docstring); the database is left as
    the run leaves it. With ``profile_to``, the first instance runs under cProfile and writes
    its statistics there when it stops."""
    load_before = os.getloadavg()
    interval = 1.0 / plan.client_rate
    documents = arrangement.documents
    clients = [
        SoakClient(
            index=index,
            document=documents[index // plan.per_doc],
            code=arrangement.departments[index % len(arrangement.departments)],
            instance=index % plan.instances,
            salt=arrangement.salt,
        )
        for index in range(plan.clients)
    ]
    graphql_errors: list[str] = []
    graphql_counts = [0]
    async with contextlib.AsyncExitStack() as stack:
        began = time.monotonic()

        async def launch(number: int) -> Process:
            port = free_port()
            env = instance_environment(
                database_url=database_url,
                redis_url=redis_url,
                redis_prefix=redis_prefix,
                port=port,
                workdir=workdir,
            )
            argv = [sys.executable, "-m", "server.cli", "serve"]
            if number == 0 and profile_to is not None:
                argv[1:1] = ["-m", "cProfile", "-o", str(profile_to)]
            name, log = f"instance {number + 1}", workdir / f"soak-{number + 1}.log"
            return await stack.enter_async_context(
                listening_process(name, argv, log, port, env, cwd=ROOT)
            )

        async with asyncio.TaskGroup() as group:  # the instances start side by side
            launching = [group.create_task(launch(number)) for number in range(plan.instances)]
        served = [task.result() for task in launching]
        listening_after = time.monotonic() - began
        say(f"{plan.instances} instances listening after {listening_after:.1f} s")
        ports = [process.port for process in served]
        graphql_urls = [f"http://127.0.0.1:{port}/graphql" for port in ports]
        started = time.monotonic()
        until = started + plan.seconds
        late_from = time.perf_counter() + plan.seconds * 2 / 3  # latencies are perf_counter's
        gate = asyncio.Semaphore(50)  # connections being opened at once

        async def start(client: SoakClient) -> None:
            url = f"ws://127.0.0.1:{ports[client.instance]}/sync/{client.document.name}?ack=1"
            headers = {"Authorization": f"Bearer {arrangement.tokens[client.code]}"}
            try:
                await soak_client(client, url, headers, interval=interval, until=until, gate=gate)
            except (OSError, TimeoutError, ConnectionClosed) as error:
                client.errors.append(f"could not connect or send: {error!r}")

        inspections = [document.inspection_id for document in documents]
        pollers = [
            graphql_poller(
                graphql_urls,
                arrangement.tokens[arrangement.departments[number % len(arrangement.departments)]],
                inspections,
                until=until,
                counts=graphql_counts,
                errors=graphql_errors,
            )
            for number in range(plan.graphql_clients)
        ]
        await asyncio.gather(*(start(client) for client in clients), *pollers)
        edits_done = time.monotonic()
        say(f"edits stopped after {edits_done - started:.1f} s; waiting for the acks ...")
        settle = edits_done + plan.settle
        while time.monotonic() < settle:  # every ack, unless the connection failed
            if not any(c.pending for c in clients if not c.errors):
                break
            await asyncio.sleep(0.2)
        acks_done = time.monotonic()
        unanswered = sum(len(c.pending) for c in clients)
        say(f"acks settled after {acks_done - edits_done:.1f} s more; comparing with the log ...")
        names = [document.name for document in documents]

        async def read_logs() -> dict[str, Doc]:
            return {name: await read_log(database_url, name) for name in names}

        logs = await read_logs()
        verdict = verify(clients, logs)
        while verdict.wrong and time.monotonic() < settle:  # broadcasts still on their way
            await asyncio.sleep(0.5)
            logs = await read_logs()
            verdict = verify(clients, logs)
        async with httpx.AsyncClient(timeout=30) as http:
            rows_wrong = await rows_equal_logs(arrangement, graphql_urls, logs, http=http)
            while rows_wrong and time.monotonic() < settle:  # materialisation still to come
                await asyncio.sleep(0.2)
                rows_wrong = await rows_equal_logs(arrangement, graphql_urls, logs, http=http)
        rows_lag = None if rows_wrong else time.monotonic() - acks_done
        views = await instance_views(arrangement, ports)
        views_wrong = views_differing(views, logs)
        memory = [process_memory_kib(p.process.pid) for p in served]
        instance_logs = [p.log_tail(4000) for p in served]
        cpu = [cpu_seconds(p.process.pid) or 0.0 for p in served]
        for client in clients:
            if client.ws is not None and client.receiver is not None:
                client.closed_normally = True
                await client.ws.close()
                await client.receiver
    figures = []
    for number, (peak, end) in enumerate(memory):
        mine = [c for c in clients if c.instance == number]
        latencies = [x for c in mine for _, x in c.latencies]
        late = [x for c in mine for at, x in c.latencies if at >= late_from]
        figures.append(
            InstanceFigures(
                clients=len(mine),
                acked=sum(len(c.acked) for c in mine),
                p50=percentile(latencies, 0.5),
                p95=percentile(latencies, 0.95),
                late_p95=percentile(late, 0.95),
                peak_rss_mib=peak / 1024,
                end_rss_mib=end / 1024,
                cpu_seconds=cpu[number],
            )
        )
    errors = [f"client {c.index}: {e}" for c in clients for e in c.errors]
    errors += [f"GraphQL: {e}" for e in graphql_errors]
    return SoakResult(
        plan=plan,
        clients=clients,
        verdict=verdict,
        errors=errors,
        unanswered=unanswered,
        rows_wrong=rows_wrong,
        views=views,
        views_wrong=views_wrong,
        logs=instance_logs,
        rows_lag=rows_lag,
        rows_written=await materialisations(database_url, inspections),
        graphql_answered=graphql_counts[0],
        instances=figures,
        listening_after=listening_after,
        sending=edits_done - started,
        acks_after=acks_done - edits_done,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def report(result: SoakResult, say: Callable[[str], None] = print) -> None:
    """The figures and every check's outcome, as the bench prints them."""
    plan = result.plan
    seconds = result.sending + result.acks_after
    say(
        f"\n{result.edits} edits sent in {result.sending:.1f} s "
        f"({result.edits / result.sending:.0f}/s), {result.acked} acked "
        f"({result.acked / seconds:.0f} committed updates/s until the last ack, "
        f"{result.acks_after:.1f} s after the edits stopped); {result.unanswered} never "
        f"answered; {result.graphql_answered} GraphQL reads of inspection rows answered"
    )
    connected = [c.connected_at for c in result.clients if c.connected_at]
    say(f"{len(connected)} of {len(result.clients)} clients connected")
    say(
        f"{'instance':<9} {'clients':>7} {'acked':>7} {'updates/s':>9} {'ack p50 s':>9} "
        f"{'ack p95 s':>9} {'late p95 s':>10} {'peak RSS MiB':>12} {'end RSS MiB':>11} "
        f"{'CPU s':>6}"
    )
    for number, figures in enumerate(result.instances):
        say(
            f"{number + 1:<9} {figures.clients:>7} {figures.acked:>7} "
            f"{figures.acked / seconds:>9.0f} {figures.p50:>9.2f} {figures.p95:>9.2f} "
            f"{figures.late_p95:>10.2f} "
            f"{figures.peak_rss_mib:>12.0f} {figures.end_rss_mib:>11.0f} "
            f"{figures.cpu_seconds:>6.1f}"
        )
    lag = f"{result.rows_lag:.1f} s" if result.rows_lag is not None else "never (see below)"
    say(
        f"rows: {plan.documents - len(result.rows_wrong)} of {plan.documents} inspections' check "
        f"and rectification rows (read through GraphQL) equal to their log; materialisation lag "
        f"after the last ack: {lag}; {result.rows_written} materialisations changed rows "
        f"({result.rows_written / seconds:.0f}/s)"
    )
    say("(late p95: the acks of the edits sent in the last third of the run)")
    by_client: dict[str, list[str]] = {}
    for line in result.verdict.lost:
        client, _, what = line.partition("): ")
        by_client.setdefault(f"{client})", []).append(what)
    say(
        f"errors: {len(result.errors)} (and {result.unanswered} updates never answered), lost "
        f"(acknowledged, not in the log) updates: {len(result.verdict.lost)} of "
        f"{len(by_client)} client(s), connected clients "
        f"whose document differs from the log: {len(result.verdict.wrong)}; load before "
        f"{' '.join(f'{v:.1f}' for v in result.load_before)}, after "
        f"{' '.join(f'{v:.1f}' for v in result.load_after)}"
    )
    kinds = collections.Counter(line.split(": ", 1)[1] for line in result.errors)
    for kind, count in kinds.most_common(10):
        say(f"  {count} x {kind[:160]}")
    say(
        f"instances: {len(result.views_wrong)} of {plan.documents * plan.instances} fresh "
        "clients (one per document on each instance) saw a document other than its log"
    )
    for client, lines in list(by_client.items())[:10]:
        say(f"  {client}: {len(lines)} acknowledged update(s) lost, the first: {lines[0]}")
    for line in [*result.rows_wrong[:10], *result.views_wrong[:10]]:
        say(f"  {line}")
    if result.failed:
        for number, tail in enumerate(result.logs):
            say(f"\ninstance {number + 1}'s log ends (at the checks):\n{tail}")
    say(f"exit code {result.exit_code}")


async def soak(
    plan: SoakPlan,
    *,
    postgres: str,
    redis_url: str,
    workdir: Path,
    say: Callable[[str], None],
    profile: int = 0,
) -> int:
    """``sync_bench.py --soak``: a fresh database on the PostgreSQL server ``postgres``
    (migrated, the shipped catalog and calendar, :func:`arrange`), the soak, its report; the
    database is dropped afterwards. The exit code: 1 on any error, unanswered or lost update,
    client differing from the log, or rows that never came to equal it."""
    run = uuid.uuid4().hex[:8]
    load = os.getloadavg()
    say(
        f"soak: {plan.clients} websocket clients ({plan.per_doc} per inspection, "
        f"{plan.documents} site checks, clients round-robin over {plan.instances} instances) "
        f"each making {plan.client_rate:g} edits/s (target "
        f"{plan.clients * plan.client_rate:.0f} updates/s) for {plan.seconds:g} s, "
        f"{plan.graphql_clients} GraphQL clients reading inspection rows on every instance; "
        f"PostgreSQL, Redis {redis_url}; {os.cpu_count()} CPUs, load "
        f"{' '.join(f'{value:.1f}' for value in load)}"
    )
    database_name = f"onewindow_soak_{run}"
    database_url = await recreate_postgres_database(postgres, database_name)
    try:
        began = time.monotonic()
        await migrate(database_url)
        await open_database(database_url)
        try:
            await load_catalog(load_default_catalog())
            await load_package_calendar()
            arrangement = await arrange(documents=plan.documents, now=datetime.now(UTC))
        finally:
            await close_database()
        say(f"arranged in {time.monotonic() - began:.1f} s")
        result = await run_soak(
            plan,
            arrangement,
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=f"soak-{run}",
            workdir=workdir,
            say=say,
            profile_to=workdir / "instance-1.prof" if profile else None,
        )
    finally:
        await recreate_postgres_database(postgres, database_name, create=False)
    report(result, say)
    if profile:
        print_profile(workdir / "instance-1.prof", profile)
    return result.exit_code
