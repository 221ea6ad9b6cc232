"""What every browser test shares (the field app's and the office console's): Debian's Chromium
driven by Playwright's Python package, the skip-or-fail rule when it is missing, a clock that
runs on from the tests' fixed moment, artifacts, and polling.

Playwright's own browser download cannot work here (no internet): the tests launch the
system's Chromium (``apt-get install chromium fonts-noto-cjk``; ``ONEWINDOW_CHROMIUM`` names
another binary) with a fresh profile and nothing that phones home. Without it, or without the
built web app a directory tests, that directory's tests are skipped with what to install;
``REQUIRE_BROWSER=1`` (CI) makes that an error instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.async_api import Browser, BrowserContext, Route, async_playwright

from server.web import default_web_dir
from tests.conftest import Clock

CHROMIUM = os.environ.get("ONEWINDOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ONEWINDOW_TEST_ARTIFACTS", "var/test-artifacts"))
T = TypeVar("T")


def browser_missing(*apps: str) -> str | None:
    """Why browser tests of ``apps`` cannot run here (None: they can)."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return (
            f"browser tests need Chromium at {CHROMIUM}: install it with "
            "`apt-get install chromium fonts-noto-cjk` (or set ONEWINDOW_CHROMIUM)"
        )
    for app in apps:
        if not (default_web_dir() / app / "index.html").is_file():
            return f"browser tests need the built {app} web app: run `make web` (make test does)"
    return None


def skip_without_browser(items: list[pytest.Item], here: Path, *apps: str) -> None:
    """For a ``pytest_collection_modifyitems`` hook: skip the tests under ``here`` (or fail
    the run when ``REQUIRE_BROWSER=1``) when Chromium or a built app is missing."""
    reason = browser_missing(*apps)
    if reason is None:
        return
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if not mine:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"REQUIRE_BROWSER=1 but {reason}")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


@contextlib.asynccontextmanager
async def launched_browser() -> AsyncIterator[Browser]:
    """Headless Chromium; Playwright gives each launch a fresh, throw-away profile (its own
    temporary user data dir), and each test opens its own context (storage, clock, network)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def only_local_network(context: BrowserContext, base: str) -> list[str]:
    """Cut the browser off from everything but ``base`` (the served app): any other request
    is aborted and listed in the returned list, as a network without internet would."""
    blocked: list[str] = []

    async def route(route_: Route) -> None:
        url = route_.request.url
        if url.startswith((base, base.replace("http://", "ws://", 1), "data:", "blob:")):
            await route_.continue_()
        else:
            blocked.append(url)
            await route_.abort("internetdisconnected")

    await context.route("**/*", route)
    return blocked


class RunningClock(Clock):
    """The tests' fixed moment, moving on with real time (for the server and the browsers);
    ``advance`` jumps it forward, as days passing would."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.start = start
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)

    def advance(self, delta: timedelta) -> None:
        self.start += delta


async def eventually(probe: Callable[[], Awaitable[T]], what: str, *, seconds: float = 10.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: T | None = None
    while loop.time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last!r})")


def global_id(kind: str, number: int) -> str:
    """The relay id GraphQL gives the row ``number`` of ``kind``."""
    return base64.b64encode(f"{kind}:{number}".encode()).decode()
