"""A new version of the app (a new service worker) waits while a checklist is open, reloads
only when the person agrees, and drops none of the edits still waiting to sync."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import Browser, WebSocketRoute, expect

from server.web import default_web_dir
from tests.browser.field.conftest import (
    checks_of,
    open_inspection,
    open_tablet,
    serving_office,
    site_check,
)
from tests.browser_support import eventually


async def test_an_update_waits_for_the_person_and_keeps_unsynced_edits(
    browser: Browser, catalog: None, database: str, tmp_path: Path
) -> None:
    web = tmp_path / "web"
    shutil.copytree(default_web_dir(), web)
    async with serving_office(database, tmp_path, web_dir=web) as office:
        inspection = await site_check(office, ["zjj"], ["inspector"])
        tablet = await open_tablet(browser, office, "inspector")
        page = tablet.page
        try:
            await open_inspection(tablet, inspection, "zjj")
            # a later visit: the page is controlled by the installed service worker
            await page.reload()
            await page.wait_for_function("navigator.serviceWorker.controller !== null")

            # the sync server stops answering (the socket opens, nothing comes back), so the
            # edit stays waiting while the update happens
            answering = False

            async def sync_socket(ws: WebSocketRoute) -> None:
                if answering:
                    ws.connect_to_server()

            await tablet.context.route_web_socket("**/sync/**", sync_socket)
            await tablet.offline()
            await tablet.context.set_offline(False)
            await tablet.result("alarm", "不合格")
            await expect(page.locator("[data-test=pending]")).to_contain_text("待同步 1 项")
            await page.evaluate("window.__sameDocument = true")

            sw = web / "field" / "sw.js"
            sw.write_text(sw.read_text(encoding="utf-8") + "\n// the next version\n", "utf-8")
            await page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
            banner = page.locator("[data-test=update-ready]")
            await expect(banner).to_be_visible()
            await page.wait_for_timeout(1000)
            assert await page.evaluate("window.__sameDocument === true")  # no reload by itself

            await banner.get_by_role("button", name="立即更新").click()
            await page.wait_for_function("window.__sameDocument === undefined")
            await expect(tablet.check("alarm")).to_have_attribute("data-result", "fail")
            await expect(page.locator("[data-test=pending]")).to_contain_text("待同步 1 项")
            await expect(banner).to_have_count(0)
            assert (await checks_of(office, inspection["id"]))["zjj"]["alarm"]["outcome"] is None

            answering = True
            await tablet.offline()
            await tablet.context.set_offline(False)

            async def sent() -> bool:
                rows = await checks_of(office, inspection["id"])
                return rows["zjj"]["alarm"]["outcome"] == "FAIL"

            await eventually(sent, "the edit kept across the update, as a row")
        finally:
            await tablet.close()
