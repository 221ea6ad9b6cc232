"""What the CRDT sync costs: ``bench/sync_bench.py``.

N simulated tablets (pycrdt documents, asyncio, at most ``--concurrency`` syncing at once) come
back online, each with ``--updates`` offline updates to its own document (one document per
tablet; ``--docs K`` spreads the tablets over K shared documents instead), and sync them over
real websockets to:

1. **ours**: ``server.app.create_app`` under uvicorn in a subprocess, over a fresh SQLite file,
   with a plain map policy (no validation rule, no materialisation work; it lets the room
   validate a writer's group at once, ``validates_groups``, unless ``--per-update``).
   Durability is on: every update is committed to the log before it is acknowledged; the
   tablets ask for the acks (``?ack=1``) and a tablet is done when every one of its update
   messages is acked.
2. **node**: y-websocket's own server (``bench/node``: ``y-websocket/bin/server.cjs``) in a
   subprocess, with its LevelDB persistence (y-leveldb, ``YPERSISTENCE``; written after the
   update is applied, never acknowledged) or none (``--node-persistence none``). It has no
   acks: a tablet sends a sync step 1 after its updates and is done when the answering sync
   step 2 arrives (the server handles a connection's messages in order).
3. **raw**: the same updates applied in-process to fresh pycrdt Docs: the ceiling.

A tablet's session, the same for both servers: open the websocket, send its sync step 1,
then its updates one message each, in order; answer the server's sync step 1 with a sync step
2 (everything is already there by then: no new content). Afterwards one observer per document
checks that the server holds exactly the tablets' content (and, for ours, that the log has
one row per update).

``--workload inspection`` runs joint acceptance documents (8 departments x 30 checks) written
by inspectors of each department through our server twice, always-accept against the real
inspection rules (``inspection/accept``, target >= 0.5); ``--growing`` times, in-process, one
writer's edits of one check as its measurements grow (target: at 2,000 within 1.5x of empty).

Prints committed (applied) updates/s, the time until every tablet is done, p50/p95 per-tablet
sync time, the server's peak RSS (VmHWM from /proc) and its CPU time during the run, and the
ratios ours/raw and ours/node. ``--soak SECONDS --postgres URL`` (``bench/soak.py``) keeps
``--clients`` live websocket editors of real site checks and a few GraphQL readers of their rows
on three instances of ``onewindow serve`` for SECONDS and checks that nothing acked is lost and
that clients and rows end equal to the log (exit code 1 otherwise). ``--rounds N`` runs both
servers N times, alternating which goes first, and also prints each round's ratio.
``--profile`` runs our server under cProfile and prints its top costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pycrdt import Doc, Map, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from approval.core.access import Viewer  # noqa: E402
from approval.core.auth import create_user, issue_token  # noqa: E402
from approval.fieldwork.documents import (  # noqa: E402
    INSPECTION_ROOT,
    ChangeEvent,
    InspectionLayout,
    initial_update,
)
from bench.support import (  # noqa: E402
    BenchError,
    Process,
    cpu_seconds,
    free_port,
    inspection_edit,
    listening_process,
    peak_rss_kib,
    print_profile,
    say,
)
from storage.db import (  # noqa: E402
    close_database,
    migrate,
    open_database,
    recreate_postgres_database,
)
from storage.enums import Role  # noqa: E402
from sync import protocol  # noqa: E402
from sync.policy import Access, DocumentPolicy  # noqa: E402

SCRIPT = Path(__file__).resolve()
NODE_DIR = SCRIPT.parent / "node"
NODE_SERVER = NODE_DIR / "node_modules" / "y-websocket" / "bin" / "server.cjs"
TABLET_TIMEOUT = 120.0  # one tablet's whole session
DOC_PREFIX = "bench/"
TEXT_EVERY = 10  # every 10th offline update appends to the text "notes", the others set a key
VERIFY_ATTEMPTS = 4  # fresh observer connections per document before a mismatch is an error
KEYS = 200  # the map keys the updates cycle through (later updates overwrite earlier ones)


# --- the workload -----------------------------------------------------------------------------


@dataclass
class Tablet:
    index: int
    doc_name: str
    doc: Doc
    updates: list[bytes]
    department: str | None = None  # an inspector's, in the inspection workload


def make_tablets(tablets: int, updates: int, docs: int, run: str) -> list[Tablet]:
    """Each tablet's offline edits: ``updates`` transactions, recorded one update each."""
    made = []
    for index in range(tablets):
        doc: Doc = Doc(client_id=1_000_000 + index)
        recorded: list[bytes] = []
        doc.observe(lambda event, into=recorded: into.append(event.update))
        checks = doc.get("m", type=Map)
        notes = doc.get("notes", type=Text)
        for number in range(updates):
            with doc.transaction():
                if number % TEXT_EVERY == TEXT_EVERY - 1:
                    notes += f"平板{index}第{number}条：消防通道畅通。"
                else:
                    checks[f"t{index}-item-{number % KEYS}"] = f"检查项{number}：合格，灭火器有效"
        assert len(recorded) == updates
        doc_index = index if docs <= 0 else index % docs
        made.append(Tablet(index, f"{DOC_PREFIX}{run}/{doc_index}", doc, recorded))
    return made


JOINT = InspectionLayout(  # a joint acceptance: 8 departments x 30 checks each
    departments={
        code: [f"{code}-check-{number:02d}" for number in range(30)]
        for code in ("zjj", "xf", "rf", "gh", "zrzy", "sw", "hb", "dl")
    }
)
DEPARTMENTS = sorted(JOINT.departments)


def make_inspection_tablets(tablets: int, updates: int, docs: int, run: str) -> list[Tablet]:
    """Inspectors of the 8 departments in turn, each writing its own section of a joint
    acceptance document (started from the server's layout update)."""
    layout = initial_update(JOINT)
    made = []
    for index in range(tablets):
        doc: Doc = Doc(client_id=1_000_000 + index)
        doc.apply_update(layout)
        recorded: list[bytes] = []
        doc.observe(lambda event, into=recorded: into.append(event.update))
        code = DEPARTMENTS[index % len(DEPARTMENTS)]
        for number in range(updates):
            with doc.transaction():
                inspection_edit(doc, code, index, number, checks=JOINT.departments[code])
        assert len(recorded) == updates
        doc_index = index if docs <= 0 else index % docs
        made.append(Tablet(index, f"{DOC_PREFIX}{run}/{doc_index}", doc, recorded, code))
    return made


def expected_content(tablets: Sequence[Tablet]) -> dict[str, Any]:
    """Per document, its content once every tablet's updates are in."""
    merged: dict[str, Doc] = {}
    for tablet in tablets:
        doc = merged.setdefault(tablet.doc_name, Doc())
        doc.apply_update(tablet.doc.get_update())
    return {name: content(doc) for name, doc in merged.items()}


def content(doc: Doc) -> Any:
    """What a document holds: (the map, the text); an inspection's root map as the map."""
    if INSPECTION_ROOT in doc:
        return (doc.get(INSPECTION_ROOT, type=Map).to_py() or {}, "")
    return (doc.get("m", type=Map).to_py() or {}, str(doc.get("notes", type=Text)))


def raw_apply_rate(tablets: Sequence[Tablet]) -> tuple[int, float]:
    """Every update applied in order to fresh in-process Docs: (updates, seconds)."""
    docs: dict[str, Doc] = {}
    count = 0
    started = time.perf_counter()
    for tablet in tablets:
        doc = docs.setdefault(tablet.doc_name, Doc())
        for update in tablet.updates:
            doc.apply_update(update)
            count += 1
    return count, time.perf_counter() - started


# --- one tablet's session ---------------------------------------------------------------------


async def tablet_session(
    url: str, tablet: Tablet, *, acks: bool, headers: dict[str, str] | None = None
) -> float:
    """Sync ``tablet`` over one websocket; the seconds it took. Raises BenchError on failure."""
    started = time.perf_counter()
    async with connect(
        url, open_timeout=30, max_size=None, compression=None, additional_headers=headers
    ) as ws:
        await ws.send(protocol.sync_step1(tablet.doc.get_state()))
        for update in tablet.updates:
            await ws.send(protocol.sync_update(update))
        sent = len(tablet.updates)
        if not acks:  # y-websocket: the answer to this comes after every update is applied
            await ws.send(protocol.sync_step1(tablet.doc.get_state()))
        await _until_done(ws, tablet, acks=acks, sent=sent)
    return time.perf_counter() - started


async def _until_done(ws: ClientConnection, tablet: Tablet, *, acks: bool, sent: int) -> None:
    acked: set[int] = set()
    step2s = 0
    try:
        async for frame in ws:
            if isinstance(frame, str):
                raise BenchError(f"tablet {tablet.index} got a text frame: {frame[:200]!r}")
            message = protocol.decode(frame)
            if isinstance(message, protocol.SyncMessage):
                if message.kind == protocol.SyncType.STEP1:
                    sent += 1
                    await ws.send(protocol.sync_step2(tablet.doc.get_update(message.payload)))
                elif message.kind == protocol.SyncType.STEP2:
                    step2s += 1
            elif isinstance(message, protocol.AckMessage):
                acked.add(message.number)
            elif isinstance(message, protocol.AckUpToMessage):
                acked.update(range(len(acked) + 1, message.number + 1))
            elif isinstance(message, protocol.ErrorMessage):
                raise BenchError(
                    f"the server refused update #{message.number} of tablet {tablet.index} "
                    f"({message.code}): {message.reason}"
                )
            elif isinstance(message, protocol.PermissionDeniedMessage):
                raise BenchError(f"tablet {tablet.index} was denied: {message.reason}")
            if acks and len(acked) >= sent and sent > len(tablet.updates):
                return  # every update and the step-2 answer are committed
            if not acks and step2s >= 2:
                return  # the answer to the step 1 sent after the updates
    except ConnectionClosed as closed:
        raise BenchError(
            f"the server closed tablet {tablet.index}'s connection ({closed.rcvd}) before it "
            "was done"
        ) from None
    raise BenchError(f"the server closed tablet {tablet.index}'s connection before it was done")


async def observe_as(
    url: str, expected: Any, headers: dict[str, str] | None, wait: float = 3.0
) -> Any:
    """A fresh client's view of a document: sync step 1 with nothing, then the step 2 and any
    update that follows, until it equals ``expected`` or ``wait`` seconds pass. (y-websocket's
    server answers a document it reloads from LevelDB before the load finishes, then sends
    the loaded state as an update.)"""
    doc: Doc = Doc()
    async with connect(url, open_timeout=30, max_size=None, additional_headers=headers) as ws:
        await ws.send(protocol.sync_step1(doc.get_state()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for frame in ws:
                    if not isinstance(frame, bytes):
                        continue
                    message = protocol.decode(frame)
                    if isinstance(message, protocol.SyncMessage) and message.kind in (
                        protocol.SyncType.STEP2,
                        protocol.SyncType.UPDATE,
                    ):
                        doc.apply_update(message.payload)
                        if content(doc) == expected:
                            break
    return content(doc)


@dataclass
class RunResult:
    name: str
    updates: int
    seconds: float  # first connection to the last tablet done
    sessions: list[float]
    peak_rss_kib: int | None
    cpu_seconds: float | None  # the server's user + system time from the first tablet to "all done"
    verified: str

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def percentile(self, p: int) -> float:
        ordered = sorted(self.sessions)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def drive(
    name: str,
    tablets: Sequence[Tablet],
    url_for: Callable[[str], str],
    *,
    acks: bool,
    concurrency: int,
    pid: int,
    expected: dict[str, Any],
    rows: Callable[[], Awaitable[int]] | None = None,
    headers_for: Callable[[Tablet], dict[str, str]] | None = None,
    tablet_url: Callable[[Tablet], str] | None = None,
) -> RunResult:
    """Every tablet's session (at ``tablet_url(tablet)``, by default ``url_for`` of its
    document), then one observer per document at ``url_for(document)``."""
    gate = asyncio.Semaphore(concurrency)
    sessions: list[float] = []

    async def one(tablet: Tablet) -> None:
        async with gate:
            try:
                async with asyncio.timeout(TABLET_TIMEOUT):
                    headers = headers_for(tablet) if headers_for is not None else None
                    sessions.append(
                        await tablet_session(
                            tablet_url(tablet) if tablet_url else url_for(tablet.doc_name),
                            tablet,
                            acks=acks,
                            headers=headers,
                        )
                    )
            except TimeoutError:
                raise BenchError(
                    f"{name}: tablet {tablet.index} did not finish within {TABLET_TIMEOUT:.0f}s; "
                    "scale down with --tablets/--updates or raise --concurrency"
                ) from None
            except OSError as error:
                raise BenchError(
                    f"{name}: tablet {tablet.index} could not connect: {error}"
                ) from None

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(one(tablet) for tablet in tablets))
    seconds = time.perf_counter() - started
    peak = peak_rss_kib(pid)
    cpu_after = cpu_seconds(pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    any_headers = headers_for(tablets[0]) if headers_for is not None else None

    async def observe(url: str, expected: Any) -> Any:
        return await observe_as(url, expected, any_headers)

    views = await asyncio.gather(*(observe(url_for(doc), expected[doc]) for doc in expected))
    wrong = {doc: view for doc, view in zip(expected, views, strict=True) if view != expected[doc]}
    retried = len(wrong)
    for _ in range(VERIFY_ATTEMPTS - 1):
        if not wrong:
            break
        # y-websocket + y-leveldb: a document reopened while the last session's LevelDB load is
        # still queued can come up empty; a later fresh connection sees the stored content.
        await asyncio.sleep(1.0)
        views = await asyncio.gather(*(observe(url_for(doc), expected[doc]) for doc in wrong))
        wrong = {doc: view for doc, view in zip(wrong, views, strict=True) if view != expected[doc]}
    for doc, view in wrong.items():
        raise BenchError(
            f"{name}: document {doc} did not converge after {VERIFY_ATTEMPTS} fresh connections: "
            f"the server holds {len(view[0])} keys and {len(view[1])} characters of notes, the "
            f"tablets {len(expected[doc][0])} keys and {len(expected[doc][1])} characters"
        )
    verified = f"{len(expected)} documents equal to the tablets'"
    if retried:
        verified += f" ({retried} only on a later connection: first view empty or partial)"
    total = sum(len(t.updates) for t in tablets)
    if rows is not None:
        stored = await rows()
        if stored != total:
            raise BenchError(
                f"{name}: the log holds {stored} rows, expected one per update ({total})"
            )
        verified += f", {stored} log rows"
    return RunResult(name, total, seconds, sessions, peak, cpu, verified)


# --- our server -------------------------------------------------------------------------------


class PlainMapPolicy:
    """Any ``bench/`` document: no initial update, every update valid, nothing to project.

    Every update being valid, a writer's group of updates may be validated as a whole
    (``validates_groups``, see ``sync.policy``); ``--per-update`` turns that off, to measure
    what a policy that judges each update on its own costs."""

    validates_groups = True

    def initial_update(self, doc_name: str) -> bytes | None:
        return None

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        return None

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        return None


class PerUpdatePolicy(PlainMapPolicy):
    """``PlainMapPolicy`` validating every update on its own (``--per-update``)."""

    validates_groups = False


class AcceptLayoutPolicy(PerUpdatePolicy):
    """Every update valid, on the joint acceptance's layout: the always-accept baseline of the
    inspection workload (``--workload inspection``)."""

    def initial_update(self, doc_name: str) -> bytes | None:
        return initial_update(JOINT)


class InspectionPolicy(AcceptLayoutPolicy):
    """The real inspection rules as the server runs them (``server.fieldsync.FieldPolicy``,
    judged by the changes the room collects), on the joint acceptance's layout; rows are not
    written (the bench has no inspection rows)."""

    AS = "inspection/1"  # every bench document is judged as an inspection document

    def __init__(self) -> None:
        from approval.fieldwork.policy import FieldDocuments
        from server.fieldsync import FieldPolicy

        self.field = FieldPolicy(FieldDocuments(clock=lambda: datetime.now(UTC)))

    def observed_roots(self, doc_name: str) -> tuple[str, ...]:
        return self.field.observed_roots(self.AS)

    def validate(  # type: ignore[override]
        self,
        *,
        doc_name: str,
        before: Doc,
        after: Doc,
        access: Access,
        changes: Sequence[ChangeEvent] | None = None,
    ) -> None:
        self.field.validate(
            doc_name=self.AS, before=before, after=after, access=access, changes=changes
        )


POLICIES: dict[str, type[PlainMapPolicy]] = {
    "plain": PlainMapPolicy,
    "per-update": PerUpdatePolicy,
    "accept": AcceptLayoutPolicy,
    "inspection": InspectionPolicy,
}
POLICY: type[PlainMapPolicy] = PlainMapPolicy  # the server's, from --serve-policy


def policy_for(doc_name: str) -> DocumentPolicy | None:
    return POLICY() if doc_name.startswith(DOC_PREFIX) else None


async def access_for(viewer: Viewer, doc_name: str) -> Access | None:
    """An inspector; of the department its bench user name ends with (``bench-<code>-...``)."""
    code = viewer.username.split("-")[1]
    return Access(
        user_id=viewer.user_id,
        username=viewer.username,
        role="inspector",
        department_code=code if code in JOINT.departments else None,
        writable=True,
    )


def serve(database_url: str, port: int, profile_to: str | None) -> None:
    """The server subprocess: create_app under uvicorn as `onewindow serve` runs it."""
    import uvicorn

    from server.app import create_app, tune_gc
    from server.settings import Settings

    settings = Settings(
        database_url=database_url,
        port=port,
        supervise_seconds=0,
        notify_seconds=0,
        log_level="warning",
        redis_url=os.environ.get("ONEWINDOW_REDIS_URL", ""),
        redis_prefix=os.environ.get("ONEWINDOW_REDIS_PREFIX", "onewindow"),
    )
    app = create_app(settings, policy_for=policy_for, access_for=access_for)
    tune_gc(settings.gc_threshold)
    profiler = cProfile.Profile() if profile_to else None
    if profiler is not None:
        profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)


async def prepare_database(database_url: str) -> dict[str | None, str]:
    """Migrate a fresh database and give bench users tokens: one per department of the joint
    acceptance (its inspector) and one without (key None)."""
    await migrate(database_url)
    await open_database(database_url)
    tokens: dict[str | None, str] = {}
    try:
        for code in [None, *DEPARTMENTS]:
            user = await create_user(
                username=f"bench-{code or 'any'}-{uuid.uuid4().hex[:8]}",
                password="bench-password",
                display_name="平板压测",
                role=Role.AGENT,
            )
            tokens[code], _ = await issue_token(
                user=user, now=datetime.now(UTC), ttl=timedelta(hours=2)
            )
        return tokens
    finally:
        await close_database()


async def count_rows(database_url: str, prefix: str) -> int:
    """The log rows of the bench's documents."""
    if database_url.startswith("sqlite://"):
        location = database_url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM document_update WHERE doc LIKE ?", (prefix + "%",)
            ).fetchone()
            return int(row[0])
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        count = await connection.fetchval(
            "SELECT COUNT(*) FROM document_update WHERE doc LIKE $1", prefix + "%"
        )
        return int(count)
    finally:
        await connection.close()


async def run_ours(
    tablets: Sequence[Tablet],
    expected: dict[str, Any],
    args: argparse.Namespace,
    workdir: Path,
    *,
    policy: str,
    name: str = "ours",
    instances: int = 1,
) -> RunResult:
    """Our server on a fresh SQLite file, or, with ``--postgres``, ``instances`` servers on a
    fresh PostgreSQL database (dropped afterwards) cooperating through Redis (``--redis``);
    tablet ``i`` syncs with instance ``(i // docs) % instances``, so a shared document is
    written through every instance; the observers ask the first."""
    database_name = f"onewindow_bench_{uuid.uuid4().hex[:8]}"
    if args.postgres:
        database_url = await recreate_postgres_database(args.postgres, database_name)
    else:
        database_url = f"sqlite://{workdir / 'sync-bench.sqlite3'}"
    tokens = await prepare_database(database_url)
    profile_file = workdir / "server.prof"
    query = urlencode({"ack": "1"})
    prefix = tablets[0].doc_name.rsplit("/", 1)[0]
    layout_rows = len(expected) if policy in ("accept", "inspection") else 0
    env = {
        "ONEWINDOW_REDIS_URL": args.redis,
        "ONEWINDOW_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
    }
    if instances == 1 or not args.postgres:
        env = {"ONEWINDOW_REDIS_URL": ""}

    def headers_for(tablet: Tablet) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[tablet.department]}"}

    async with contextlib.AsyncExitStack() as stack:
        served: list[Process] = []
        for number in range(instances):
            port = free_port()
            argv = [
                sys.executable,
                str(SCRIPT),
                "--serve-port",
                str(port),
                "--database-url",
                database_url,
                "--serve-policy",
                policy,
            ]
            if args.profile and number == 0:
                argv += ["--profile-to", str(profile_file)]
            served.append(
                await stack.enter_async_context(
                    listening_process(
                        f"our server {number + 1} (uvicorn)",
                        argv,
                        workdir / f"ours-{number + 1}.log",
                        port,
                        env,
                    )
                )
            )
        ports = [process.port for process in served]

        async def rows() -> int:
            return await count_rows(database_url, prefix) - layout_rows

        result = await drive(
            name,
            tablets,
            lambda doc: f"ws://127.0.0.1:{ports[0]}/sync/{doc}?{query}",
            acks=True,
            concurrency=args.concurrency,
            pid=served[0].process.pid,
            expected=expected,
            rows=rows,
            headers_for=headers_for,
            tablet_url=lambda tablet: (  # a shared document's tablets on every instance
                f"ws://127.0.0.1:{ports[(tablet.index // max(args.docs, 1)) % instances]}"
                f"/sync/{tablet.doc_name}?{query}"
            ),
        )
        result.peak_rss_kib = sum(peak_rss_kib(p.process.pid) or 0 for p in served) or None
    if args.postgres:
        await recreate_postgres_database(args.postgres, database_name, create=False)
    if args.profile:
        print_profile(profile_file, args.profile)
    return result


# --- the Node reference -----------------------------------------------------------------------


async def run_node(
    tablets: Sequence[Tablet], expected: dict[str, Any], args: argparse.Namespace, workdir: Path
) -> RunResult:
    node = shutil.which("node")
    if node is None:
        raise BenchError(
            "node is not on PATH: install Node.js 18+ to compare with the reference server, "
            "or pass --skip-node"
        )
    if not NODE_SERVER.is_file():
        raise BenchError(
            f"{NODE_SERVER.relative_to(ROOT)} is missing: run `make bench-node-deps` (npm ci "
            "--prefix bench/node), or pass --skip-node"
        )
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port)}
    if args.node_persistence == "leveldb":
        env["YPERSISTENCE"] = str(workdir / "node-leveldb")
    async with listening_process(
        "the y-websocket server (node)", [node, str(NODE_SERVER)], workdir / "node.log", port, env
    ) as served:
        return await drive(
            "node",
            tablets,
            lambda doc: f"ws://127.0.0.1:{port}/{doc}",
            acks=False,
            concurrency=args.concurrency,
            pid=served.process.pid,
            expected=expected,
        )


# --- report -----------------------------------------------------------------------------------


def report(rounds: list[list[RunResult]], raw: tuple[int, float]) -> None:
    print(
        f"\n{'server':<8} {'updates':>8} {'updates/s':>10} {'all done s':>10} "
        f"{'p50 tablet s':>12} {'p95 tablet s':>12} {'peak RSS MiB':>12} {'server CPU s':>12} "
        f"{'CPU us/upd':>10}"
    )
    for number, results in enumerate(rounds, 1):
        for r in results:
            name = r.name if len(rounds) == 1 else f"{r.name} #{number}"
            rss = f"{r.peak_rss_kib / 1024:.1f}" if r.peak_rss_kib is not None else "n/a"
            cpu = f"{r.cpu_seconds:.2f}" if r.cpu_seconds is not None else "n/a"
            per = f"{r.cpu_seconds / r.updates * 1e6:.1f}" if r.cpu_seconds is not None else "n/a"
            print(
                f"{name:<8} {r.updates:>8} {r.rate:>10.0f} {r.seconds:>10.2f} "
                f"{r.percentile(50):>12.2f} {r.percentile(95):>12.2f} {rss:>12} {cpu:>12} "
                f"{per:>10}"
            )
    raw_rate = raw[0] / raw[1]
    print(f"{'raw':<8} {raw[0]:>8} {raw_rate:>10.0f} {raw[1]:>10.2f}   (in-process pycrdt apply)")
    for number, results in enumerate(rounds, 1):
        for r in results:
            name = r.name if len(rounds) == 1 else f"{r.name} #{number}"
            print(f"verified {name}: {r.verified}")

    def pooled(name: str) -> float | None:
        runs = [r for results in rounds for r in results if r.name == name]
        return sum(r.updates for r in runs) / sum(r.seconds for r in runs) if runs else None

    ours, node = pooled("ours"), pooled("node")
    if ours is None:
        return
    print(f"\nours/raw  = {ours / raw_rate:.3f}  (share of the in-process apply rate)")
    if node is None:
        return
    met = "met" if ours >= node else "NOT met"
    if len(rounds) == 1:
        print(f"ours/node = {ours / node:.2f}  (target >= 1.0 with durability on: {met})")
        return
    ratios = [
        next(r.rate for r in results if r.name == "ours")
        / next(r.rate for r in results if r.name == "node")
        for results in rounds
    ]
    print(
        f"ours/node per round: {' '.join(f'{ratio:.2f}' for ratio in ratios)}; "
        f"median {statistics.median(ratios):.2f}"
    )
    print(
        f"ours/node = {ours / node:.2f}  (all rounds: {ours:.0f} vs {node:.0f} updates/s; "
        f"target >= 1.0 with durability on: {met})"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Tablets syncing offline CRDT updates: our server vs y-websocket's vs raw.",
    )
    parser.add_argument("--tablets", type=int, default=100, help="simulated tablets (100)")
    parser.add_argument("--updates", type=int, default=500, help="offline updates each (500)")
    parser.add_argument(
        "--docs",
        type=int,
        default=0,
        help="shared documents the tablets are spread over (0: one document per tablet)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=25, help="tablets syncing at the same time (25)"
    )
    parser.add_argument(
        "--node-persistence",
        choices=("leveldb", "none"),
        default="leveldb",
        help="the reference server's persistence (leveldb: y-leveldb in a temp dir)",
    )
    parser.add_argument("--skip-node", action="store_true", help="no Node reference run")
    parser.add_argument("--skip-ours", action="store_true", help="no run against our server")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="run our server under cProfile and print its top N functions",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run both servers this many times, alternating which goes first (1)",
    )
    parser.add_argument(
        "--per-update",
        action="store_true",
        help="our server's policy validates each update on its own (no group validation)",
    )
    parser.add_argument(
        "--workload",
        choices=("plain", "inspection"),
        default="plain",
        help="plain: map keys and text, ours vs node; inspection: joint acceptances "
        "(8 departments x 30 checks, measurements, notes, photo ids, rectifications), the real "
        "inspection rules vs always-accept",
    )
    parser.add_argument(
        "--growing",
        action="store_true",
        help="in-process: one writer into one check while its measurements grow "
        "(--updates edits timed at each size)",
    )
    parser.add_argument(
        "--growing-sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[500, 1000, 2000],
        help="measurement counts of --growing (500,1000,2000)",
    )
    parser.add_argument(
        "--postgres",
        default="",
        metavar="URL",
        help="our server on a fresh PostgreSQL database made on this server (postgres://...) "
        "instead of a SQLite file",
    )
    parser.add_argument(
        "--instances",
        action="store_true",
        help="with --postgres: the inspection workload through one instance, then two "
        "cooperating through Redis (--redis), tablets spread over them (target: two >= 0.8x "
        "the committed updates/s of one, ack p95 within 1.5x)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis of --instances")
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="N",
        help="in-process: N rooms of a joint acceptance open at once, read-only and with a "
        "writer each; memory per room and what comes back after they unload",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        metavar="SECONDS",
        help="with --postgres: live websocket clients (--clients) editing real site checks "
        "through three instances of `onewindow serve` (Redis: --redis) plus GraphQL readers of "
        "their rows for SECONDS; exit code 1 on any error, lost update or rows unequal to the log",
    )
    parser.add_argument("--clients", type=int, default=500, help="--soak websocket clients (500)")
    parser.add_argument("--per-doc", type=int, default=5, help="--soak clients per document (5)")
    parser.add_argument(
        "--client-rate", type=float, default=0.5, help="--soak edits per second per client (0.5)"
    )
    parser.add_argument("--graphql-clients", type=int, default=3, help="--soak GraphQL pollers (3)")
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-policy", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("tablets", "updates", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.docs < 0:
        parser.error("--docs must be 0 (one per tablet) or more")
    if args.soak and not args.postgres:
        parser.error("--soak needs --postgres (its instances share PostgreSQL)")
    if args.soak and (args.clients < 1 or args.per_doc < 1 or args.client_rate <= 0):
        parser.error("--clients and --per-doc must be at least 1, --client-rate above 0")
    if args.instances and not args.postgres:
        parser.error("--instances needs --postgres (several instances share PostgreSQL)")
    return args


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    """The exit code: 1 when ``--soak`` saw an error or a lost update, else 0."""
    started = time.perf_counter()
    if args.soak:
        from bench.soak import SoakPlan, soak

        plan = SoakPlan(
            seconds=args.soak,
            clients=args.clients,
            per_doc=args.per_doc,
            client_rate=args.client_rate,
            graphql_clients=args.graphql_clients,
        )
        code = await soak(
            plan,
            postgres=args.postgres,
            redis_url=args.redis,
            workdir=workdir,
            say=say,
            profile=args.profile,
        )
        print(f"\ntotal time {time.perf_counter() - started:.0f}s")
        return code
    if args.memory:
        await memory(args, workdir)
        print(f"\ntotal time {time.perf_counter() - started:.0f}s")
        return 0
    if args.growing:
        await growing(args, workdir)
        print(f"\ntotal time {time.perf_counter() - started:.0f}s")
        return 0
    run = uuid.uuid4().hex[:8]
    inspection = args.workload == "inspection"
    make = make_inspection_tablets if inspection else make_tablets
    tablets = make(args.tablets, args.updates, args.docs, run)
    expected = expected_content(tablets)
    docs = len(expected)
    size = sum(len(u) for t in tablets for u in t.updates)
    print(
        f"{args.tablets} tablets x {args.updates} offline updates = "
        f"{args.tablets * args.updates} updates ({size / 1024:.0f} KiB) on {docs} "
        f"{'joint acceptance documents (8 departments x 30 checks)' if inspection else 'documents'}"
        f", {args.concurrency} tablets syncing at once, {os.cpu_count()} CPUs"
    )
    raw = raw_apply_rate(tablets)
    if args.instances:  # the real rules through one instance, then two
        servers = [("one instance", "inspection"), ("two instances", "inspection")]
    elif inspection:  # the real rules against always-accept, same workload, same run
        servers = [("accept", "accept"), ("inspection", "inspection")]
    else:
        servers = [("ours", "per-update" if args.per_update else "plain"), ("node", "")]
    rounds = []
    for number in range(args.rounds):
        # Alternate which server goes first, so that a drift in the machine's load hits both.
        order = servers if number % 2 == 0 else servers[::-1]
        where = workdir / f"round-{number + 1}"
        where.mkdir()
        results = []
        for name, policy in order:
            if name == "node":
                if not args.skip_node:
                    print(f"node: y-websocket server.cjs, persistence {args.node_persistence} ...")
                    results.append(await run_node(tablets, expected, args, where))
            elif not args.skip_ours:
                count = 2 if name == "two instances" else 1
                print(
                    f"{name}: create_app under uvicorn x{count}, fresh "
                    f"{'PostgreSQL database' if args.postgres else 'SQLite file'}, acks after "
                    f"commit, policy {policy} ..."
                )
                place = where / name.replace(" ", "-")
                place.mkdir()
                results.append(
                    await run_ours(
                        tablets, expected, args, place, policy=policy, name=name, instances=count
                    )
                )
        rounds.append(results)
    report(rounds, raw)
    if args.instances:
        report_instances(rounds)
    elif inspection:
        report_inspection(rounds)
    print(f"\ntotal time {time.perf_counter() - started:.0f}s")
    return 0


def report_inspection(rounds: list[list[RunResult]]) -> None:
    def pooled(name: str) -> float:
        runs = [r for results in rounds for r in results if r.name == name]
        return sum(r.updates for r in runs) / sum(r.seconds for r in runs)

    ratio = pooled("inspection") / pooled("accept")
    met = "met" if ratio >= 0.5 else "NOT met"
    print(f"inspection/accept = {ratio:.2f}  (the real rules' updates/s; target >= 0.5: {met})")
    for results in rounds:
        for r in results:
            print(f"{r.name}: ack p95 {r.percentile(95):.2f} s per tablet session, 0 errors")


def report_instances(rounds: list[list[RunResult]]) -> None:
    def runs(name: str) -> list[RunResult]:
        return [r for results in rounds for r in results if r.name == name]

    one, two = runs("one instance"), runs("two instances")
    rate = (sum(r.updates for r in two) / sum(r.seconds for r in two)) / (
        sum(r.updates for r in one) / sum(r.seconds for r in one)
    )
    p95 = statistics.mean(r.percentile(95) for r in two) / statistics.mean(
        r.percentile(95) for r in one
    )
    print(
        f"two/one instances: committed updates/s {rate:.2f}x (target >= 0.8: "
        f"{'met' if rate >= 0.8 else 'NOT met'}), tablet session p95 {p95:.2f}x (target "
        f"<= 1.5: {'met' if p95 <= 1.5 else 'NOT met'})"
    )
    for r in one + two:
        rss = f"{r.peak_rss_kib / 1024:.0f} MiB" if r.peak_rss_kib else "?"
        print(f"{r.name}: {r.rate:.0f} updates/s, peak RSS of its instances together {rss}")


async def growing(args: argparse.Namespace, workdir: Path) -> None:
    """One writer into one check of a joint acceptance, in-process (room, real inspection
    rules, SQLite log): the cost of an update as the check's measurements grow."""
    from sync.room import Room, RoomSettings
    from sync.store import UpdateStore

    database_url = f"sqlite://{workdir / 'growing.sqlite3'}"
    await migrate(database_url)
    await open_database(database_url)
    try:
        policy = InspectionPolicy()
        timed = [0.0]
        validate = policy.validate

        def timed_validate(**kwargs: Any) -> None:
            began = time.perf_counter()
            try:
                validate(**kwargs)
            finally:
                timed[0] += time.perf_counter() - began

        policy.validate = timed_validate  # type: ignore[method-assign]
        room = Room(
            f"{DOC_PREFIX}growing", policy=policy, store=UpdateStore(), settings=RoomSettings()
        )
        await room.load()
        writer: Doc = Doc(client_id=4242)
        writer.apply_update(room.encoded())
        made: list[bytes] = []
        writer.observe(lambda event: made.append(event.update))
        code = DEPARTMENTS[0]
        access = Access(
            user_id=1, username="bench", role="inspector", department_code=code, writable=True
        )
        check = writer.get(INSPECTION_ROOT, type=Map)[code]["checks"][JOINT.departments[code][0]]
        measured = check["measured"]
        sample = args.updates
        rows: list[tuple[int, float, float, float]] = []
        for target in sorted({0, *args.growing_sizes}):
            with writer.transaction():  # grow to ``target`` measurements in one update
                for index in range(len(measured), target):
                    measured[f"测点{index}"] = float(index)
            for update in made:
                await room.receive(update, access=access, origin=None)
            made.clear()
            timed[0] = 0.0
            began, cpu = time.perf_counter(), time.process_time()
            for number in range(sample):  # then time ``sample`` single edits of that check
                check["note"] = f"第{number}次复核：数据与现场一致"
                await room.receive(made.pop(), access=access, origin=None)
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
            per = 1e6 / sample
            rows.append((target, seconds * per, cpu * per, timed[0] * per))
        await room.close()
    finally:
        await close_database()
    base = rows[0]
    print(
        f"\none writer into one check, {sample} edits timed per size (Room.receive: check, "
        "commit to SQLite, apply; the debounced materialisation runs meanwhile)"
    )
    print(
        f"{'measurements':>12} {'wall us/upd':>11} {'CPU us/upd':>10} {'x empty':>8} "
        f"{'validate us':>11} {'x empty':>8}"
    )
    for size, wall, cpu_us, checking in rows:
        print(
            f"{size:>12} {wall:>11.0f} {cpu_us:>10.0f} {cpu_us / base[2]:>8.2f} "
            f"{checking:>11.0f} {checking / base[3]:>8.2f}"
        )
    worst = max(row[2] / base[2] for row in rows)
    met = "met" if worst <= 1.5 else "NOT met"
    print(
        f"largest / empty = {worst:.2f} in CPU per update (target <= 1.5: {met}); the wall "
        "time is mostly the commit's wait for the disk"
    )


def rss_kib() -> int:
    """This process's resident set now (VmRSS), 0 where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def given_back() -> tuple[int, int]:
    """RSS after ``gc.collect()``, then after glibc's ``malloc_trim(0)`` (0 when absent)."""
    import ctypes
    import gc

    gc.collect()
    collected = rss_kib()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return collected, 0
    return collected, rss_kib()


async def memory(args: argparse.Namespace, workdir: Path) -> None:
    """In-process: ``--memory N`` rooms of a joint acceptance (about 18 KiB encoded) open at
    once: read-only; each with one writer's edit, its validation copies held (a burst); the
    same once its rows are written and the writer paused (the room rests: its document kept
    encoded, the copies dropped; ``rest_after`` 0 here, 5 s in the server). The resident
    memory per room and what comes back once they unload (``gc.collect``, ``malloc_trim``)."""
    from sync.room import Room, RoomSettings
    from sync.store import UpdateStore

    database_url = f"sqlite://{workdir / 'memory.sqlite3'}"
    await migrate(database_url)
    await open_database(database_url)
    try:
        store = UpdateStore()
        layout = initial_update(JOINT)
        filled: Doc = Doc(client_id=777)
        filled.apply_update(layout)
        made: list[bytes] = []
        filled.observe(lambda event: made.append(event.update))
        root = filled.get(INSPECTION_ROOT, type=Map)
        with filled.transaction():
            for code in DEPARTMENTS:
                for number, check in enumerate(JOINT.departments[code]):
                    if len(filled.get_update()) >= 18 * 1024:
                        break
                    root[code]["checks"][check]["note"] = f"第{number}项：现场核查与图纸一致"
        encoded = len(filled.get_update())
        names = [f"{DOC_PREFIX}memory/{index}" for index in range(args.memory)]
        for name in names:
            await store.append(name, layout)
            await store.append(name, made[0])
        code = DEPARTMENTS[0]
        access = Access(
            user_id=1, username="bench", role="inspector", department_code=code, writable=True
        )
        busy = RoomSettings(materialise_delay=3600, materialise_max_wait=3600, rest_after=3600)
        resting = dataclasses.replace(busy, rest_after=0)
        policy = InspectionPolicy()  # one for every room, as the server's FieldPolicy

        received: list[float] = []  # seconds of each writer's update: judged and committed
        waking: list[float] = []  # seconds to rebuild a resting room's Doc

        async def open_rooms(write: bool, rest: bool) -> list[Room]:
            rooms = []
            for index, name in enumerate(names):
                room = Room(name, policy=policy, store=store, settings=resting if rest else busy)
                await room.load()
                if write:
                    writer: Doc = Doc(client_id=10_000 + index)
                    writer.apply_update(room.encoded())
                    edits: list[bytes] = []
                    watching = writer.observe(lambda event, into=edits: into.append(event.update))
                    check = JOINT.departments[code][0]
                    writer.get(INSPECTION_ROOT, type=Map)[code]["checks"][check]["note"] = "复核"
                    writer.unobserve(watching)  # a subscription would keep the writer alive
                    began = time.perf_counter()
                    await room.receive(edits[0], access=access, origin=None)
                    received.append(time.perf_counter() - began)
                    if rest:  # its rows written, the writer paused
                        await room.catch_up()
                for _ in range(1000 if rest else 0):  # unused: the room rests
                    if room.resting:
                        break
                    await asyncio.sleep(0.01)
                rooms.append(room)
            return rooms

        figures: list[tuple[str, float, float, float]] = []
        everything, names = names, names[:10]  # a warm-up first: one-off costs left out
        for room in await open_rooms(True, False):
            await room.close()
        names = everything
        cases = (
            ("read-only", False, False),
            ("read-only, at rest", False, True),
            ("writer, burst", True, False),
            ("writer, at rest", True, True),
        )
        for label, write, rest in cases:
            _, start = given_back()
            rooms = await open_rooms(write, rest)
            loaded = rss_kib()
            _, held = given_back()  # what the open rooms really hold
            if write and rest:
                for room in rooms:
                    began = time.perf_counter()
                    room.doc  # noqa: B018 -- rebuilt from the encoded state
                    waking.append(time.perf_counter() - began)
            for room in rooms:
                await room.close()
            del rooms
            _, back = given_back()
            grown = max(loaded - start, 1)
            figures.append(
                (
                    label,
                    (loaded - start) / args.memory,
                    (held - start) / args.memory,
                    (loaded - back) / grown,
                )
            )
    finally:
        await close_database()
    print(f"\n{args.memory} rooms of a joint acceptance ({encoded / 1024:.1f} KiB encoded)")
    print(f"{'rooms':<18} {'KiB per room':>12} {'held (trimmed)':>14} {'given back':>10}")
    for label, per_room, held_per_room, back_share in figures:
        print(f"{label:<18} {per_room:>12.0f} {held_per_room:>14.0f} {back_share:>10.0%}")
    wake, receive = statistics.median(waking) * 1e3, statistics.median(received) * 1e3
    print(
        f"waking a resting room (its Doc rebuilt): median {wake:.2f} ms; a writer's update "
        f"judged and committed (SQLite): median {receive:.2f} ms ({wake / receive:.2f}x)"
    )
    for label, _, held_per_room, back_share in figures[2:]:  # the rooms with a writer
        print(
            f"{label}: {held_per_room:.0f} KiB held per room (target <= 200 KB: "
            f"{'met' if held_per_room * 1024 <= 200_000 else 'NOT met'}); given back after "
            f"unloading, gc + malloc_trim: {back_share:.0%} (target >= 50%: "
            f"{'met' if back_share >= 0.5 else 'NOT met'})"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_port is not None:
        if not args.database_url:
            print("--serve-port needs --database-url", file=sys.stderr)
            return 2
        global POLICY
        POLICY = POLICIES[args.serve_policy]
        serve(args.database_url, args.serve_port, args.profile_to)
        return 0
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="onewindow-sync-bench-") as workdir:
        try:
            code = asyncio.run(bench(args, Path(workdir)))
        except BenchError as error:
            print(f"bench failed: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench interrupted", file=sys.stderr)
            return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
