"""Department reviewers: each sees their own queue by deadline with lights; two decide in
parallel from their screens and the stage closes exactly once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

from playwright.async_api import Browser, expect

from approval.core.codes import credit_code_with_check
from approval.core.dates import CHINA
from approval.oversight.supervision import SupervisionSettings, supervise
from tests.browser.console.conftest import Desk, Office

STAGE = "project_approval"

CREATE = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) { project { id code } errors { code message } }
}"""
NEEDS = """
query($projectId: ID!) {
  stageApplication(projectId: $projectId, stage: "project_approval") {
    materials { holding materialType { code } }
  }
}"""
SUBMIT = """
mutation($input: SubmitMaterialInput!) {
  submitMaterial(input: $input) { errors { code message } }
}"""
ACCEPT = """
mutation($projectId: ID!) {
  acceptStageApplication(input: {projectId: $projectId, stage: "project_approval"}) {
    stage { tasks { id department { code } } }
    errors { code message }
  }
}"""
DECIDE = """
mutation($taskId: ID!) {
  decideTask(input: {taskId: $taskId, decision: APPROVED}) { errors { code message } }
}"""
STATE = """
query($code: String!) {
  project(code: $code) {
    stages { code status outcome tasks { id status decision opinion department { code } } }
    auditTrail { action }
  }
}"""


async def accepted_project(office: Office) -> tuple[str, list[dict[str, Any]]]:
    """A new project whose first stage the window accepted with every material held."""
    created = await office.graphql(
        CREATE,
        {
            "input": {
                "name": "德州高新区智能制造产业园项目",
                "creditCode": credit_code_with_check("91371400MA3C55555"),
                "enterpriseName": "德州高新智造有限公司",
                "region": "371402",
                "projectType": "APPROVAL",
                "industryCode": "34",
                "landArea": "50000",
                "floorArea": "80000",
                "investment": "60000",
            }
        },
        as_="window",
    )
    project = created["createProject"]["project"]
    needs = await office.graphql(NEEDS, {"projectId": project["id"]}, as_="window")
    for material in needs["stageApplication"]["materials"]:
        code = material["materialType"]["code"]
        paper = {"projectId": project["id"], "materialType": code, "fileName": f"{code}.pdf"}
        answer = await office.graphql(SUBMIT, {"input": paper}, as_="window")
        assert answer["submitMaterial"]["errors"] == []
    accept = await office.graphql(ACCEPT, {"projectId": project["id"]}, as_="window")
    assert accept["acceptStageApplication"]["errors"] == []
    return project["code"], accept["acceptStageApplication"]["stage"]["tasks"]


async def open_task(desk: Desk, project_code: str) -> None:
    """From the queue to the project's task, by keyboard (j/k and Enter) as a reviewer would."""
    page = desk.page
    rows = page.locator("[data-test=queue] .el-table__body tr")
    await expect(rows.first).to_be_visible()
    position = await rows.evaluate_all(
        f"(rows) => rows.findIndex((row) => row.textContent.includes('{project_code}'))"
    )
    assert position >= 0, f"{project_code} is not in {desk.name}'s queue"
    await page.locator("body").click(position={"x": 5, "y": 5})
    for _ in range(position):
        await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-test=decide]")).to_be_visible()


async def test_two_reviewers_decide_in_parallel_and_the_stage_closes(
    browser: Browser, office: Office
) -> None:
    project_code, tasks = await accepted_project(office)
    departments = sorted({t["department"]["code"] for t in tasks})
    first, second = "fgw", "zrzy"
    assert {first, second} <= set(departments)
    # Every other department has decided already.
    for task in tasks:
        if task["department"]["code"] not in (first, second):
            answer = await office.graphql(
                DECIDE, {"taskId": task["id"]}, as_=task["department"]["code"]
            )
            assert answer["decideTask"]["errors"] == []
    # The two that remain may have several tasks: all but one each are decided through the API.
    remaining = {
        code: [t for t in tasks if t["department"]["code"] == code] for code in (first, second)
    }
    for code, mine in remaining.items():
        for task in mine[1:]:
            answer = await office.graphql(DECIDE, {"taskId": task["id"]}, as_=code)
            assert answer["decideTask"]["errors"] == []

    a = await office.open(browser, first, path="/queue")
    b = await office.open(browser, second, path="/queue")
    try:
        for desk in (a, b):
            queue = desk.page.locator("[data-test=queue]")
            await expect(queue).to_contain_text(project_code)
            lights = await queue.locator("[data-light]").evaluate_all(
                "(spots) => spots.map((s) => s.dataset.light)"
            )
            assert lights and set(lights) <= {"GREEN", "YELLOW", "RED", "PAUSED", "FORMAL"}
        await a.screenshot("reviewer-queue")
        await asyncio.gather(open_task(a, project_code), open_task(b, project_code))
        await a.page.get_by_label("意见 (可不填)").fill("符合产业政策, 同意")
        await b.page.locator("[data-test=decide]").get_by_text("附条件准予").click()
        await b.page.get_by_label("意见").fill("须按批复的用地红线建设")
        await a.screenshot("reviewer-decide")

        async def decide(desk: Desk) -> None:
            await desk.page.locator("[data-test=submit-decision]").click()
            await desk.page.get_by_role("button", name="确定").click()
            await expect(desk.page.locator("[data-test=task-status]")).not_to_have_text("待审查")

        await asyncio.gather(decide(a), decide(b))
        await expect(a.page.locator("[data-test=task-status]")).to_have_text("准予许可")
        await expect(b.page.locator("[data-test=task-status]")).to_have_text("附条件准予")

        state = (await office.graphql(STATE, {"code": project_code}, as_="supervisor"))["project"]
        stage = next(s for s in state["stages"] if s["code"] == STAGE)
        assert stage["status"] == "COMPLETED"
        assert stage["outcome"] == "APPROVED_WITH_CONDITIONS"
        assert all(t["status"] == "DECIDED" for t in stage["tasks"])
        conditional = [t for t in stage["tasks"] if t["decision"] == "APPROVED_WITH_CONDITIONS"]
        assert [t["opinion"] for t in conditional] == ["须按批复的用地红线建设"]
        completions = [e for e in state["auditTrail"] if e["action"] == "stage.complete"]
        assert len(completions) <= 1  # the fan-in closed the stage once
        # On screen too, without the reviewers doing anything more than a reload.
        await a.page.goto(f"/console/projects/{project_code}")
        await expect(a.page.locator(f"[data-stage={STAGE}]")).to_contain_text("已办结")
        assert a.errors() == [] and b.errors() == []
    finally:
        await a.close()
        await b.close()


MEETING = """
mutation($input: ScheduleMeetingInput!) {
  scheduleMeeting(input: $input) { meeting { id } errors { code message } }
}"""
MEETINGS = """
query($projectId: ID!) {
  meetings(projectId: $projectId) {
    invitations { agrees opinion promisedDays department { code } }
  }
}"""
TASK = """
query($code: String!) {
  project(code: $code) {
    id
    stages { tasks { id paused deadline defaultApproved formalOpinionAt opinion
      department { code } } }
  }
}"""


async def test_a_reviewer_stops_the_clock_states_an_opinion_and_files_a_formal_one(
    browser: Browser, office: Office
) -> None:
    project_code, tasks = await accepted_project(office)
    mine = next(t for t in tasks if t["department"]["code"] == "fgw")
    project = (await office.graphql(TASK, {"code": project_code}, as_="fgw"))["project"]
    scheduled = await office.graphql(
        MEETING,
        {
            "input": {
                "projectId": project["id"],
                "stage": STAGE,
                "at": (office.clock() + timedelta(days=1)).isoformat(),
                "place": "中心联审室",
                "departments": ["fgw", "zrzy"],
            }
        },
        as_="window",
    )
    assert scheduled["scheduleMeeting"]["errors"] == []

    desk = await office.open(browser, "fgw", path=f"/projects/{project_code}/tasks/{mine['id']}")
    page = desk.page
    try:
        # The clock stops with a reason and runs again.
        clock = page.locator("[data-test=clock]")
        await clock.get_by_label("中止说明").fill("委托专家评审节能报告")
        await clock.get_by_role("button", name="中止计时").click()
        await expect(page.get_by_text("计时已中止", exact=True)).to_be_visible()

        async def task() -> dict[str, Any]:
            state = (await office.graphql(TASK, {"code": project_code}, as_="fgw"))["project"]
            return next(t for s in state["stages"] for t in s["tasks"] if t["id"] == mine["id"])

        assert (await task())["paused"] is True
        await clock.get_by_role("button", name="恢复计时").click()
        await expect(clock.get_by_role("button", name="中止计时")).to_be_visible()
        assert (await task())["paused"] is False

        # The department's opinion at the joint review meeting, with the days it promises.
        await page.goto(f"/console/projects/{project_code}?tab=meetings")
        row = page.locator(".el-table__row", has_text="发改委")
        await row.get_by_role("button", name="填写意见").click()
        await page.get_by_label("意见", exact=True).fill("同意, 三个工作日内出具批复")
        await page.get_by_label("承诺办理时限(工作日)").fill("3")
        await page.get_by_role("button", name="提交").click()
        await expect(page.get_by_text("意见已记录")).to_be_visible()
        meetings = await office.graphql(MEETINGS, {"projectId": project["id"]}, as_="fgw")
        [invitation] = [
            i for i in meetings["meetings"][0]["invitations"] if i["department"]["code"] == "fgw"
        ]
        assert invitation["agrees"] is True and invitation["promisedDays"] == 3

        # Past the deadline the loop approves by default (超时默认); the formal opinion follows.
        office.clock.advance(
            datetime.combine(date.fromisoformat((await task())["deadline"]), time(9), CHINA)
            + timedelta(days=3)
            - office.clock()
        )
        await supervise(now=office.clock(), settings=SupervisionSettings())
        assert (await task())["defaultApproved"] is True
        await page.goto(f"/console/projects/{project_code}/tasks/{mine['id']}")
        formal = page.locator("[data-test=formal]")
        await formal.get_by_label("正式意见").fill("经审查, 同意该项目建议书")
        await formal.get_by_role("button", name="提交").click()
        await expect(page.get_by_text("正式意见已补交")).to_be_visible()
        await expect(formal).to_have_count(0)
        filed = await task()
        assert filed["formalOpinionAt"] is not None
        assert "经审查, 同意该项目建议书" in filed["opinion"]
        assert desk.errors() == []
    finally:
        await desk.close()
