"""One's own password from the user menu (the other sessions end), and 中心管理办 lifting a
lockout and ending every session of a person, in the console."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from approval.demo import DEMO_PASSWORD
from storage.models import AccessToken, AuditEvent, LoginThrottle, User
from tests.browser.console.conftest import Office

VIEWER = "{ viewer { username } }"
LOGIN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
    "{ token errors { code } } }"
)
NEW_PASSWORD = "新的密码-2026-march"


def refused(body: dict[str, object]) -> bool:
    errors = body.get("errors") or []
    return bool(errors) and errors[0]["extensions"]["code"] == "UNAUTHENTICATED"  # type: ignore[index]


async def test_a_reviewer_changes_the_password_and_the_other_sessions_end(
    browser: Browser, office: Office
) -> None:
    phone = await office.token("fgw")  # another session of the same person
    assert not refused(await office.post(VIEWER, token=phone))
    desk = await office.open(browser, "fgw")
    page = desk.page
    try:
        await page.locator("[data-test=viewer]").click()
        await page.get_by_role("menuitem", name="修改密码").click()
        await expect(page).to_have_url(f"{office.base}/console/password")
        form = page.locator("[data-test=password]")

        # Checked in the page before anything is sent: the two new ones differ.
        await form.get_by_label("当前密码").fill(DEMO_PASSWORD)
        await form.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        await form.get_by_label("再次输入新密码").fill(NEW_PASSWORD + "x")
        await form.locator("[data-test=change-password]").click()
        again = form.locator("[data-test=again-problem]")
        await expect(again).to_have_text("两次输入的新密码不一致")
        await form.get_by_label("新密码", exact=True).fill("short")
        await form.get_by_label("再次输入新密码").fill("short")
        await form.locator("[data-test=change-password]").click()
        await expect(form.locator("[data-test=next-problem]")).to_have_text("新密码至少 8 个字符")

        # The server refuses a wrong current password (INVALID_CREDENTIALS), told at its field.
        await form.get_by_label("当前密码").fill("not-my-password")
        await form.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        await form.get_by_label("再次输入新密码").fill(NEW_PASSWORD)
        await form.locator("[data-test=change-password]").click()
        await expect(form.locator("[data-test=current-problem]")).to_have_text(
            "当前密码不正确, 请重新输入"
        )
        user = await User.get(username="fgw")
        assert await AuditEvent.filter(action="user.login_failed", entity_id=user.id).exists()
        assert not refused(await office.post(VIEWER, token=phone))  # nothing changed yet

        await form.get_by_label("当前密码").fill(DEMO_PASSWORD)
        await form.locator("[data-test=change-password]").click()
        done = page.locator("[data-test=password-changed]")
        await expect(done).to_contain_text("密码已修改")
        await expect(done).to_contain_text("其他 1 处的登录已全部退出")
        await expect(form.get_by_label("当前密码")).to_have_value("")
        await expect(form.locator("[data-test=change-password]")).to_be_enabled()
        await desk.screenshot("console-password")

        # The phone's session ended; this one goes on; the new password is the one that works.
        assert refused(await office.post(VIEWER, token=phone))
        await page.goto("/console/queue")
        await expect(page.locator("[data-test=queue]")).to_be_visible()
        await expect(page).to_have_url(f"{office.base}/console/queue")
        old = await office.post(LOGIN, {"u": "fgw", "p": DEMO_PASSWORD})
        assert old["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
        new = await office.post(LOGIN, {"u": "fgw", "p": NEW_PASSWORD})
        assert new["data"]["login"]["token"], new
        assert desk.errors() == []
    finally:
        await desk.close()


async def test_the_supervisor_lifts_a_lockout_and_ends_every_session(
    browser: Browser, office: Office
) -> None:
    fgw = await office.open(browser, "fgw")
    for guess in range(4):  # wrong passwords until the account must wait
        await office.post(LOGIN, {"u": "fgw", "p": f"guess-{guess}"})
    assert await LoginThrottle.filter(key="account:fgw").exists()
    desk = await office.open(browser, "supervisor")
    page = desk.page
    try:
        # Not in a reviewer's menu; in the supervisor's.
        await fgw.page.locator("[data-test=viewer]").click()
        await expect(fgw.page.get_by_role("menuitem", name="修改密码")).to_be_visible()
        await expect(fgw.page.get_by_role("menuitem", name="账号管理")).to_have_count(0)
        await page.locator("[data-test=viewer]").click()
        await page.get_by_role("menuitem", name="账号管理").click()
        await expect(page).to_have_url(f"{office.base}/console/accounts")
        form = page.locator("[data-test=accounts]")

        await form.get_by_label("用户名").fill("no-such-person")
        await form.locator("[data-test=unlock]").click()
        await expect(form.locator("[data-test=accounts-problem]")).to_contain_text(
            "没有用户 “no-such-person”"
        )

        await form.get_by_label("用户名").fill("fgw")
        await form.locator("[data-test=unlock]").click()
        await expect(form.locator("[data-test=accounts-done]")).to_contain_text(
            "已解除 “fgw” 的登录锁定"
        )
        assert not await LoginThrottle.filter(key="account:fgw").exists()
        assert await AuditEvent.filter(action="user.unlock").exists()

        user = await User.get(username="fgw")
        live = await AccessToken.filter(user_id=user.id, revoked=False).count()
        assert live >= 1
        await form.locator("[data-test=revoke]").click()
        await page.get_by_role("button", name="确定").click()
        await expect(form.locator("[data-test=accounts-done]")).to_contain_text(
            f"已撤销 “fgw” 的 {live} 个登录令牌"
        )
        assert await AccessToken.filter(user_id=user.id, revoked=False).count() == 0
        await expect(page.locator(".el-overlay.is-message-box")).to_have_count(0)  # closed
        await desk.screenshot("console-accounts")

        # fgw's console learns it at its next request and asks for a new login.
        await fgw.page.goto("/console/queue")
        await expect(fgw.page).to_have_url(f"{office.base}/console/login?next=/queue")
        await expect(fgw.page.get_by_text("登录已失效, 请重新登录")).to_be_visible()
        assert desk.errors() == []
    finally:
        await desk.close()
        await fgw.close()


async def test_logout_from_the_user_menu_revokes_the_token(
    browser: Browser, office: Office
) -> None:
    desk = await office.open(browser, "window")
    page = desk.page
    try:
        token = await page.evaluate(
            "Object.values(localStorage).map(v => { try { return JSON.parse(v).token } "
            "catch { return null } }).find(Boolean)"
        )
        assert token and not refused(await office.post(VIEWER, token=token))
        await page.locator("[data-test=viewer]").click()
        await page.get_by_role("menuitem", name="退出登录").click()
        await expect(page).to_have_url(f"{office.base}/console/login")
        assert refused(await office.post(VIEWER, token=token))
    finally:
        await desk.close()
