"""Browser tests of the office console (/console/) and the self-hosted GraphiQL (/graphql): Debian's
Chromium driven by Playwright against the real server (``server.app.create_app`` under uvicorn in
the test's event loop) on the test database with the demo data (``approval.demo``).

The server's clock starts at the tests' fixed moment and runs on with real time; each browser
context's clock is set to it, so that "today" agrees on both sides. Without Chromium or the
built apps (``make web``) these tests are skipped with what to do; ``REQUIRE_BROWSER=1`` (CI)
makes that a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from approval.demo import DEMO_PASSWORD, seed_demo
from server.app import create_app
from server.settings import Settings
from storage.db import open_database
from storage.models import SupervisionEvent
from tests.browser_support import (
    ARTIFACTS,
    RunningClock,
    launched_browser,
    skip_without_browser,
)
from tests.sync_support import serving

# Monday 2 March 2026, 09:00 in Dezhou: a plain working week inside the known calendar.
DEMO_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LAPTOP = {"width": 1366, "height": 768}
DESKTOP = {"width": 1920, "height": 1080}
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_without_browser(items, Path(__file__).parent, "console", "graphiql")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with launched_browser() as launched:
        yield launched


@dataclass
class Office:
    """The served console with the demo data, and a GraphQL client that asks as any demo user."""

    base: str
    clock: RunningClock
    http: httpx.AsyncClient
    fired: list[SupervisionEvent]
    tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            body = await self.post(
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
                "{ token errors { code message } } }",
                {"u": username, "p": DEMO_PASSWORD},
            )
            token = body["data"]["login"]["token"]
            assert token, body
            self.tokens[username] = token
        return self.tokens[username]

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str
    ) -> Any:
        body = await self.post(query, variables, await self.token(as_))
        assert "errors" not in body, body
        return body["data"]

    async def open(
        self,
        browser: Browser,
        username: str,
        *,
        viewport: dict[str, int] | None = None,
        path: str | None = None,
    ) -> Desk:
        """A browser context of its own with ``username`` logged in through the login screen."""
        context = await browser.new_context(
            viewport=viewport or LAPTOP,  # type: ignore[arg-type]
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            base_url=self.base,
        )
        context.set_default_timeout(TIMEOUT_MS)
        await context.clock.set_system_time(self.clock())
        page = await context.new_page()
        desk = Desk(context=context, page=page, name=username)
        page.on("console", lambda m: desk.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: desk.console.append(f"pageerror: {e}"))
        page.on("request", lambda r: desk.requested.append(r.url))
        await page.goto("/console/")
        await page.get_by_label("用户名").fill(username)
        await page.get_by_label("密码").fill(DEMO_PASSWORD)
        await page.get_by_role("button", name="登录").click()
        await expect(page.locator("[data-test=viewer]")).to_be_visible()
        if path:
            await page.goto(f"/console{path}")
        return desk


@dataclass
class Desk:
    """One person at one screen: a browser context with the console open."""

    context: BrowserContext
    page: Page
    name: str
    console: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    async def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path

    async def close(self) -> None:
        await self.context.close()

    def errors(self) -> list[str]:
        return [line for line in self.console if line.startswith(("pageerror", "error"))]


@contextlib.asynccontextmanager
async def serving_office(
    database: str, tmp_path: Path, *, supervise_seconds: int = 0, web_dir: Path | None = None
) -> AsyncIterator[Office]:
    """The whole app on the test database with the demo seeded as of DEMO_NOW."""
    await seed_demo(now=DEMO_NOW)
    running = RunningClock(DEMO_NOW)
    fired: list[SupervisionEvent] = []

    async def on_events(events: list[SupervisionEvent]) -> None:
        fired.extend(events)

    settings = Settings(
        database_url=database,
        supervise_seconds=supervise_seconds,
        notify_seconds=0,
        log_level="warning",
        object_dir=tmp_path / "objects",
        token_ttl=timedelta(days=60),  # tests move the clock by days
    )
    if web_dir is not None:
        settings = replace(settings, web_dir=web_dir)
    app = create_app(settings, clock=running, on_supervision_events=on_events)
    try:
        async with serving(app) as base:
            http_base = base.replace("ws://", "http://", 1)
            async with httpx.AsyncClient(base_url=http_base, timeout=15) as http:
                yield Office(base=http_base, clock=running, http=http, fired=fired)
    finally:
        await open_database(database)  # the app's lifespan closed the tests' connection


@pytest.fixture
async def office(catalog: None, database: str, tmp_path: Path) -> AsyncIterator[Office]:
    async with serving_office(database, tmp_path) as served:
        yield served


def days(n: int) -> timedelta:
    return timedelta(days=n)
