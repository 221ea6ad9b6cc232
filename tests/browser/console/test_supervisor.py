"""The supervisor's wall chart (挂图作战): every project as a row across the four stages, filters,
and a warning of the supervisor loop recolouring the open chart live (no reload); the monthly
figures with their charts; the follow-ups."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path

from playwright.async_api import Browser, expect

from storage.models import Department
from tests.browser.console.conftest import DEMO_NOW, DESKTOP, Office, serving_office
from tests.browser.console.test_review import accepted_project
from tests.browser_support import eventually

CHART = """
query($code: String!) {
  wallChart(projects: [$code]) {
    rows { light cells { stageCode departments { code light } } }
  }
}"""
TASKS = """
query($code: String!) {
  project(code: $code) { stages { code tasks { deadline department { code } } } }
}"""


async def test_the_chart_changes_colour_live_when_the_loop_warns(
    browser: Browser, catalog: None, database: str, tmp_path: Path
) -> None:
    async with serving_office(database, tmp_path, supervise_seconds=1) as office:
        project_code, _ = await accepted_project(office)
        tasks = (await office.graphql(TASKS, {"code": project_code}, as_="supervisor"))["project"]
        [stage] = [s for s in tasks["stages"] if s["code"] == "project_approval"]
        latest = max(date.fromisoformat(t["deadline"]) for t in stage["tasks"])
        # The department whose every task is due last: green now, yellow on its due day.
        watched = sorted(
            {t["department"]["code"] for t in stage["tasks"]}
            - {
                t["department"]["code"]
                for t in stage["tasks"]
                if date.fromisoformat(t["deadline"]) < latest
            }
        )[0]

        desk = await office.open(browser, "supervisor", viewport=DESKTOP)
        page = desk.page
        try:
            await expect(page.locator("[data-test=live-status]")).to_have_attribute(
                "data-status", "live"
            )
            row = page.locator(f"[data-project='{project_code}']")
            chip = row.locator(f"[data-stage=project_approval] [data-department={watched}]")
            await expect(chip).to_have_attribute("data-light", "GREEN")
            await expect(page.locator("[data-test=wall-chart]")).to_have_attribute(
                "data-rows", "13"
            )
            await page.evaluate("window.__sameDocument = true")
            await desk.screenshot("supervisor-wall-chart")

            # Days pass: the loop warns of the task due today, and the chart follows by itself.
            due_day = datetime.combine(latest, time(9), DEMO_NOW.tzinfo)
            office.clock.advance(due_day - office.clock())
            department = await Department.get(code=watched)

            async def warned() -> bool:
                return any(
                    e.kind == "task" and e.level == "yellow" and e.department_id == department.id
                    for e in office.fired
                )

            await eventually(warned, "the supervisor loop fires the yellow warning", seconds=15)
            await expect(chip).to_have_attribute("data-light", "YELLOW", timeout=10_000)
            toast = page.locator(".live-toast").first
            await expect(toast).to_be_visible()
            await toast.evaluate("(t) => Promise.all(t.getAnimations().map((a) => a.finished))")
            assert await page.evaluate("window.__sameDocument") is True  # no reload
            await desk.screenshot("supervisor-wall-chart-live")
            answer = await office.graphql(CHART, {"code": project_code}, as_="supervisor")
            [served] = answer["wallChart"]["rows"]
            lights = {d["code"]: d["light"] for d in served["cells"][0]["departments"]}
            assert lights[watched] == "YELLOW"

            # Filters narrow the rows and live in the URL (a view to share or put on a wall).
            await page.get_by_text("仅超期").click()
            await expect(page).to_have_url(re.compile(r"/console/board\?overdue=1"))
            rows = page.locator("[data-test=wall-chart] [data-project]")
            lights_shown = await rows.evaluate_all("(rs) => rs.map((r) => r.dataset.light)")
            assert lights_shown and set(lights_shown) == {"RED"}
            assert desk.errors() == []
        finally:
            await desk.close()


async def test_figures_follow_ups_and_the_ledger(browser: Browser, office: Office) -> None:
    desk = await office.open(browser, "supervisor", path="/figures")
    page = desk.page
    try:
        await expect(page.locator("[data-test=department-figures]")).to_contain_text("发展和改革")
        await expect(page.locator("canvas").first).to_be_visible()
        assert any("/assets/echarts-" in url for url in desk.requested), "ECharts is loaded"
        await desk.screenshot("supervisor-figures")
        async with page.expect_download() as download_info:
            await page.locator("[data-test=ledger]").click()
        download = await download_info.value
        with Path(await download.path()).open("rb") as saved:  # noqa: ASYNC230 (a local file)
            assert saved.read(2) == b"PK"  # an .xlsx is a zip
        await page.goto("/console/follow-ups")
        await expect(page.locator("[data-test=follow-ups]")).to_be_visible()
        # A cell of the wall chart opens its project inside the app (no page load).
        await page.goto("/console/board")
        row = page.locator("[data-test=wall-chart] [data-project]").first
        code = await row.get_attribute("data-project")
        await page.evaluate("window.__sameDocument = true")
        await row.locator("[data-stage=project_approval]").click()
        await expect(page.locator("[data-test=project-code]")).to_have_text(code or "")
        await expect(page).to_have_url(re.compile(rf"/console/projects/{code}\?tab=stages"))
        assert await page.evaluate("window.__sameDocument") is True
        assert desk.errors() == []
    finally:
        await desk.close()


async def test_the_wall_chart_and_the_queue_never_load_echarts(
    browser: Browser, office: Office
) -> None:
    for username, path in (("supervisor", "/board"), ("fgw", "/queue"), ("window", "/projects")):
        desk = await office.open(browser, username, path=path)
        try:
            screen = desk.page.locator(".el-table, [data-test=wall-chart]").first
            await expect(screen).to_be_visible()
            await desk.page.wait_for_load_state("networkidle")
            assert not any("/assets/echarts-" in url for url in desk.requested), username
        finally:
            await desk.close()
