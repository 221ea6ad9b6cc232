"""Company setup (企业设立 1+4+X) in the console: the window picks a business type and sees its
one flow, collects the materials once and accepts; a department's queue records the site
check and approves; the window issues everything together (统一发证)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from tests.browser.console.conftest import Office, serving_office

TASKS = """query($code: String!) { companySetup(code: $code) {
  status tasks { taskId departmentCode siteCheckDue } } }"""
SITE_CHECK = """mutation($id: Int!) { recordSetupSiteCheck(taskId: $id, note: "合格") {
  errors { code } } }"""
DECIDE = """mutation($id: Int!) { decideSetupTask(input: {taskId: $id, decision: APPROVED}) {
  errors { code } } }"""


@pytest.fixture
async def office(catalog: None, database: str, tmp_path: Path) -> AsyncIterator[Office]:
    """The console with the demo seeded on the company catalog too (setups and their reviewers)."""
    await load_company_catalog(load_default_company_catalog())
    async with serving_office(database, tmp_path) as served:
        yield served


async def test_the_window_accepts_a_setup_departments_approve_and_it_is_issued_together(
    browser: Browser, office: Office
) -> None:
    window = await office.open(browser, "window", path="/setups")
    page = window.page
    try:
        intake = page.locator("[data-test=setup-intake]")
        await intake.get_by_label("企业名称").fill("德州市福满楼餐饮有限公司")
        await page.locator("[data-test=business-type]").click()
        await page.get_by_role("option", name="饭店(餐饮服务企业设立)").click()
        plan = page.locator("[data-test=setup-plan]")
        await expect(plan).to_contain_text("餐饮服务企业设立")
        permits = page.locator("[data-test=setup-permits]")
        await expect(permits).to_contain_text("食品经营许可证")
        await expect(permits).to_contain_text("消防安全检查")
        await expect(permits).to_contain_text("工商局")
        await intake.get_by_label("联系人").fill("冯军")
        await intake.get_by_label("联系电话").fill("13805349999")
        await page.locator("[data-test=accept-setup]").click()
        refused = page.locator(".api-error")  # nothing ticked yet
        await expect(refused).to_contain_text("材料不齐, 不能受理")
        boxes = page.locator("[data-test=setup-materials] .el-checkbox")
        for index in range(await boxes.count()):
            await boxes.nth(index).click()
        await page.locator("[data-test=accept-setup]").click()
        await expect(page.get_by_text("已受理, 受理编号")).to_be_visible()
        row = page.locator("[data-test=setups] tr", has_text="德州市福满楼餐饮有限公司")
        await expect(row).to_contain_text("并联审批中")
        code = (await row.locator("td").first.inner_text()).strip()
        await window.screenshot("console-setup-intake")

        tasks = (await office.graphql(TASKS, {"code": code}, as_="window"))["companySetup"]
        food = next(t for t in tasks["tasks"] if t["departmentCode"] == "shiyao")
        reviewer = await office.open(browser, "shiyao", path="/setup-queue")
        try:
            queue = reviewer.page.locator("[data-test=setup-tasks]")
            await expect(queue).to_contain_text("食品经营许可证")
            await reviewer.page.locator(f"[data-site-check='{food['taskId']}']").click()
            await expect(reviewer.page.get_by_text("现场踏勘已记录")).to_be_visible()
            await reviewer.page.locator(f"[data-approve='{food['taskId']}']").click()
            await expect(reviewer.page.get_by_text("已准予许可")).to_be_visible()
            assert reviewer.errors() == []
        finally:
            await reviewer.close()

        for task in tasks["tasks"]:
            if task["taskId"] == food["taskId"]:
                continue
            who = task["departmentCode"]
            if task["siteCheckDue"]:
                await office.graphql(SITE_CHECK, {"id": task["taskId"]}, as_=who)
            await office.graphql(DECIDE, {"id": task["taskId"]}, as_=who)

        await page.reload()
        await expect(row).to_contain_text("待统一发证")
        await page.locator(f"[data-issue='{code}']").click()
        await page.get_by_role("button", name="确定").click()
        await expect(page.get_by_text("已统一发证")).to_be_visible()
        await expect(row).to_contain_text("已发证")
        assert window.errors() == []
    finally:
        await window.close()
