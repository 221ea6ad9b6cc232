"""Department reviewers: each sees their own queue by deadline with lights; two decide in
parallel from their screens and the stage closes exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, expect

from approval.core.codes import credit_code_with_check
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
