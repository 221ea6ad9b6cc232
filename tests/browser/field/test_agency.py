"""An agent sees their projects with stages, tasks and warnings, logs a visit and a to-do
offline, and both appear in ``agencyEntries`` once the tablet is online again."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.field.conftest import PHONE, Office, open_tablet
from tests.browser_support import eventually

ENTRIES = """
query($id: ID!) { agencyEntries(projectId: $id) { kind kindLabel text due done at } }"""
MINE = """
query {
  projects(first: 100, filter: {agent: "agent"}) { totalCount edges { node { id name } } }
}"""


async def test_an_agent_logs_a_visit_and_a_todo_offline(browser: Browser, office: Office) -> None:
    mine = (await office.graphql(MINE, as_="agent"))["projects"]
    assert mine["totalCount"] > 0
    project: dict[str, Any] = mine["edges"][0]["node"]
    tablet = await open_tablet(browser, office, "agent", viewport=PHONE)
    try:
        rows = tablet.page.locator("[data-test=project-row]")
        await expect(rows).to_have_count(mine["totalCount"])
        await rows.filter(has_text=project["name"]).first.click()
        await expect(tablet.page.locator("[data-test=stage]")).to_have_count(4)
        await expect(tablet.page.locator("[data-test=network]")).to_contain_text("已连接")
        await tablet.screenshot("field-agent-phone", full_page=True)

        await tablet.offline()
        await tablet.page.get_by_role("radio", name="走访").click()
        await tablet.page.get_by_label("记录内容").fill("走访建设单位, 核对竣工验收材料")
        await tablet.page.get_by_role("button", name="保存记录").click()
        await tablet.page.get_by_role("radio", name="待办").click()
        await tablet.page.get_by_label("记录内容").fill("提醒企业补交消防检测报告")
        await tablet.page.get_by_label("到期日").fill("2026-03-06")
        await tablet.page.get_by_role("button", name="保存记录").click()
        await expect(tablet.page.locator("[data-test=entry]")).to_have_count(2)
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 2 项")
        assert (await office.graphql(ENTRIES, {"id": project["id"]}, as_="agent"))[
            "agencyEntries"
        ] == []

        await tablet.context.set_offline(False)

        async def arrived() -> list[dict[str, Any]] | None:
            data = await office.graphql(ENTRIES, {"id": project["id"]}, as_="agent")
            entries: list[dict[str, Any]] = data["agencyEntries"]
            return entries if len(entries) == 2 else None

        found = await eventually(arrived, "the agency entries as rows")
        assert found is not None
        entries = {e["kind"]: e for e in found}
        assert entries["visit"]["text"] == "走访建设单位, 核对竣工验收材料"
        assert entries["visit"]["kindLabel"] == "走访"
        assert entries["todo"]["text"] == "提醒企业补交消防检测报告"
        assert entries["todo"]["due"] == "2026-03-06"
        assert entries["todo"]["done"] is False
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")
        assert tablet.errors() == []
    finally:
        await tablet.close()
