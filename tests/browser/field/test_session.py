"""The session and the tablet's copy: an expired login keeps every edit and sends it after the
next login; the export holds unsynced work; logout warns about it, then wipes the tablet; the
screens fit a landscape and a portrait tablet and a phone without sideways scrolling."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Dialog, expect

from approval.demo import DEMO_PASSWORD
from tests.browser.field.conftest import (
    LANDSCAPE,
    PHONE,
    PORTRAIT,
    Office,
    checks_of,
    open_inspection,
    open_tablet,
    site_check,
)
from tests.browser_support import eventually

DATABASES = """async () => (await indexedDB.databases())
  .map((d) => d.name).filter((n) => n.startsWith('onewindow-field:'))"""


async def test_an_expired_login_keeps_the_edits_and_sends_them_after_the_next_login(
    browser: Browser, office: Office
) -> None:
    inspection = await site_check(office, ["zjj"], ["inspector"])
    tablet = await open_tablet(browser, office, "inspector")
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        await tablet.result("alarm", "不合格")
        # the note is still being typed when the person closes the page: the note is saved and
        # the browser asks first, since its write to the tablet's storage is under way
        await tablet.check("alarm").locator("textarea").fill("报警主机故障")
        asked: list[str] = []

        async def stay(dialog: Dialog) -> None:
            asked.append(dialog.type)
            await dialog.dismiss()

        tablet.page.on("dialog", stay)
        await tablet.page.close(run_before_unload=True)

        async def were_asked() -> bool:
            return asked == ["beforeunload"]

        await eventually(were_asked, "the browser asks before closing")
        tablet.page.remove_listener("dialog", stay)
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 2 项")
        # both edits are in the tablet's log before the page goes away (a reload that the guard
        # stopped would never finish)
        await expect(tablet.page.locator("[data-test=sync-bar]")).to_have_attribute(
            "data-saving", "false"
        )
        # two months later (the token lasts 60 days here), still offline, then back online
        office.clock.advance(timedelta(days=61))
        await tablet.context.clock.set_system_time(office.clock())
        await tablet.page.reload()
        await expect(tablet.page.locator("[data-test=expired]")).to_contain_text("登录已失效")
        await tablet.context.set_offline(False)
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 2 项")
        assert (await checks_of(office, inspection["id"]))["zjj"]["alarm"]["outcome"] is None

        await tablet.page.locator("[data-test=expired]").get_by_role("link").click()
        await expect(tablet.page.get_by_label("用户名")).to_have_value("inspector")
        await tablet.page.get_by_label("密码").fill(DEMO_PASSWORD)
        await tablet.page.get_by_role("button", name="登录").click()

        async def sent() -> bool:
            rows = await checks_of(office, inspection["id"])
            alarm = rows["zjj"]["alarm"]
            return alarm["outcome"] == "FAIL" and alarm["note"] == "报警主机故障"

        await eventually(sent, "the edits made before the login expired, as rows")
        await expect(tablet.page.locator("[data-test=expired]")).to_have_count(0)
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")

        # online, logging out revokes the token on the server too
        saved = await tablet.page.evaluate("localStorage.getItem('onewindow.field.session')")
        token = json.loads(saved)["token"]
        assert "errors" not in await office.post("query { viewer { username } }", token=token)
        await tablet.page.locator("[data-test=logout]").click()
        await tablet.page.locator("[data-test=logout-confirmed]").click()
        await expect(tablet.page.get_by_role("button", name="登录")).to_be_visible()
        refused = await office.post("query { viewer { username } }", token=token)
        assert refused["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "TOKEN_EXPIRED")
    finally:
        await tablet.close()


async def test_export_then_logout_warns_and_wipes_the_tablet(
    browser: Browser, office: Office, tmp_path: Path
) -> None:
    inspection = await site_check(office, ["zjj"], ["inspector"])
    tablet = await open_tablet(browser, office, "inspector")
    page = tablet.page
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        await tablet.result("sprinkler", "需整改")
        await expect(page.locator("[data-test=pending]")).to_contain_text("待同步 1 项")

        async with page.expect_download() as download_info:
            await page.locator("[data-test=export]").click()
        download = await download_info.value
        saved = tmp_path / "export.json"
        await download.save_as(saved)
        work = json.loads(saved.read_text(encoding="utf-8"))
        assert work["username"] == "inspector"
        [edit] = work["edits"]
        assert edit["doc"] == inspection["documentName"]
        assert edit["intent"]["check"] == "sprinkler" and edit["intent"]["result"] == "rectify"
        assert edit["state"] == "pending"

        assert len(await page.evaluate(DATABASES)) == 2  # the user's database and the document
        await page.locator("[data-test=logout]").click()
        warning = page.locator("[data-test=logout-confirm]")
        await expect(warning).to_contain_text("1 项记录和 0 张照片未同步")
        await warning.get_by_role("button", name="取消").click()
        await expect(page.locator("[data-test=pending]")).to_contain_text("待同步 1 项")

        await page.locator("[data-test=logout]").click()
        await warning.locator("[data-test=logout-confirmed]").click()
        await expect(page.get_by_role("button", name="登录")).to_be_visible()
        assert await page.evaluate(DATABASES) == []
        assert await page.evaluate("localStorage.getItem('onewindow.field.session')") is None
        assert (await checks_of(office, inspection["id"]))["zjj"]["sprinkler"]["outcome"] is None
    finally:
        await tablet.close()


async def test_the_screens_fit_tablets_and_a_phone(browser: Browser, office: Office) -> None:
    inspection = await site_check(office, ["zjj", "zrzy"], ["inspector"])
    for viewport in (LANDSCAPE, PORTRAIT, PHONE):
        tablet = await open_tablet(browser, office, "inspector", viewport=viewport)
        try:
            overflow = "document.documentElement.scrollWidth - window.innerWidth"
            await expect(tablet.page.locator("[data-test=inspection-row]").first).to_be_visible()
            assert await tablet.page.evaluate(overflow) <= 0, viewport
            await open_inspection(tablet, inspection, "zjj")
            assert await tablet.page.evaluate(overflow) <= 0, viewport
            smallest = await tablet.page.evaluate(
                """() => Math.min(...[...document.querySelectorAll('[data-check] button')]
                    .map((b) => b.getBoundingClientRect().height))"""
            )
            assert smallest >= 44, (viewport, smallest)  # touch targets
        finally:
            await tablet.close()
