"""Two departments' tablets and a second inspector of the same department edit one inspection
offline, the same check included; once all reconnect, every screen and the rows agree and
nothing recorded is lost."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from approval.core.auth import create_user
from approval.demo import DEMO_PASSWORD
from storage.enums import Role
from tests.browser.field.conftest import (
    LANDSCAPE,
    PORTRAIT,
    Office,
    Tablet,
    checks_of,
    open_inspection,
    open_tablet,
    site_check,
)
from tests.browser_support import eventually

RESULT = {"PASS": "pass", "FAIL": "fail", "NOT_APPLICABLE": "not_applicable", "RECTIFY": "rectify"}


async def test_three_tablets_offline_on_one_inspection_agree(
    browser: Browser, office: Office
) -> None:
    for username, department, name in (
        ("inspector-2", "zjj", "赵强"),
        ("zrzy-inspector", "zrzy", "王芳"),
    ):
        await create_user(
            username=username,
            password=DEMO_PASSWORD,
            display_name=name,
            role=Role.INSPECTOR,
            department_code=department,
        )
    inspection = await site_check(
        office, ["zjj", "zrzy"], ["inspector", "inspector-2", "zrzy-inspector"]
    )
    first = await open_tablet(browser, office, "inspector", viewport=LANDSCAPE)
    second = await open_tablet(browser, office, "inspector-2", viewport=PORTRAIT)
    planning = await open_tablet(browser, office, "zrzy-inspector", viewport=LANDSCAPE)
    tablets: list[Tablet] = [first, second, planning]
    try:
        await open_inspection(first, inspection, "zjj")
        await open_inspection(second, inspection, "zjj")
        await open_inspection(planning, inspection, "zrzy")
        for tablet in tablets:
            await tablet.offline()

        # the same check on both zjj tablets: the results collide, note and measurement do not
        await first.result("fire-lane", "合格")
        await first.note("fire-lane", "车道畅通")
        await second.result("fire-lane", "需整改")
        await second.measure("fire-lane", "3.8")
        await first.result("alarm", "合格")
        await second.result("sprinkler", "不合格")
        await planning.result("setback", "合格")
        await planning.measure("setback", "12.5")
        for tablet in tablets:
            await tablet.context.set_offline(False)

        async def merged() -> dict[str, dict[str, dict[str, object]]] | None:
            rows = await checks_of(office, inspection["id"])
            zjj, zrzy = rows["zjj"], rows["zrzy"]
            done = (
                zjj["fire-lane"]["note"] == "车道畅通"
                and zjj["fire-lane"]["measured"] == {"实测值": 3.8}
                and zjj["alarm"]["outcome"] == "PASS"
                and zjj["sprinkler"]["outcome"] == "FAIL"
                and zrzy["setback"]["outcome"] == "PASS"
                and zrzy["setback"]["measured"] == {"实测值": 12.5}
            )
            return rows if done else None

        rows = await eventually(merged, "every tablet's edits as rows", seconds=10)
        assert rows is not None
        contested = rows["zjj"]["fire-lane"]["outcome"]
        assert contested in ("PASS", "RECTIFY")
        for tablet in tablets:
            await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")
            if tablet is planning:
                await tablet.page.get_by_role("tab", name="住建局").click()
            await expect(tablet.check("fire-lane")).to_have_attribute(
                "data-result", RESULT[str(contested)]
            )
            await expect(
                tablet.check("fire-lane").locator("input[type=number]").first
            ).to_have_value("3.8")
            await expect(tablet.check("sprinkler")).to_have_attribute("data-result", "fail")
            await expect(tablet.check("alarm")).to_have_attribute("data-result", "pass")
        for tablet in (first, second):
            await tablet.page.get_by_role("tab", name="自然资源和规划局").click()
            await expect(tablet.check("setback")).to_have_attribute("data-result", "pass")
        await first.page.get_by_role("tab", name="住建局 (本部门)").click()
        for tablet in (first, second):
            await tablet.page.evaluate("window.scrollTo(0, 0)")
            await tablet.page.wait_for_timeout(600)  # the tab's slide
        await first.screenshot("field-inspection-landscape")
        await second.screenshot("field-inspection-portrait")
        assert all(tablet.errors() == [] for tablet in tablets)
    finally:
        for tablet in tablets:
            await tablet.close()
