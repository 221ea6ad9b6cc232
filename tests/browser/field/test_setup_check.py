"""A company setup's site check in the field app: the demo's restaurant (德州市老街餐饮有限公司,
in review) has its food-business check assigned to ``shiyao-inspector``; the list and the screen
show the company, business type and setup code instead of a project; the inspector records the
checklist and signs offline, and once online the check is done and 食药监局 may approve the
permit, which it could not before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from tests.browser.field.conftest import Office, checks_of, open_tablet, serving_office
from tests.browser_support import eventually

RESTAURANT = "德州市老街餐饮有限公司"
SETUPS = """{ companySetups(first: 200) { code companyName businessType { name }
  tasks { taskId permitCode siteCheckId siteCheckDoneAt } } }"""
INSPECTION = """query($id: ID!) { inspection(id: $id) { status
  departments { department { code } checks { code measurable } } } }"""
DECIDE = """mutation($id: Int!) { decideSetupTask(input: {taskId: $id, decision: APPROVED}) {
  setup { code } errors { code message } } }"""


@pytest.fixture
async def office(catalog: None, database: str, tmp_path: Path) -> AsyncIterator[Office]:
    """The demo served with the company catalog too (its setups, their site checks)."""
    await load_company_catalog(load_default_company_catalog())
    async with serving_office(database, tmp_path) as served:
        yield served


async def _food_task(office: Office) -> tuple[dict[str, Any], dict[str, Any]]:
    setups = (await office.graphql(SETUPS, as_="window"))["companySetups"]
    setup = next(s for s in setups if s["companyName"] == RESTAURANT)
    task = next(t for t in setup["tasks"] if t["permitCode"] == "food_business_license")
    return setup, task


async def test_an_inspector_records_a_setups_food_check_offline_and_the_permit_is_approved(
    browser: Browser, office: Office
) -> None:
    setup, task = await _food_task(office)
    assert task["siteCheckId"] and task["siteCheckDoneAt"] is None
    found = await office.graphql(INSPECTION, {"id": task["siteCheckId"]}, as_="supervisor")
    [section] = found["inspection"]["departments"]
    assert section["department"]["code"] == "shiyao"
    checks = section["checks"]
    early = await office.graphql(DECIDE, {"id": task["taskId"]}, as_="shiyao")
    assert [e["code"] for e in early["decideSetupTask"]["errors"]] == ["INVALID_STATE"]

    tablet = await open_tablet(browser, office, "shiyao-inspector")
    page = tablet.page
    try:
        row = page.locator("[data-test=inspection-row]", has_text=RESTAURANT)
        await expect(row).to_contain_text(f"企业设立 {setup['businessType']['name']}")
        await expect(row).to_contain_text(setup["code"])
        await expect(row).to_contain_text("现场踏勘")
        await tablet.screenshot("field-setup-site-check-list")
        await row.click()
        await expect(page.locator("[data-test=inspection-case]")).to_have_text(RESTAURANT)
        await expect(tablet.check("layout").get_by_role("radio").first).to_be_visible()
        await expect(page.locator("[data-test=network]")).to_contain_text("已连接")

        await tablet.offline()
        for check in checks:
            await tablet.result(check["code"], "合格")
            if check["measurable"]:
                await tablet.measure(check["code"], "120")
        await tablet.note("cold-storage", "冷藏柜 2 台运转正常")
        conclusion = page.locator("[data-test=conclusion]")
        await conclusion.get_by_label("合格", exact=True).check()
        await page.get_by_label("结论说明").fill("经营场所符合食品经营许可条件")
        await page.get_by_role("button", name="签署结论").click()
        await expect(conclusion).to_contain_text("shiyao-inspector 签署于")
        await tablet.screenshot("field-setup-site-check")
        # Nothing reached the server while offline.
        rows = await checks_of(office, task["siteCheckId"])
        assert rows["shiyao"]["layout"]["outcome"] is None

        await tablet.context.set_offline(False)

        async def done() -> dict[str, Any] | None:
            _, now = await _food_task(office)
            return now if now["siteCheckDoneAt"] else None

        await eventually(done, "the setup's site check done after the sync")
        rows = await checks_of(office, task["siteCheckId"])
        assert {code: c["outcome"] for code, c in rows["shiyao"].items() if code != "_section"} == {
            c["code"]: "PASS" for c in checks
        }
        assert rows["shiyao"]["area"]["measured"] == {"实测值": 120}
        assert rows["shiyao"]["_section"]["conclusion"] == "PASS"
        assert rows["shiyao"]["_section"]["signedBy"] == "shiyao-inspector"
        assert tablet.errors() == []
    finally:
        await tablet.close()

    approved = await office.graphql(DECIDE, {"id": task["taskId"]}, as_="shiyao")
    assert approved["decideSetupTask"]["errors"] == []
