"""The applicant enterprise: my projects and where each stands, what is missing for the next
stage, the joint notice, and rating a finished service (好差评) in the portal."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from approval.oversight.notifications import collect
from tests.browser.console.conftest import DESKTOP, LAPTOP, Office

RATINGS = "{ myRatings { id score comment followUpDue stage { code } project { name } } }"
MINE = "{ projects(first: 50) { totalCount edges { node { code name } } } }"


async def test_the_applicant_follows_projects_and_rates_a_finished_service(
    browser: Browser, office: Office
) -> None:
    await collect(now=office.clock())  # what the notifier loop does: SMS and rating codes
    before = (await office.graphql(RATINGS, as_="applicant"))["myRatings"]
    waiting = [r for r in before if r["score"] is None]
    assert waiting, "the demo enterprise has completed stages to rate"
    mine = (await office.graphql(MINE, as_="applicant"))["projects"]

    desk = await office.open(browser, "applicant")
    page = desk.page
    try:
        await expect(page).to_have_url(f"{office.base}/console/mine")
        table = page.locator("[data-test=my-projects]")
        for edge in mine["edges"]:
            await expect(table).to_contain_text(edge["node"]["name"])
        await expect(table).to_contain_text("待申报")
        await desk.screenshot("applicant-mine")

        # Rate the first service waiting: 4 of 5, with a comment.
        card = page.locator(f"[data-rating='{waiting[0]['id']}']")
        await card.locator(".el-rate__item").nth(3).click()
        await expect(card).to_contain_text("满意")
        await card.get_by_label("评价内容").fill("窗口一次告知, 材料只交一次")
        await card.locator("[data-test=rate]").click()
        await expect(page.get_by_text("感谢您的评价")).to_be_visible()
        await expect(page.locator("[data-test=rated]")).to_contain_text("窗口一次告知")
        after = {r["id"]: r for r in (await office.graphql(RATINGS, as_="applicant"))["myRatings"]}
        rated = after[waiting[0]["id"]]
        assert rated["score"] == 4 and rated["comment"] == "窗口一次告知, 材料只交一次"
        assert rated["followUpDue"] is None  # only a bad rating opens a follow-up

        # What is missing for a project not yet applied for, and its joint notice.
        fresh = next(e["node"] for e in mine["edges"] if "光伏" in e["node"]["name"])
        await page.goto(f"/console/projects/{fresh['code']}?tab=intake")
        await expect(page.locator("[data-test=checklist]")).to_contain_text("缺少")
        await expect(page.locator("[data-test=accept]")).to_have_count(0)  # the window accepts
        await page.get_by_role("tab", name="联合告知").click()
        await expect(page.locator("[data-test=notice]")).to_contain_text("联合告知书")
        await expect(page.locator("[data-test=notice]")).to_contain_text("一套材料")
        assert desk.errors() == []
    finally:
        await desk.close()


async def test_every_role_lands_on_its_screen_at_both_sizes(
    browser: Browser, office: Office
) -> None:
    homes = {
        "window": ("/console/projects", "[data-test=projects]"),
        "fgw": ("/console/queue", "[data-test=queue]"),
        "supervisor": ("/console/board", "[data-test=wall-chart] [data-project]"),
        "applicant": ("/console/mine", "[data-test=my-projects]"),
    }
    for size, viewport in (("1366", LAPTOP), ("1920", DESKTOP)):
        for username, (path, ready) in homes.items():
            desk = await office.open(browser, username, viewport=viewport)
            try:
                await expect(desk.page).to_have_url(f"{office.base}{path}")
                await expect(desk.page.locator(ready).first).to_be_visible()
                # Nothing wider than the screen: no sideways scrolling at this size.
                wide = await desk.page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert wide <= 0, f"{username} at {size}: {wide}px wider than the screen"
                await desk.screenshot(f"home-{username}-{size}")
                assert desk.errors() == []
            finally:
                await desk.close()
