"""The window clerk's main path: one application form (一表制), the material checklist, a
file through the ticket flow, and a stage accepted with one 容缺 commitment; refusals in Chinese."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from approval.core.codes import credit_code_with_check
from tests.browser.console.conftest import Office

FIRST17 = "91371400MA3C98765"
STAGE = "project_approval"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

APPLICATION = """
query($projectId: ID!, $stage: String!) {
  stageApplication(projectId: $projectId, stage: $stage) {
    missingCore missingNonCore
    materials { core holding latestCommitmentDue materialType { code name } }
  }
}"""
PROJECT = """
query($code: String!) {
  project(code: $code) {
    id
    stages { code status tasks { id } }
    materials { status commitmentDue commitmentSignedBy materialType { code }
      versions { fileName file { contentType } } }
  }
}"""
SUBMIT = """
mutation($input: SubmitMaterialInput!) {
  submitMaterial(input: $input) { material { id } errors { code message } }
}"""


async def pick(page: Page, select: str, option: str) -> None:
    """Choose ``option`` in the Element Plus select whose input has id ``select``."""
    await page.locator(f"#{select}").click()
    await page.get_by_role("option", name=option).click()


async def test_the_clerk_creates_and_accepts_a_project_with_one_commitment(
    browser: Browser, office: Office, tmp_path: Path
) -> None:
    desk = await office.open(browser, "window", path="/projects/new")
    page = desk.page
    try:
        await page.get_by_label("项目名称 *").fill("德州市第二污水处理厂扩建工程")
        await pick(page, "f-region", "德城区 (区)")
        await page.get_by_label("行业代码 *").fill("46")
        await page.get_by_label("用地面积 (㎡) *").fill("26000")
        await page.get_by_label("规划建筑面积 (㎡) *").fill("18000")
        await page.get_by_label("总投资 (万元) *").fill("32000")
        await page.get_by_label("企业名称 *").fill("德州水务集团有限公司")
        # The check character is checked as it is typed, before anything reaches the server.
        code = credit_code_with_check(FIRST17)
        wrong = FIRST17 + ("0" if code[-1] != "0" else "1")
        credit = page.get_by_label("统一社会信用代码 *")
        await credit.fill(wrong)
        problem = page.locator("[data-test=credit-code-problem]")
        await expect(problem).to_contain_text(f'校验位应为 "{code[-1]}"')
        await desk.screenshot("window-form-credit-code")
        await credit.fill(code.lower())
        await expect(problem).to_have_count(0)
        await page.get_by_role("button", name="提交申报").click()

        created = re.compile(r"/console/projects/2026-371402-46-01-\d{6}\?tab=intake")
        await expect(page).to_have_url(created)
        project_code = page.url.split("/projects/")[1].split("?")[0]
        await expect(page.locator("[data-test=project-code]")).to_have_text(project_code)
        project = (await office.graphql(PROJECT, {"code": project_code}, as_="window"))["project"]
        needs = (
            await office.graphql(
                APPLICATION, {"projectId": project["id"], "stage": STAGE}, as_="window"
            )
        )["stageApplication"]
        assert needs["missingCore"] and needs["missingNonCore"]
        # Nothing held yet: the window says why it cannot accept.
        await expect(page.locator("[data-test=blockers]")).to_contain_text("缺少核心材料")
        await expect(page.locator("[data-test=accept]")).to_be_disabled()

        # One material through the ticket flow on screen (hash, PUT, confirm), with progress.
        core = next(m for m in needs["materials"] if m["core"])
        await page.get_by_role("tab", name="一套材料").click()
        await pick(page, "m-type", core["materialType"]["name"])
        pdf = tmp_path / "可行性研究报告.pdf"
        pdf.write_bytes(PDF)
        await page.locator("[data-test=material-file]").set_input_files(str(pdf))
        await page.get_by_role("button", name="收取", exact=True).click()
        await expect(page.get_by_text("材料已收取, 各部门共用")).to_be_visible()
        await expect(page.locator("[data-test=materials]")).to_contain_text("可行性研究报告.pdf")

        # The rest on paper through the API, all but one non-core material.
        promised = needs["materials"][-1]
        assert not promised["core"]
        for material in needs["materials"]:
            if material is promised or material is core or material["holding"] != "MISSING":
                continue
            answer = await office.graphql(
                SUBMIT,
                {
                    "input": {
                        "projectId": project["id"],
                        "materialType": material["materialType"]["code"],
                        "fileName": f"{material['materialType']['name']}.pdf",
                    }
                },
                as_="window",
            )
            assert answer["submitMaterial"]["errors"] == []

        await page.get_by_role("tab", name="受理").click()
        await page.get_by_role("button", name="刷新").last.click()
        # Refreshed: the materials given on paper no longer wait for a commitment (filling the
        # date before the refresh answered lost it when the rows were drawn again).
        await expect(page.locator("[data-commitment]")).to_have_count(1)
        row = page.locator(f"[data-commitment={promised['materialType']['code']}]")
        await expect(row).to_be_visible()
        latest = date.fromisoformat(promised["latestCommitmentDue"])
        due = row.get_by_label(f"{promised['materialType']['name']} 承诺补交日期")
        # A date after the latest the API allows is refused on screen, as the API would.
        await due.fill((latest + timedelta(days=1)).isoformat())
        await due.press("Enter")
        await row.get_by_label(f"{promised['materialType']['name']} 承诺人").fill("刘建华")
        await expect(row).to_contain_text("不得晚于")
        await expect(page.locator("[data-test=accept]")).to_be_disabled()
        await due.fill(latest.isoformat())
        await due.press("Enter")
        await expect(row).not_to_contain_text("不得晚于")
        accept = page.locator("[data-test=accept]")
        await expect(accept).to_contain_text("容缺 1 项")
        await page.locator("[data-test=checklist]").scroll_into_view_if_needed()
        await desk.screenshot("window-intake-commitment")
        await accept.click()
        accepted = re.compile("已受理, \\d+ 个部门事项同时开始办理")
        await expect(page.get_by_text(accepted)).to_be_visible()

        project = (await office.graphql(PROJECT, {"code": project_code}, as_="window"))["project"]
        stage = next(s for s in project["stages"] if s["code"] == STAGE)
        assert stage["status"] == "IN_REVIEW" and len(stage["tasks"]) > 1
        materials = {m["materialType"]["code"]: m for m in project["materials"]}
        commitment = materials[promised["materialType"]["code"]]
        assert commitment["status"] == "COMMITTED"
        assert commitment["commitmentDue"] == latest.isoformat()
        assert commitment["commitmentSignedBy"] == "刘建华"
        uploaded = materials[core["materialType"]["code"]]["versions"][-1]
        assert uploaded["fileName"] == "可行性研究报告.pdf"
        assert uploaded["file"]["contentType"] == "application/pdf"
        await page.get_by_role("tab", name="办理进度").click()
        await expect(page.locator(f"[data-stage={STAGE}]")).to_contain_text("审批中")
        assert desk.errors() == []
    finally:
        await desk.close()


async def test_a_wrong_password_and_a_refused_acceptance_are_told_in_chinese(
    browser: Browser, office: Office
) -> None:
    context = await browser.new_context(locale="zh-CN", base_url=office.base)
    page = await context.new_page()
    try:
        await page.goto("/console/")
        await page.get_by_label("用户名").fill("window")
        await page.get_by_label("密码").fill("not-the-password")
        await page.get_by_role("button", name="登录").click()
        await expect(page.locator("[data-test=login-error]")).to_have_text("用户名或密码错误")
    finally:
        await context.close()
    # A project collecting materials: the window sees what is missing for the next stage.
    desk = await office.open(browser, "window", path="/projects")
    try:
        await desk.page.get_by_role("link", name=re.compile("2026-")).first.wait_for()
        listed = await office.graphql(
            "{ projects(first: 50) { edges { node { code stages { code status } } } } }",
            as_="window",
        )
        fresh = next(
            e["node"]["code"]
            for e in listed["projects"]["edges"]
            if all(s["status"] == "NOT_STARTED" for s in e["node"]["stages"])
        )
        await desk.page.goto(f"/console/projects/{fresh}?tab=intake")
        await expect(desk.page.locator("[data-test=blockers]")).to_contain_text("缺少核心材料")
        await expect(desk.page.locator("[data-test=checklist]")).to_contain_text("缺少")
        assert desk.errors() == []
    finally:
        await desk.close()
