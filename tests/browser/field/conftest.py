"""Browser tests of the field app (/field/): Debian's Chromium driven by Playwright against the
real server with the demo data (the office console's ``serving_office``), at tablet sizes.

Each tablet is a browser context of its own (its own IndexedDB, service worker and network),
logged in through the login screen; ``context.set_offline`` cuts its network as a building
site would. Without Chromium or the built app (``make web``) these tests are skipped with what
to do; ``REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from approval.demo import DEMO_PASSWORD
from tests.browser.console.conftest import DEMO_NOW, Office, serving_office
from tests.browser_support import ARTIFACTS, launched_browser, skip_without_browser

__all__ = ["DEMO_NOW", "Office", "Tablet", "serving_office"]

LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000

SITE_CHECK = """
mutation($projectId: ID!, $departments: [String!]!) {
  scheduleSiteCheck(input: {projectId: $projectId, departments: $departments}) {
    inspection { id documentName departments { department { code } checks { code label } } }
    errors { code message }
  }
}"""
ASSIGN = """
mutation($id: ID!, $usernames: [String!]!) {
  assignInspectors(input: {inspectionId: $id, usernames: $usernames}) { errors { code message } }
}"""
FIRST_PROJECT = "query { projects(first: 1) { edges { node { id code name } } } }"
CHECKS = """
query($id: ID!) {
  inspection(id: $id) {
    status
    departments {
      department { code } conclusion signedBy
      checks {
        code outcome note measured photoIds photos { id status takenAt latitude longitude }
        position { latitude longitude accuracy }
      }
      rectifications { description due done }
    }
  }
}"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_without_browser(items, Path(__file__).parent, "field")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with launched_browser() as launched:
        yield launched


@pytest.fixture
async def office(catalog: None, database: str, tmp_path: Path) -> AsyncIterator[Office]:
    async with serving_office(database, tmp_path) as served:
        yield served


async def site_check(
    office: Office, departments: list[str], inspectors: list[str]
) -> dict[str, Any]:
    """A site check of a demo project by ``departments``, assigned to ``inspectors``."""
    project = (await office.graphql(FIRST_PROJECT, as_="window"))["projects"]["edges"][0]["node"]
    scheduled = await office.graphql(
        SITE_CHECK, {"projectId": project["id"], "departments": departments}, as_="window"
    )
    payload = scheduled["scheduleSiteCheck"]
    assert payload["errors"] == [], payload
    inspection: dict[str, Any] = payload["inspection"]
    assigned = await office.graphql(
        ASSIGN, {"id": inspection["id"], "usernames": inspectors}, as_="window"
    )
    assert assigned["assignInspectors"]["errors"] == []
    inspection["project"] = project
    return inspection


async def checks_of(office: Office, inspection_id: str, as_: str = "supervisor") -> dict[str, Any]:
    """The inspection's rows as GraphQL answers: ``{department: {check code: check}}``."""
    data = await office.graphql(CHECKS, {"id": inspection_id}, as_=as_)
    return {
        d["department"]["code"]: {c["code"]: c for c in d["checks"]} | {"_section": d}
        for d in data["inspection"]["departments"]
    }


@dataclass
class Tablet:
    """One person's tablet: a browser context with the field app open."""

    context: BrowserContext
    page: Page
    name: str
    console: list[str] = field(default_factory=list)

    async def offline(self, value: bool = True) -> None:
        await self.context.set_offline(value)
        await expect(self.page.locator("[data-test=network]")).to_contain_text(
            "离线" if value else "已连接"
        )

    def check(self, code: str) -> Locator:
        return self.page.locator(f"[data-check='{code}']").first

    async def result(self, code: str, label: str) -> None:
        await self.check(code).get_by_role("radio", name=label, exact=True).click()

    async def measure(self, code: str, value: str) -> None:
        field_ = self.check(code).locator("input[type=number]").first
        await field_.fill(value)
        await field_.press("Tab")

    async def note(self, code: str, text: str) -> None:
        area = self.check(code).locator("textarea")
        await area.fill(text)
        await area.press("Tab")

    async def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def errors(self) -> list[str]:
        return [line for line in self.console if line.startswith("pageerror")]

    async def close(self) -> None:
        await self.context.close()


async def open_tablet(
    browser: Browser, office: Office, username: str, *, viewport: dict[str, int] | None = None
) -> Tablet:
    """A tablet of its own with ``username`` logged in through the field app's login screen,
    its service worker installed (so that the app opens offline afterwards)."""
    context = await browser.new_context(
        viewport=viewport or LANDSCAPE,  # type: ignore[arg-type]
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        base_url=office.base,
        service_workers="allow",
        permissions=["geolocation"],
        geolocation={"latitude": 37.4341, "longitude": 116.3575, "accuracy": 12},
    )
    context.set_default_timeout(TIMEOUT_MS)
    await context.clock.set_system_time(office.clock())
    page = await context.new_page()
    tablet = Tablet(context=context, page=page, name=username)
    page.on("console", lambda m: tablet.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: tablet.console.append(f"pageerror: {e}"))
    await page.goto("/field/")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("[data-test=sync-bar]")).to_be_visible()
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    return tablet


async def open_inspection(tablet: Tablet, inspection: dict[str, Any], department: str) -> None:
    """From the list to the inspection, its document synced once (so it works offline); the
    tablet's own ``department`` section is the one shown first."""
    row = tablet.page.locator("[data-test=inspection-row]", has_text=inspection["project"]["name"])
    await row.first.click()
    [section] = [d for d in inspection["departments"] if d["department"]["code"] == department]
    first = section["checks"][0]["code"]
    await expect(tablet.check(first).get_by_role("radio").first).to_be_visible()
    await expect(tablet.page.locator("[data-test=network]")).to_contain_text("已连接")
