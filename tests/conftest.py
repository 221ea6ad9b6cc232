"""Shared fixtures: one migrated test database per session (SQLite by default).

Set ``ONEWINDOW_TEST_DATABASE_URL`` to run against another database; a ``postgres://`` URL
names a database that is dropped and created afresh for the session, and dropped again at its
end (``make test`` names a new one for each run, so that two runs on one machine never share;
under pytest-xdist each worker appends its id, ``<name>_gw0``, to the name).
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.routing import Route

from approval.catalog.load import load_catalog
from approval.catalog.parse import Catalog, load_default_catalog
from approval.core import auth
from approval.core.auth import create_user, issue_token
from approval.core.calendar import load_package_calendar
from schema.app import graphql_app
from storage import models
from storage.db import close_database, migrate, open_database
from storage.enums import Role
from tests.hashing import CHEAP_HASHER

pytest_plugins = ["tests.object_support", "tests.cluster_support"]

# Catalog and calendar tables, children before parents (the order rows must be deleted in).
CATALOG_MODELS = (
    models.SetupPermitMaterial,
    models.SetupFlowPermit,
    models.BusinessType,
    models.SetupFlow,
    models.SetupFlowGroup,
    models.SetupRules,
    models.SetupPermit,
    models.ItemMaterial,
    models.ChecklistTemplate,
    models.ServiceItem,
    models.MaterialType,
    models.StageDefinition,
    models.Department,
    models.Region,
    models.CalendarDay,
    models.CalendarYear,
)


async def _postgres_databases(url: str, *, create: bool) -> None:
    """Drop the test database named by ``url`` and those named after it (``<name>_…``, made by
    tests that start server processes); create it afresh when ``create``."""
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to recreate test database {name!r}: use letters, digits, _")
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    connection = await asyncpg.connect(admin_url)
    try:
        pattern = name.replace("_", "\\_") + "\\_%"
        derived = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2", name, pattern
        )
        for row in derived:
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _delete_regions() -> None:
    """Regions refer to their parent (RESTRICT): delete the leaves first."""
    while await models.Region.exists():
        parents = await models.Region.filter(parent_id__not_isnull=True).values_list(
            "parent_id", flat=True
        )
        await models.Region.exclude(id__in=set(parents)).delete()


async def clear_tables(*tables: type[models.Model]) -> None:
    """Delete every row of ``tables`` (give children before parents)."""
    for table in tables:
        if table is models.Region:
            await _delete_regions()
        else:
            await table.all().delete()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the test database (the `database` fixture, directly "
        "or through other fixtures); make test's PostgreSQL leg, whose other tests do not "
        "depend on the database and ran, the same, in the SQLite leg",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("database_tests_only"):
        return
    kept = [item for item in items if "database" in getattr(item, "fixturenames", ())]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``-n N --dist loadfile`` (``make test``): the tests of one file run in one worker
    (its module fixtures are made once), and the browser tests all run in one worker (one
    Chromium at a time, their timing not squeezed by a second browser)."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileOrBrowser(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/browser/"):
                return "tests/browser"
            scope: str = super()._split_scope(nodeid)
            return scope

    return FileOrBrowser(config, log)


@pytest.fixture(scope="session", autouse=True)
def production_hasher() -> Iterator[PasswordHasher]:
    """Swaps in the cheap hasher (tests/hashing.py) for the session; yields the one the code
    would use."""
    production = auth._hasher
    auth._hasher = CHEAP_HASHER
    yield production
    auth._hasher = production


def worker_database_url(url: str) -> str:
    """``url`` for this test process: under pytest-xdist each worker gets a database of its own
    (``<name>_gw0``, ``<name>_gw1``, ...), so that no worker drops another's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not url.startswith(("postgres://", "postgresql://")):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_{worker}"))


@pytest.fixture(scope="session")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = worker_database_url(os.environ.get("ONEWINDOW_TEST_DATABASE_URL", "")) or (
        f"sqlite://{tmp_path_factory.mktemp('db') / 'onewindow.sqlite3'}"
    )
    postgres = url.startswith(("postgres://", "postgresql://"))
    if postgres:
        await _postgres_databases(url, create=True)
    await migrate(url)
    await open_database(url)
    try:
        yield url
    finally:
        await close_database()
        if postgres:
            await _postgres_databases(url, create=False)


@pytest.fixture
async def clean_catalog(database: str) -> AsyncIterator[None]:
    """An empty catalog and calendar before the test, and so no work that refers to it (a
    test module that left inspections of a checklist behind made the catalog's delete fail on
    PostgreSQL, depending on which worker ran which file first)."""
    await clear_tables(*WORK_MODELS, *CATALOG_MODELS)
    yield


# --- the work: users, projects and the GraphQL client ------------------------------------------

WORK_MODELS = (
    models.DocumentSnapshot,
    models.DocumentUpdate,
    models.DocumentProjection,
    models.AgencyEntry,
    models.Rectification,
    models.CheckResult,
    models.InspectionAssignment,
    models.InspectionDepartment,
    models.Inspection,
    models.MeetingInvitation,
    models.ReviewMeeting,
    models.Rating,
    models.Notification,
    models.SupervisionEvent,
    models.Lease,
    models.TaskPause,
    models.AuditEvent,
    models.SupplementRequest,
    models.MaterialVersion,
    models.Upload,
    models.StoredObject,
    models.Material,
    models.Task,
    models.Stage,
    models.SetupMaterial,
    models.SetupTask,
    models.CompanySetup,
    models.Project,
    models.CodeSequence,
    models.AccessToken,
    models.LoginThrottle,
    models.User,
    models.Enterprise,
)


class Clock:
    """A clock the tests move by hand; nothing sleeps."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    # Monday 2 March 2026, 09:00 in Dezhou: a plain working week.
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))


@functools.cache
def shipped_catalog() -> Catalog:
    """The shipped catalog, parsed once per session (0.14 s a parse; frozen, so shared)."""
    return load_default_catalog()


@pytest.fixture
async def catalog(database: str) -> AsyncIterator[None]:
    """The shipped catalog and holiday calendar loaded, and no work left from other tests."""
    await clear_tables(*WORK_MODELS)
    await load_catalog(shipped_catalog())
    await load_package_calendar()
    yield
    await clear_tables(*WORK_MODELS)


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    tokens: dict[str, str]

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        bearer = token or (self.tokens[as_] if as_ else None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


PASSWORD = "test-password"
USERS = {
    # name: (role, department code)
    "clerk": (Role.WINDOW_CLERK, None),
    "fgw": (Role.REVIEWER, "fgw"),
    "zrzy": (Role.REVIEWER, "zrzy"),
    "inspector": (Role.INSPECTOR, "zjj"),
    "agent": (Role.AGENT, None),
    "supervisor": (Role.SUPERVISOR, None),
}


@pytest.fixture
async def gql(catalog: None, clock: Clock) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client over real ASGI, with a token for each user of USERS."""
    tokens: dict[str, str] = {}
    for name, (role, department) in USERS.items():
        user = await create_user(
            username=name,
            password=PASSWORD,
            display_name=name,
            role=role,
            department_code=department,
        )
        tokens[name], _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=400))
    app = Starlette(
        routes=[Route("/graphql", graphql_app(token_ttl=timedelta(hours=8), clock=clock))]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http=http, tokens=tokens)
