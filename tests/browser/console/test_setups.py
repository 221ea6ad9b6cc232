"""Company setup (企业设立 1+4+X) in the console: the window picks a business type and sees its
one flow, collects the materials once and accepts; a department's queue assigns its inspector to
the site check and, once the inspector signed it, approves; the window issues everything
together (统一发证). 补正: a department's reviewer asks for a material again (its permit's clock
stops), the window receives it and the permit's clock runs again, its deadline moved by the
working days it stood."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from tests.browser.console.conftest import Office, days, serving_office

TASKS = """query($code: String!) { companySetup(code: $code) {
  status tasks { taskId departmentCode siteCheckDue } } }"""
SITE_CHECK_IDS = """query($code: String!) { companySetup(code: $code) {
  tasks { taskId siteCheckId } } }"""
ASSIGN = """mutation($input: AssignInspectorsInput!) { assignInspectors(input: $input) {
  errors { code } } }"""
CONCLUDE = """mutation($input: FileConclusionInput!) { fileConclusion(input: $input) {
  errors { code } } }"""
DECIDE = """mutation($id: Int!) { decideSetupTask(input: {taskId: $id, decision: APPROVED}) {
  errors { code } } }"""
PLAN = """query($type: String!) { setupPlan(businessType: $type) { materials { code name } } }"""
ACCEPT = """mutation($input: AcceptCompanySetupInput!) { acceptCompanySetup(input: $input) {
  setup { code } errors { code } } }"""
SETUP = """query($code: String!) { companySetup(code: $code) { tasks {
  taskId departmentCode status deadline pausedAt siteCheckDue
  supplements { reason materialType materialName requestedAt resolvedAt } } } }"""
SETUPS = """{ companySetups(first: 200) { code companyName } }"""
ASK = """mutation($id: Int!) { requestSetupSupplement(taskId: $id, reason: "再核对") {
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
            # The department assigns its inspector; a wrong name is refused in the dialog.
            await reviewer.page.locator(f"[data-site-check='{food['taskId']}']").click()
            dialog = reviewer.page.locator("[data-test=assign-dialog]")
            await dialog.get_by_label("检查员用户名").fill("xfjy-inspector")
            await dialog.locator("[data-test=assign-submit]").click()
            await expect(dialog.locator("[data-test=assign-problem]")).to_be_visible()
            await dialog.get_by_label("检查员用户名").fill("shiyao-inspector")
            await dialog.locator("[data-test=assign-submit]").click()
            await expect(reviewer.page.get_by_text("已指派检查员")).to_be_visible()
            # The inspector signs in the field app (tests/browser/field records it offline).
            await _pass_site_check(office, code, food, assign=False)
            await reviewer.page.reload()
            await expect(queue).to_contain_text("已踏勘")
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
                await _pass_site_check(office, code, task)
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


async def _site_check_id(office: Office, code: str, task_id: int) -> str:
    setup = (await office.graphql(SITE_CHECK_IDS, {"code": code}, as_="window"))["companySetup"]
    return str(next(t["siteCheckId"] for t in setup["tasks"] if t["taskId"] == task_id))


async def _pass_site_check(
    office: Office, code: str, task: dict[str, Any], *, assign: bool = True
) -> None:
    """The permit department's inspector (the demo's ``<department>-inspector``) signs a passing
    conclusion of the task's site check, after its reviewer assigned them (``assign``); the
    field app's own path is tests/browser/field."""
    who = task["departmentCode"]
    inspection = await _site_check_id(office, code, task["taskId"])
    if assign:
        variables = {"inspectionId": inspection, "usernames": [f"{who}-inspector"]}
        assigned = await office.graphql(ASSIGN, {"input": variables}, as_=who)
        assert assigned["assignInspectors"]["errors"] == []
    concluded = await office.graphql(
        CONCLUDE,
        {"input": {"inspectionId": inspection, "result": "PASS", "note": "现场核查合格"}},
        as_=f"{who}-inspector",
    )
    assert concluded["fileConclusion"]["errors"] == []


def _food(setup: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in setup["tasks"] if t["departmentCode"] == "shiyao")


async def _accepted_restaurant(office: Office, name: str, materials: list[str]) -> str:
    form = {
        "companyName": name,
        "businessType": "restaurant",
        "region": "371402",
        "contactName": "王磊",
        "contactPhone": "13805341234",
        "materials": materials,
        "commitments": [],
    }
    accepted = (await office.graphql(ACCEPT, {"input": form}, as_="window"))["acceptCompanySetup"]
    assert accepted["errors"] == []
    return str(accepted["setup"]["code"])


async def _food_task(office: Office, code: str) -> dict[str, Any]:
    return _food((await office.graphql(SETUP, {"code": code}, as_="window"))["companySetup"])


async def test_a_reviewer_asks_for_a_supplement_and_the_window_receives_it_so_the_clock_runs_again(
    browser: Browser, office: Office
) -> None:
    plan = (await office.graphql(PLAN, {"type": "restaurant"}, as_="window"))["setupPlan"]
    held = [m["code"] for m in plan["materials"]]
    code = await _accepted_restaurant(office, "德州市聚贤阁餐饮有限公司", held)
    raced = await _accepted_restaurant(office, "德州市同福居餐饮有限公司", held)
    food, other = await _food_task(office, code), await _food_task(office, raced)
    assert food["status"] == "pending" and food["pausedAt"] is None
    # The demo's seventh setup has waited for its layout at 食药监局 since yesterday (Sunday).
    demo = next(
        s["code"]
        for s in (await office.graphql(SETUPS, as_="window"))["companySetups"]
        if s["companyName"] == "德州市一品小吃有限公司"
    )
    waited = await _food_task(office, demo)
    assert waited["status"] == "supplement_requested" and waited["pausedAt"] is not None

    reviewer = await office.open(browser, "shiyao", path="/setup-queue")
    page = reviewer.page
    try:
        queue = page.locator("[data-test=setup-tasks]")
        await expect(queue.locator(f"[data-waiting='{waited['taskId']}']")).to_have_text("等待补正")
        dialog = page.locator("[data-test=supplement-dialog]")
        # Another reviewer of the department asks first: the refusal is told in the dialog.
        await page.locator(f"[data-supplement='{other['taskId']}']").click()
        await expect(dialog).to_contain_text("德州市同福居餐饮有限公司")
        await dialog.get_by_label("需补正的内容和理由").fill("请补正。")
        asked = await office.graphql(ASK, {"id": other["taskId"]}, as_="shiyao")
        assert asked["requestSetupSupplement"]["errors"] == []
        await dialog.locator("[data-test=submit-supplement]").click()
        await expect(dialog.locator("[data-test=supplement-problem]")).to_contain_text(
            "当前状态不允许此操作"
        )
        stored = await _food_task(office, raced)
        assert [r["reason"] for r in stored["supplements"]] == ["再核对"]
        await dialog.get_by_role("button", name="取消").click()
        await expect(dialog).to_be_hidden()

        await page.locator(f"[data-supplement='{food['taskId']}']").click()
        await expect(dialog).to_contain_text("德州市聚贤阁餐饮有限公司")
        await dialog.locator("[data-test=submit-supplement]").click()  # no reason given
        await expect(dialog.locator("[data-test=reason-problem]")).to_have_text(
            "请写明需补正的内容和理由"
        )
        assert (await _food_task(office, code))["supplements"] == []
        await dialog.get_by_label("需补正的内容和理由").fill("平面布局图未标明加工操作区, 请补正。")
        await dialog.locator("[data-test=supplement-material]").click()
        await page.get_by_role("option", name="经营场所平面布局图及设备布局图").click()
        await dialog.locator("[data-test=submit-supplement]").click()
        await expect(page.get_by_text("已要求补正, 计时中止至材料收到")).to_be_visible()
        await expect(queue.locator(f"[data-waiting='{food['taskId']}']")).to_have_text("等待补正")
        await expect(queue.locator(f"[data-request='{food['taskId']}']")).to_contain_text(
            "平面布局图未标明加工操作区"
        )
        await expect(page.locator(f"[data-approve='{food['taskId']}']")).to_have_count(0)
        assert reviewer.errors() == []
    finally:
        await reviewer.close()
    asked_row = await _food_task(office, code)
    assert asked_row["status"] == "supplement_requested" and asked_row["pausedAt"] is not None
    [request] = asked_row["supplements"]
    assert request["materialType"] == "premises_layout" and request["resolvedAt"] is None

    office.clock.advance(days(2))  # Monday to Wednesday: two working days stood
    window = await office.open(browser, "window", path="/setups")
    page = window.page
    try:
        card = page.locator("[data-test=setup-supplements]")
        mine = card.locator("tr", has_text="德州市聚贤阁餐饮有限公司")
        await expect(mine).to_contain_text("食药监局")
        await expect(mine).to_contain_text("经营场所平面布局图及设备布局图")
        await expect(mine).to_contain_text("等待补正")
        await expect(mine).to_contain_text("计时中止")
        demo_row = card.locator("tr", has_text="德州市一品小吃有限公司")
        await expect(demo_row).to_contain_text("等待补正")
        await page.locator(f"[data-deliver='{code}:premises_layout']").click()
        await expect(page.get_by_text("经营场所平面布局图及设备布局图已收")).to_be_visible()
        await expect(mine).to_contain_text("已补正")
        await expect(mine).not_to_contain_text("计时中止")
        resumed = await _food_task(office, code)
        assert resumed["status"] == "pending" and resumed["pausedAt"] is None
        assert resumed["supplements"][0]["resolvedAt"] is not None
        assert resumed["deadline"] > food["deadline"]  # moved by the two working days
        year, month, day = resumed["deadline"].split("-")
        await expect(mine).to_contain_text(f"{year}年{month}月{day}日")
        await expect(page.locator(f"[data-deliver='{code}:premises_layout']")).to_have_count(0)

        await page.locator(f"[data-deliver='{demo}:premises_layout']").click()
        await expect(demo_row).to_contain_text("已补正")
        await expect(demo_row).not_to_contain_text("计时中止")
        again = await _food_task(office, demo)
        assert again["status"] == "pending" and again["deadline"] > waited["deadline"]
        # A request naming no material is the department's to close: nothing to receive here.
        named_none = card.locator("tr", has_text="德州市同福居餐饮有限公司")
        await expect(named_none).to_contain_text("待部门恢复计时")
        await expect(named_none.locator("[data-deliver]")).to_have_count(0)
        assert window.errors() == []
        await window.screenshot("console-setup-supplement")
    finally:
        await window.close()

    reviewer = await office.open(browser, "shiyao", path="/setup-queue")
    page = reviewer.page
    try:
        queue = page.locator("[data-test=setup-tasks]")
        # Back to review: the site check due before approval is offered again.
        await expect(page.locator(f"[data-site-check='{food['taskId']}']")).to_be_visible()
        await expect(queue.locator(f"[data-waiting='{food['taskId']}']")).to_have_count(0)
        await page.locator(f"[data-resume='{other['taskId']}']").click()
        await page.get_by_role("button", name="确定").click()
        await expect(page.get_by_text("计时已恢复, 期限相应顺延")).to_be_visible()
        await expect(queue.locator(f"[data-waiting='{other['taskId']}']")).to_have_count(0)
        await expect(page.locator(f"[data-supplement='{other['taskId']}']")).to_be_visible()
        assert reviewer.errors() == []
    finally:
        await reviewer.close()
    closed = await _food_task(office, raced)
    assert closed["status"] == "pending" and closed["pausedAt"] is None
    assert closed["supplements"][0]["resolvedAt"] is not None
    assert closed["deadline"] > other["deadline"]


DECIDE_AS = """mutation($id: Int!, $decision: Decision!, $opinion: String!) {
  decideSetupTask(input: {taskId: $id, decision: $decision, opinion: $opinion}) {
  setup { status } errors { code } } }"""
RETURN = """mutation($id: Int!) { requestSetupSupplement(taskId: $id,
  reason: "平面布局图未标明加工操作区", materialType: "premises_layout") { errors { code } } }"""
HISTORY = """query($code: String!) { companySetup(code: $code) { tasks { taskId
  history { round decidedBy } } } }"""
ROUNDS = """query($code: String!) { companySetup(code: $code) { status statusLabel
  materials { code status } tasks { taskId departmentCode status decision round deadline } } }"""


async def test_a_setup_waiting_at_supplement_is_accepted_again_and_the_returned_permit_reviews_anew(
    browser: Browser, office: Office
) -> None:
    plan = (await office.graphql(PLAN, {"type": "restaurant"}, as_="window"))["setupPlan"]
    code = await _accepted_restaurant(
        office, "德州市鸿宾楼餐饮有限公司", [m["code"] for m in plan["materials"]]
    )
    tasks = (await office.graphql(TASKS, {"code": code}, as_="window"))["companySetup"]["tasks"]
    food = _food({"tasks": tasks})
    asked = await office.graphql(RETURN, {"id": food["taskId"]}, as_="shiyao")
    assert asked["requestSetupSupplement"]["errors"] == []
    decided = await office.graphql(
        DECIDE_AS,
        {
            "id": food["taskId"],
            "decision": "SUPPLEMENT_REQUIRED",
            "opinion": "布局图需补正后重新提交",
        },
        as_="shiyao",
    )
    assert decided["decideSetupTask"]["errors"] == []
    for task in tasks:
        if task["taskId"] == food["taskId"]:
            continue
        who = task["departmentCode"]
        if task["siteCheckDue"]:
            await _pass_site_check(office, code, task)
        done = await office.graphql(
            DECIDE_AS, {"id": task["taskId"], "decision": "APPROVED", "opinion": ""}, as_=who
        )
        assert done["decideSetupTask"]["errors"] == []
    before = (await office.graphql(ROUNDS, {"code": code}, as_="window"))["companySetup"]
    assert before["status"] == "SUPPLEMENT_REQUIRED"
    first = {t["taskId"]: t for t in before["tasks"]}

    office.clock.advance(days(2))
    window = await office.open(browser, "window", path="/setups")
    page = window.page
    try:
        waiting = page.locator(f"[data-waiting-setup='{code}']")
        await expect(waiting).to_contain_text("待补正")
        await expect(waiting).to_contain_text("布局图需补正后重新提交")
        await expect(waiting.locator("tr", has_text="食药监局")).to_contain_text("需补正")
        await expect(waiting.locator("[data-test=returned-materials]")).to_contain_text(
            "经营场所平面布局图及设备布局图"
        )
        # The demo's setup at 待补正 (approval.demo) waits in the same list.
        demo = page.locator("[data-waiting-setup]", has_text="德州市邻里便利店有限公司")
        await expect(demo).to_contain_text("平面布局图未体现生熟分区")
        await expect(demo.locator("[data-reaccept]")).to_be_visible()
        await page.locator(f"[data-reaccept='{code}']").click()
        dialog = page.locator("[data-test=reaccept-dialog]")
        await expect(dialog).to_contain_text("德州市鸿宾楼餐饮有限公司")
        problem = dialog.locator("[data-test=materials-problem]")
        await dialog.locator("[data-test=submit-reaccept]").click()  # nothing picked
        await expect(problem).to_contain_text("输入有误")
        # Another material, not the returned one: refused, the missing one named at the field.
        other = next(m for m in before["materials"] if m["code"] != "premises_layout")
        await dialog.locator(f"[data-material='{other['code']}']").click()
        await dialog.locator("[data-test=submit-reaccept]").click()
        await expect(problem).to_contain_text("材料不齐, 不能受理")
        await expect(problem).to_contain_text("请收取经营场所平面布局图及设备布局图")
        unchanged = (await office.graphql(ROUNDS, {"code": code}, as_="window"))["companySetup"]
        assert unchanged == before
        await dialog.locator("[data-material='premises_layout']").click()
        await dialog.locator("[data-test=submit-reaccept]").click()
        await expect(page.get_by_text(f"{code} 已重新受理")).to_be_visible()
        await expect(dialog).to_be_hidden()
        await expect(waiting).to_have_count(0)
        row = page.locator("[data-test=setups] tr", has_text="德州市鸿宾楼餐饮有限公司")
        await expect(row).to_contain_text("并联审批中")
        after = (await office.graphql(ROUNDS, {"code": code}, as_="window"))["companySetup"]
        assert after["status"] == "IN_REVIEW" and after["statusLabel"] == "并联审批中"
        reopened = next(t for t in after["tasks"] if t["taskId"] == food["taskId"])
        assert reopened["round"] == 2 and reopened["status"] == "pending"
        assert reopened["decision"] is None
        assert reopened["deadline"] > first[food["taskId"]]["deadline"]
        year, month, day = reopened["deadline"].split("-")
        await expect(row.locator(f"[data-round-task='{food['taskId']}']")).to_contain_text(
            f"第2轮 {year}年{month}月{day}日"
        )
        # The permit's first round stays on screen: 需补正, the opinion, who, what was returned.
        earlier = row.locator(f"[data-round-history='{food['taskId']}'] [data-round='1']")
        await expect(earlier).to_contain_text("第1轮 需补正")
        await expect(earlier).to_contain_text("布局图需补正后重新提交")
        await expect(earlier).to_contain_text("平面布局图未标明加工操作区")
        await expect(earlier).to_contain_text("退回材料: 经营场所平面布局图及设备布局图")
        await expect(earlier).to_contain_text("重新受理")
        shown = await office.graphql(HISTORY, {"code": code}, as_="window")
        [kept] = next(
            t["history"] for t in shown["companySetup"]["tasks"] if t["taskId"] == food["taskId"]
        )
        assert kept["decidedBy"] and kept["decidedBy"] in await earlier.inner_text()
        kept = [t for t in after["tasks"] if t["taskId"] != food["taskId"]]
        assert kept and all(t["decision"] == "APPROVED" and t["round"] == 1 for t in kept)
        assert all(t == first[t["taskId"]] for t in kept)  # the other approvals untouched
        assert {m["code"]: m["status"] for m in after["materials"]}["premises_layout"] != (
            "REJECTED"
        )
        assert window.errors() == []
        await window.screenshot("console-setup-reaccept")
    finally:
        await window.close()
    # The department's queue shows the permit in its second round with the first one.
    reviewer = await office.open(browser, "shiyao", path="/setup-queue")
    try:
        queue = reviewer.page.locator("[data-test=setup-tasks]")
        queued = queue.locator(
            "tr", has=reviewer.page.locator(f"[data-round-history='{food['taskId']}']")
        )
        await expect(queued).to_contain_text("第2轮")
        await expect(queued).to_contain_text("第1轮 需补正")
        await expect(queued).to_contain_text("布局图需补正后重新提交")
        assert reviewer.errors() == []
        await reviewer.screenshot("console-setup-rounds")
    finally:
        await reviewer.close()


RATE = """mutation($code: String!, $score: Int!, $comment: String!) {
  rateService(code: $code, score: $score, comment: $comment) { errors { code } } }"""
SETUP_RATINGS = """{ setupRatings { setupCode score followUpOpen followUpDoneAt followUpNote } }"""
SUMMARY = """{ setupRatingSummary { sent rated average bad } }"""


async def test_a_supervisor_follows_up_a_setups_bad_rating_counted_apart_from_projects(
    browser: Browser, office: Office
) -> None:
    from approval.oversight.notifications import collect
    from storage.models import CompanySetup, Rating

    issued = await CompanySetup.get(company_name="德州市书香阁图书有限公司")
    refused = await CompanySetup.get(company_name="德州市速达物流有限公司")
    # Sixty older ratings of another setup (40 of 4, 20 of 3): more than the 50 latest the
    # list shows, so only the server's totals can say what all of them make.
    other = await CompanySetup.exclude(id__in=[issued.id, refused.id]).order_by("id").first()
    assert other is not None
    await Rating.bulk_create(
        [
            Rating(
                setup_id=other.id,
                code=f"OLD{n:08d}",
                score=4 if n < 40 else 3,
                rated_at=office.clock() - days(40),
            )
            for n in range(60)
        ]
    )
    await collect(now=office.clock())  # the demo's issued and refused setups get their codes
    bad = await Rating.get(setup_id=issued.id)
    good = await Rating.get(setup_id=refused.id)
    for rating, score, comment in ((bad, 2, "证照领取排队一小时"), (good, 5, "告知清楚")):
        body = await office.post(RATE, {"code": rating.code, "score": score, "comment": comment})
        assert body["data"]["rateService"]["errors"] == [], body
    projects = await office.graphql("{ followUps { id } }", as_="supervisor")
    office.clock.advance(days(30))  # past the 15 working days of the follow-up

    desk = await office.open(browser, "supervisor", path="/follow-ups?tab=setups")
    page = desk.page
    try:
        tabs = page.locator("[data-test=follow-up-tabs]")
        await expect(tabs.get_by_role("tab", name="企业设立 待回访 1")).to_be_visible()
        await expect(
            tabs.get_by_role("tab", name=f"建设项目 待回访 {len(projects['followUps'])}")
        ).to_be_visible()
        listed = page.locator("[data-test=setup-follow-ups] tbody tr")
        await expect(listed).to_have_count(1)
        await expect(listed).to_contain_text(f"{issued.code} 德州市书香阁图书有限公司")
        await expect(listed).to_contain_text("2 分")
        await expect(listed).to_contain_text("证照领取排队一小时")
        await expect(listed.locator("[data-overdue=true]")).to_be_visible()
        recent = page.locator("[data-test=setup-ratings]")
        await expect(recent).to_contain_text("德州市速达物流有限公司")
        await expect(recent.locator("tr", has_text="德州市速达物流有限公司")).to_contain_text(
            "无需回访"
        )
        # All of them, as the server counts them: 62 rated, (2 + 5 + 40*4 + 20*3) / 62.
        summary = (await office.graphql(SUMMARY, as_="supervisor"))["setupRatingSummary"]
        assert (summary["rated"], summary["average"], summary["bad"]) == (62, 3.66, 1)
        assert summary["sent"] == await Rating.filter(setup_id__not_isnull=True).count()
        totals = page.locator("[data-test=setup-rating-totals]")
        await expect(totals.locator("[data-figure=sent]")).to_have_text(str(summary["sent"]))
        await expect(totals.locator("[data-figure=rated]")).to_have_text("62")
        await expect(totals.locator("[data-figure=average]")).to_have_text("3.66 分")
        await expect(totals.locator("[data-figure=bad]")).to_have_text("1")
        for score, count in ((5, 1), (4, 40), (3, 20), (2, 1), (1, 0)):
            await expect(totals.locator(f"[data-score='{score}']")).to_have_text(
                f"{score}分 {count}"
            )
        follow_ups = totals.locator("[data-figure=follow-ups]")
        await expect(follow_ups).to_have_text("待回访 1 (逾期 1), 已回访 0")
        await expect(page.locator("[data-test=setup-rating-summary]")).to_have_text(
            "最近 50 条, 共 62 条"
        )
        await expect(recent.locator("tbody tr")).to_have_count(50)
        await desk.screenshot("console-setup-follow-ups")

        await listed.locator(f"[data-close-setup-follow-up='{bad.id}']").click()
        dialog = page.locator("[data-test=close-follow-up]")
        await expect(dialog).to_contain_text(issued.code)
        await dialog.locator("[data-test=submit-follow-up]").click()  # no note yet
        await expect(page.get_by_text("请写明回访及整改情况")).to_be_visible()
        await dialog.get_by_label("回访及整改情况").fill("已电话回访, 窗口增设领证取号")
        await dialog.locator("[data-test=submit-follow-up]").click()
        await expect(page.get_by_text("回访已办结")).to_be_visible()
        await expect(listed).to_have_count(0)
        await expect(tabs.get_by_role("tab", name="企业设立 待回访 0")).to_be_visible()
        await expect(follow_ups).to_have_text("待回访 0 (逾期 0), 已回访 1")
        await expect(recent.locator("tr", has_text="德州市书香阁图书有限公司")).to_contain_text(
            "已电话回访, 窗口增设领证取号"
        )
        assert desk.errors() == []
    finally:
        await desk.close()
    stored = {
        r["setupCode"]: r
        for r in (await office.graphql(SETUP_RATINGS, as_="supervisor"))["setupRatings"]
    }
    assert stored[issued.code]["followUpOpen"] is False
    assert stored[issued.code]["followUpNote"] == "已电话回访, 窗口增设领证取号"
    assert stored[refused.code]["score"] == 5 and stored[refused.code]["followUpDoneAt"] is None
    after = await office.graphql("{ followUps { id } }", as_="supervisor")
    assert after == projects  # the construction follow-ups untouched


FIGURES = """{ setupFigures { accepted inReview ready issued refused supplementRequired
  issuedWithinPromise departments { departmentName decided } } }"""


async def test_the_monthly_figures_count_setups_apart_from_projects(
    browser: Browser, office: Office
) -> None:
    served = (await office.graphql(FIGURES, as_="supervisor"))["setupFigures"]
    # The demo: eight setups, one in each state and four still in review.
    assert (served["accepted"], served["inReview"], served["supplementRequired"]) == (8, 4, 1)
    assert (served["ready"], served["issued"], served["refused"]) == (1, 1, 1)
    desk = await office.open(browser, "supervisor", path="/figures")
    page = desk.page
    try:
        figures = page.locator("[data-test=setup-figures]")
        await expect(figures).to_contain_text("与建设项目分开统计")
        labels = {
            "accepted": "受理",
            "inReview": "并联审批中",
            "supplementRequired": "待补正",
            "ready": "待统一发证",
            "issued": "已统一发证",
            "issuedWithinPromise": "承诺时限内发证",
            "refused": "不予许可",
        }
        for key, text in labels.items():
            count = figures.locator(f"[data-count={key}]")
            await expect(count.locator("dt")).to_have_text(text)
            await expect(count.locator("dd")).to_have_text(str(served[key]))
        departments = figures.locator("[data-test=setup-department-figures]")
        busiest = max(served["departments"], key=lambda d: d["decided"])
        await expect(departments.locator("tr", has_text=busiest["departmentName"])).to_contain_text(
            str(busiest["decided"])
        )
        # The construction figures stay the construction departments'.
        construction = page.locator("[data-test=department-figures]")
        await expect(construction).to_contain_text("发展和改革")
        await expect(construction).not_to_contain_text(busiest["departmentName"])
        assert desk.errors() == []
        await desk.screenshot("console-setup-figures", full_page=True)
    finally:
        await desk.close()
