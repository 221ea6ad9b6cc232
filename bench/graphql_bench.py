"""What GraphQL costs: the project list over /graphql against the same data over plain JSON.

Run from the repository root::

    .venv/bin/python bench/graphql_bench.py [--projects 200] [--requests 300] [--concurrency 8]
                                            [--database-url URL]

It seeds a fresh database through the service functions, serves ONE Starlette app with
uvicorn in a subprocess (real HTTP on 127.0.0.1) with two routes -- ``/graphql`` (the real
schema) and ``/plain`` (a hand-written JSON endpoint that fetches the same rows with batch
queries) -- and drives both with httpx at the given concurrency, in alternating rounds.
See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import math
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from approval.catalog.load import load_catalog  # noqa: E402
from approval.catalog.parse import load_default_catalog  # noqa: E402
from approval.core import auth  # noqa: E402
from approval.core.access import Viewer, project_scope  # noqa: E402
from approval.core.calendar import load_package_calendar  # noqa: E402
from approval.core.codes import credit_code_with_check  # noqa: E402
from approval.core.dates import CHINA  # noqa: E402
from approval.core.errors import DomainError  # noqa: E402
from approval.projects.materials import MaterialFile, submit_material  # noqa: E402
from approval.projects.projects import ProjectApplication, create_project  # noqa: E402
from approval.projects.stages import accept_stage, stage_readiness  # noqa: E402
from bench.support import BenchError, free_port, listening_process  # noqa: E402
from schema.app import graphql_app  # noqa: E402
from server.app import tune_gc  # noqa: E402
from server.settings import Settings  # noqa: E402
from storage.db import close_database, migrate, open_database  # noqa: E402
from storage.enums import ProjectType, Role  # noqa: E402
from storage.models import Material, Project, Region, Stage, Task  # noqa: E402

# A Monday in a year the packaged holiday calendar knows; every clock of the bench is frozen here.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)
PAGE_SIZE = 50
TARGET_RATIO = 2.0
PASSWORD = "bench-password"
FIRST_STAGE = "project_approval"
SQL_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
DEFAULT_BUDGET = 90.0  # seconds of measured requests, both endpoints together
MIN_REQUESTS = 50
SCRIPT = Path(__file__).resolve()

QUERY = """
query BenchProjects($first: Int!) {
  projects(first: $first) {
    edges {
      node {
        code
        name
        enterprise { name creditCode }
        region { name }
        stages {
          code
          name
          status
          deadline
          tasks { status deadline department { name } item { name } }
        }
        materials { status materialType { name } }
      }
    }
  }
}
"""


def frozen_clock() -> datetime:
    return NOW


# --- the plain endpoint ----------------------------------------------------------------------


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _bearer_viewer(request: Request) -> Viewer | JSONResponse:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return JSONResponse({"error": "send 'Authorization: Bearer <token>'"}, status_code=401)
    try:
        return await auth.authenticate(token=token.strip(), now=frozen_clock())
    except DomainError as error:
        return JSONResponse({"error": error.message, "code": error.code.value}, status_code=401)


async def plain_projects(request: Request) -> JSONResponse:
    """The GraphQL query's data without GraphQL: one query per table, joins for to-one rows."""
    viewer = await _bearer_viewer(request)
    if isinstance(viewer, JSONResponse):
        return viewer
    projects = (
        await Project.filter(project_scope(viewer))
        .order_by("-id")
        .limit(PAGE_SIZE)
        .select_related("enterprise", "region")
    )
    project_ids = [p.id for p in projects]
    stages = (
        await Stage.filter(project_id__in=project_ids)
        .select_related("definition")
        .order_by("definition_id")
    )
    rounds = {s.id: s.round for s in stages}
    tasks_by_stage: dict[int, list[dict[str, Any]]] = {s.id: [] for s in stages}
    tasks = (
        await Task.filter(stage_id__in=list(rounds))
        .select_related("department", "item")
        .order_by("id")
    )
    for task in tasks:
        stage_id: int = task.stage_id
        if task.round == rounds[stage_id]:  # only the stage's current round, as GraphQL shows
            tasks_by_stage[stage_id].append(
                {
                    "status": task.status.name,
                    "deadline": _day(task.deadline),
                    "department": {"name": task.department.name},
                    "item": {"name": task.item.name},
                }
            )
    stages_by_project: dict[int, list[dict[str, Any]]] = {i: [] for i in project_ids}
    for stage in stages:
        stages_by_project[stage.project_id].append(
            {
                "code": stage.definition.code,
                "name": stage.definition.name,
                "status": stage.status.name,
                "deadline": _day(stage.deadline),
                "tasks": tasks_by_stage[stage.id],
            }
        )
    materials_by_project: dict[int, list[dict[str, Any]]] = {i: [] for i in project_ids}
    materials = (
        await Material.filter(project_id__in=project_ids)
        .select_related("material_type")
        .order_by("material_type_id")
    )
    for material in materials:
        materials_by_project[material.project_id].append(
            {"status": material.status.name, "materialType": {"name": material.material_type.name}}
        )
    edges = [
        {
            "node": {
                "code": p.code,
                "name": p.name,
                "enterprise": {"name": p.enterprise.name, "creditCode": p.enterprise.credit_code},
                "region": {"name": p.region.name},
                "stages": stages_by_project[p.id],
                "materials": materials_by_project[p.id],
            }
        }
        for p in projects
    ]
    return JSONResponse({"data": {"projects": {"edges": edges}}})


def build_app() -> Starlette:
    """The one app both endpoints live in (the database is opened by whoever runs it)."""
    return Starlette(
        routes=[
            Route("/graphql", graphql_app(token_ttl=timedelta(hours=8), clock=frozen_clock)),
            Route("/plain", plain_projects, methods=["GET"]),
        ]
    )


# --- the database ----------------------------------------------------------------------------


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


async def recreate_postgres_database(url: str) -> None:
    """Drop and create the database the URL names (as tests/conftest.py does)."""
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise BenchError(f"refusing to recreate database {name!r}: use letters, digits and _")
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    try:
        connection = await asyncpg.connect(admin_url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"cannot reach PostgreSQL at {parts.netloc} to recreate {name!r}: {exc}; "
            "is it running, and may this user create databases?"
        ) from exc
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@dataclass
class Seeded:
    token: str
    projects: int
    tasks: int
    materials: int
    seconds: float


PROJECT_NAMES = (
    "标准化厂房建设项目",
    "智能装备产业园项目",
    "新材料研发中心项目",
    "住宅小区建设项目",
    "医院门诊综合楼项目",
    "智慧仓储物流中心项目",
    "学校新校区建设项目",
    "商业综合体项目",
)
ENTERPRISE_COUNT = 20


def _application(index: int, regions: list[str]) -> ProjectApplication:
    enterprise = index % ENTERPRISE_COUNT
    project_type = list(ProjectType)[index % len(ProjectType)]
    return ProjectApplication(
        name=f"德州市第{index + 1}号{PROJECT_NAMES[index % len(PROJECT_NAMES)]}",
        credit_code=credit_code_with_check(f"91371400MA3C{enterprise:05d}"),
        enterprise_name=f"德州第{enterprise + 1}实业有限公司",
        region_code=regions[index % len(regions)],
        project_type=project_type,
        industry_code=("30", "34", "70", "84")[index % 4],
        land_area_m2=Decimal(20_000 + 1_000 * (index % 50)),
        floor_area_m2=Decimal(30_000 + 500 * (index % 40)),
        investment_10k_yuan=Decimal(10_000 + 700 * (index % 30)),
        address=f"德州市示范路{index + 1}号",
    )


async def seed(*, count: int, say: Callable[[str], None]) -> Seeded:
    """Catalog, calendar, a supervisor with a token, and ``count`` projects in stage-1 review."""
    started = time.perf_counter()
    await load_catalog(load_default_catalog())
    await load_package_calendar()
    supervisor = await auth.create_user(
        username="bench-supervisor",
        password=PASSWORD,
        display_name="压测管理员",
        role=Role.SUPERVISOR,
    )
    token, _ = await auth.issue_token(user=supervisor, now=NOW, ttl=timedelta(days=1))
    clerk = await auth.viewer_of(
        await auth.create_user(
            username="bench-window",
            password=PASSWORD,
            display_name="压测窗口",
            role=Role.WINDOW_CLERK,
        )
    )
    regions = sorted([str(code) for code in await Region.all().values_list("code", flat=True)])
    say(f"seeding {count} projects (catalog and calendar loaded, {len(regions)} regions)")
    for index in range(count):
        project = await create_project(viewer=clerk, form=_application(index, regions), now=NOW)
        stage = await Stage.get(project_id=project.id, definition__code=FIRST_STAGE)
        readiness = await stage_readiness(project=project, stage=stage)
        for material_type in [*readiness.missing_core, *readiness.missing_non_core]:
            await submit_material(
                viewer=clerk,
                project_id=project.id,
                material_type_code=material_type.code,
                file=MaterialFile(file_name=f"{material_type.code}.pdf", size_bytes=200_000),
                now=NOW,
            )
        await accept_stage(viewer=clerk, project_id=project.id, stage_code=FIRST_STAGE, now=NOW)
        if (index + 1) % 20 == 0 or index + 1 == count:
            say(f"  {index + 1}/{count} projects ({time.perf_counter() - started:.1f}s)")
    return Seeded(
        token=token,
        projects=await Project.all().count(),
        tasks=await Task.all().count(),
        materials=await Material.all().count(),
        seconds=time.perf_counter() - started,
    )


# --- counting SQL statements -----------------------------------------------------------------


class _SqlCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().lstrip().upper().startswith(SQL_VERBS):
            self.count += 1


@contextmanager
def counting_sql() -> Iterator[_SqlCounter]:
    """Count the statements Tortoise logs; on only inside the block (logging costs time)."""
    logger = logging.getLogger("tortoise.db_client")
    counter = _SqlCounter()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep the statements off the console
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate


# --- the two requests ------------------------------------------------------------------------


Send = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def send_graphql(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": QUERY, "variables": {"first": PAGE_SIZE}},
        headers={"Authorization": f"Bearer {token}"},
    )


async def send_plain(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/plain", headers={"Authorization": f"Bearer {token}"})


ENDPOINTS: dict[str, Send] = {"graphql": send_graphql, "plain": send_plain}


def check_response(name: str, response: httpx.Response) -> None:
    if response.status_code != 200 or b'"errors"' in response.content:
        raise BenchError(f"{name} answered HTTP {response.status_code}: {response.text[:600]}")


def decoded(name: str, response: httpx.Response) -> list[dict[str, Any]]:
    check_response(name, response)
    body = response.json()
    try:
        edges: list[dict[str, Any]] = body["data"]["projects"]["edges"]
    except (KeyError, TypeError):
        raise BenchError(f"{name} answered an unexpected shape: {response.text[:600]}") from None
    return edges


def first_difference(a: Any, b: Any, path: str = "data") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def verify_same_data(graphql: list[dict[str, Any]], plain: list[dict[str, Any]]) -> str:
    """Fail loudly unless both endpoints carry the same projects, tasks and fields."""

    def summary(edges: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
        return [
            (
                e["node"]["code"],
                sum(len(s["tasks"]) for s in e["node"]["stages"]),
                len(e["node"]["materials"]),
            )
            for e in edges
        ]

    if summary(graphql) != summary(plain):
        raise BenchError(
            "graphql and plain disagree on (project code, tasks, materials):\n"
            f"  graphql: {summary(graphql)[:5]}...\n  plain:   {summary(plain)[:5]}..."
        )
    difference = first_difference(graphql, plain)
    if difference is not None:
        raise BenchError(
            f"graphql and plain carry different data; first difference at {difference}"
        )
    if not graphql:
        raise BenchError("both endpoints returned no project; the seeding did not work")
    rows = summary(graphql)
    return (
        f"{len(rows)} projects, {sum(r[1] for r in rows)} tasks, "
        f"{sum(r[2] for r in rows)} materials; every field equal"
    )


async def count_statements(token: str) -> dict[str, int]:
    """SQL statements per request, measured in-process over ASGI on the seeded database."""
    counts: dict[str, int] = {}
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, send in ENDPOINTS.items():
            check_response(name, await send(client, token))  # warm, uncounted
            with counting_sql() as counter:
                check_response(name, await send(client, token))
            counts[name] = counter.count
    return counts


async def profile_graphql(token: str, requests: int) -> str:
    """cProfile of ``requests`` in-process GraphQL requests: where the server's time goes."""
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        check_response("graphql", await send_graphql(client, token))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            check_response("graphql", await send_graphql(client, token))
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


# --- the server ------------------------------------------------------------------------------


async def serve(database_url: str, port: int, gc_threshold: int) -> None:
    """The server subprocess: the bench app under uvicorn until terminated.

    The database is opened here, before uvicorn starts, so every request task inherits
    Tortoise's context (a context variable) whatever its global fallback does.
    """
    import uvicorn

    await open_database(database_url)
    tune_gc(gc_threshold)  # as `onewindow serve` does
    try:
        config = uvicorn.Config(
            build_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        await uvicorn.Server(config).serve()
    finally:
        await close_database()


@asynccontextmanager
async def server(database_url: str, log_dir: Path, gc_threshold: int) -> AsyncIterator[str]:
    """The bench app under uvicorn in a subprocess (``serve``) until it listens; yields its
    base URL. Its log is added to any BenchError; it is terminated at the end."""
    port = free_port()
    argv = [sys.executable, str(SCRIPT), "--serve-port", str(port)]
    argv += ["--database-url", database_url, "--gc-threshold", str(gc_threshold)]
    log_path = log_dir / "server.log"
    name = "the uvicorn server"
    async with listening_process(name, argv, log_path, port, {}, stop_signal=signal.SIGTERM):
        yield f"http://127.0.0.1:{port}"


# --- load ------------------------------------------------------------------------------------


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)  # seconds
    elapsed: float = 0.0
    response_bytes: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else math.nan
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


async def batch(
    client: httpx.AsyncClient,
    name: str,
    token: str,
    requests: int,
    concurrency: int,
    into: Measured | None = None,
) -> None:
    """``requests`` requests by ``concurrency`` workers; each worker sends one after another."""
    send = ENDPOINTS[name]
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await send(client, token)
            latency = time.perf_counter() - started
            check_response(name, response)
            if into is not None:
                into.latencies.append(latency)
                into.response_bytes = len(response.content)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    if into is not None:
        into.elapsed += time.perf_counter() - started


def planned_requests(requested: int, warm: dict[str, Measured], budget: float) -> int:
    """As many requests as asked, or fewer (the same for both) if the warm-up says they would
    take longer than ``budget`` seconds; never fewer than MIN_REQUESTS."""
    if budget <= 0 or any(not m.latencies for m in warm.values()):
        return requested
    seconds_per_pair = sum(m.elapsed / len(m.latencies) for m in warm.values())
    if requested * seconds_per_pair <= budget:
        return requested
    fitted = max(min(requested, MIN_REQUESTS), int(budget / seconds_per_pair))
    print(
        f"  warm-up: graphql {warm['graphql'].rps:.1f} req/s, plain {warm['plain'].rps:.1f}; "
        f"{requested} requests each would take ~{requested * seconds_per_pair:.0f}s, so "
        f"measuring {fitted} each to stay within --budget {budget:.0f}s"
    )
    return fitted


async def drive(
    base_url: str,
    token: str,
    *,
    requests: int,
    concurrency: int,
    rounds: int,
    warmup: int,
    budget: float,
) -> dict[str, Measured]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = {name: Measured() for name in ENDPOINTS}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        verified = verify_same_data(
            decoded("graphql", await send_graphql(client, token)),
            decoded("plain", await send_plain(client, token)),
        )
        print(f"same data over HTTP: {verified}")
        warm = {name: Measured() for name in ENDPOINTS}
        for name in ENDPOINTS:
            await batch(client, name, token, warmup, concurrency, into=warm[name])
        requests = planned_requests(requests, warm, budget)
        rounds = min(rounds, requests)
        per_round = [requests // rounds + (i < requests % rounds) for i in range(rounds)]
        for i, n in enumerate(per_round):
            order = list(ENDPOINTS) if i % 2 == 0 else list(reversed(ENDPOINTS))
            for name in order:
                await batch(client, name, token, n, concurrency, into=results[name])
            done = sum(per_round[: i + 1])
            print(
                f"  round {i + 1}/{rounds}: {done}/{requests} requests each "
                f"(graphql {results['graphql'].rps:.1f} req/s, plain {results['plain'].rps:.1f})"
            )
    return results


# --- report ----------------------------------------------------------------------------------


def report(results: dict[str, Measured], statements: dict[str, int], concurrency: int) -> None:
    g, p = results["graphql"], results["plain"]
    print()
    print(
        f"{'endpoint':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'SQL/req':>10}{'KiB/resp':>10}"
    )
    for name, m in results.items():
        print(
            f"{name:<10}{len(m.latencies):>10}{m.rps:>10.1f}{m.percentile(50):>10.1f}"
            f"{m.percentile(95):>10.1f}{statements[name]:>10}{m.response_bytes / 1024:>10.1f}"
        )
    cost = p.rps / g.rps if g.rps else math.inf
    p50 = g.percentile(50) / p.percentile(50)
    verdict = "met" if cost <= TARGET_RATIO else "NOT met"
    print()
    print(f"graphql cost = plain_rps / graphql_rps = {cost:.2f}x  (target <= 2.0x: {verdict})")
    print(f"p50 ratio    = graphql_p50 / plain_p50  = {p50:.2f}x  (concurrency {concurrency})")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the GraphQL project list with a plain JSON endpoint over HTTP."
    )
    parser.add_argument("--projects", type=int, default=200, help="projects to seed (200)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests each (300)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (6)")
    parser.add_argument("--warmup", type=int, default=16, help="warm-up requests each (16)")
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"measure fewer requests (equal for both) if the warm-up says --requests would "
        f"take longer than this ({DEFAULT_BUDGET:.0f}; 0: no limit)",
    )
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temporary directory; a postgres:// URL names "
        "a database that is DROPPED and created afresh",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile N in-process GraphQL requests and print the top costs",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=Settings().gc_threshold,
        metavar="N",
        help="the server process runs server.app.tune_gc(N) before serving, as `onewindow "
        "serve` does with ONEWINDOW_GC_THRESHOLD (default %(default)s; 0 = Python's defaults)",
    )
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("projects", "requests", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.gc_threshold < 0:
        parser.error("--gc-threshold cannot be negative")
    if args.warmup < 0 or args.profile < 0 or args.budget < 0:
        parser.error("--warmup, --profile and --budget cannot be negative")
    if args.rounds > args.requests:
        parser.error("--rounds cannot exceed --requests")
    if args.database_url and not args.database_url.startswith(
        ("sqlite://", "postgres://", "postgresql://")
    ):
        parser.error("--database-url must start with sqlite://, postgres:// or postgresql://")
    return args


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    started = time.perf_counter()
    url: str = args.database_url or f"sqlite://{workdir / 'bench.sqlite3'}"
    print(f"database: {without_password(url)}")
    if is_postgres(url):
        await recreate_postgres_database(url)
    await migrate(url)
    await open_database(url)
    try:
        seeded = await seed(count=args.projects, say=print)
        print(
            f"seeded {seeded.projects} projects, {seeded.tasks} tasks "
            f"({seeded.tasks / seeded.projects:.1f} each), {seeded.materials} materials "
            f"({seeded.materials / seeded.projects:.1f} each) in {seeded.seconds:.1f}s"
        )
        statements = await count_statements(seeded.token)
        print(f"SQL statements per request: {statements}")
        profile = await profile_graphql(seeded.token, args.profile) if args.profile else None
    finally:
        await close_database()
    async with server(url, workdir, args.gc_threshold) as base_url:
        print(
            f"uvicorn on {base_url}: {args.requests} requests each at concurrency "
            f"{args.concurrency}, {args.rounds} alternating rounds, {args.warmup} warm-up"
            + (f", server gc threshold {args.gc_threshold}" if args.gc_threshold else "")
        )
        results = await drive(
            base_url,
            seeded.token,
            requests=args.requests,
            concurrency=args.concurrency,
            rounds=args.rounds,
            warmup=args.warmup,
            budget=args.budget,
        )
    report(results, statements, args.concurrency)
    if profile is not None:
        print(f"\ncProfile of {args.profile} in-process GraphQL requests:\n{profile}")
    print(f"\ntotal time {time.perf_counter() - started:.0f}s ({os.cpu_count()} CPUs)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_port is not None:
        asyncio.run(serve(args.database_url, args.serve_port, args.gc_threshold))
        return 0
    with tempfile.TemporaryDirectory(prefix="onewindow-bench-") as workdir:
        try:
            asyncio.run(bench(args, Path(workdir)))
        except BenchError as error:
            print(f"bench failed: {error}", file=sys.stderr)
            return 1
        except DomainError as error:
            print(
                f"bench failed: the services refused ({error.code.value}): {error}", file=sys.stderr
            )
            return 1
        except KeyboardInterrupt:
            print("bench interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
