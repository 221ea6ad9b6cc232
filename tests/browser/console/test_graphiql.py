"""GET /graphql in a browser: the self-hosted GraphiQL works with the network to the outside cut."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.console.conftest import LAPTOP, Office
from tests.browser_support import ARTIFACTS, only_local_network


async def test_graphiql_works_without_the_internet(browser: Browser, office: Office) -> None:
    context = await browser.new_context(viewport=LAPTOP, locale="zh-CN", base_url=office.base)  # type: ignore[arg-type]
    blocked = await only_local_network(context, office.base)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        response = await page.goto("/graphql")
        assert response is not None and response.status == 200
        editor = page.locator(".graphiql-query-editor .monaco-editor").first
        await expect(editor).to_be_visible(timeout=20_000)
        # Replace the welcome text with a query of our own and run it (Ctrl-Enter).
        await editor.click()
        await page.keyboard.press("Control+A")
        await page.keyboard.press("Delete")
        await page.keyboard.insert_text(
            'mutation Login { login(username: "supervisor", password: "onewindow-demo") '
            "{ token viewer { roleLabel } } }"
        )
        await page.keyboard.press("Control+Enter")
        result = page.locator(".graphiql-response")
        await expect(result).to_contain_text('"roleLabel": "中心管理办"', timeout=15_000)
        await expect(result).to_contain_text('"token": "')
        await page.screenshot(path=str(ARTIFACTS / "graphiql-offline.png"))
        outside = [url for url in blocked if not url.startswith(office.base)]
        assert outside == [], f"the page asked the internet for {outside}"
        assert errors == []
    finally:
        await context.close()


async def test_graphiql_sends_the_console_token(browser: Browser, office: Office) -> None:
    desk = await office.open(browser, "supervisor")
    try:
        page = desk.page
        await page.goto("/graphql")
        editor = page.locator(".graphiql-query-editor .monaco-editor").first
        await expect(editor).to_be_visible(timeout=20_000)
        await editor.click()
        await page.keyboard.press("Control+A")
        await page.keyboard.press("Delete")
        await page.keyboard.insert_text("query Me { viewer { username roleLabel } }")
        await page.keyboard.press("Control+Enter")
        await expect(page.locator(".graphiql-response")).to_contain_text('"username": "supervisor"')
    finally:
        await desk.close()
