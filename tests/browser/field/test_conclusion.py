"""An inspector records a rectification with its due date and signs the department's
conclusion offline; online, the rows show both and the round closes; what the server would
refuse (a due date in the past, no conclusion chosen) is refused in the form first."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.field.conftest import (
    PORTRAIT,
    Office,
    open_inspection,
    open_tablet,
    site_check,
)
from tests.browser_support import eventually

SECTION = """
query($id: ID!) {
  inspection(id: $id) {
    status
    departments { conclusion conclusionNote signedBy rectifications { description due done } }
  }
}"""


async def test_rectification_and_signed_conclusion_recorded_offline(
    browser: Browser, office: Office
) -> None:
    inspection = await site_check(office, ["zjj"], ["inspector"])
    tablet = await open_tablet(browser, office, "inspector", viewport=PORTRAIT)
    page = tablet.page
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        await tablet.result("fire-lane", "不合格")

        # refused in the form first, with the reason
        await page.get_by_label("整改内容").fill("清理东侧消防车道占用物")
        await page.get_by_label("整改期限").fill("2026-02-27")
        await page.get_by_role("button", name="添加整改").click()
        await expect(page.get_by_text("整改期限不能早于今天")).to_be_visible()
        await page.get_by_role("button", name="签署结论").click()
        await expect(page.get_by_text("请选择结论")).to_be_visible()

        await page.get_by_label("整改期限").fill("2026-03-09")
        await page.get_by_role("button", name="添加整改").click()
        await expect(page.locator("[data-test=rectification]")).to_contain_text(
            "清理东侧消防车道占用物"
        )
        await page.locator("[data-test=conclusion]").get_by_label("不合格").check()
        await page.get_by_label("结论说明").fill("消防车道不满足要求, 整改后复验")
        await page.get_by_role("button", name="签署结论").click()
        await expect(page.locator("[data-test=conclusion]")).to_contain_text("inspector 签署于")
        await expect(page.get_by_role("button", name="签署结论")).to_have_count(0)

        before = await office.graphql(SECTION, {"id": inspection["id"]}, as_="supervisor")
        assert before["inspection"]["departments"][0]["conclusion"] is None
        await tablet.context.set_offline(False)

        async def closed() -> dict[str, Any] | None:
            data = await office.graphql(SECTION, {"id": inspection["id"]}, as_="supervisor")
            found: dict[str, Any] = data["inspection"]
            # the round closes in the transaction that files the conclusion, but one GraphQL
            # answer reads the inspection and its departments in separate statements, so a
            # commit can fall between them: both are polled as one state
            filed = found["departments"][0]["conclusion"] == "FAIL"
            return found if filed and found["status"] == "RECTIFICATION_REQUIRED" else None

        found = await eventually(closed, "the signed conclusion as rows, the round closed")
        assert found is not None
        [section] = found["departments"]
        assert section["signedBy"] == "inspector"
        assert section["conclusionNote"] == "消防车道不满足要求, 整改后复验"
        assert section["rectifications"] == [
            {"description": "清理东侧消防车道占用物", "due": "2026-03-09", "done": False}
        ]
        assert found["status"] == "RECTIFICATION_REQUIRED"
        await expect(page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")
        assert tablet.errors() == []
    finally:
        await tablet.close()
