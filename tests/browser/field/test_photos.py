"""A photo taken offline survives a reload before its upload, is uploaded once when the tablet
is online again (READY in GraphQL, with the capture time and GPS of its EXIF kept through the
downscale) and shows on another department's tablet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from playwright.async_api import Browser, FilePayload, expect

from approval.core.auth import create_user
from approval.demo import DEMO_PASSWORD
from storage.enums import Role
from storage.models import Upload
from tests.browser.field.conftest import (
    PORTRAIT,
    Office,
    checks_of,
    open_inspection,
    open_tablet,
    site_check,
)
from tests.browser_support import eventually
from tests.photo_support import make_jpeg


async def test_a_photo_taken_offline_is_uploaded_once_after_a_reload(
    browser: Browser, office: Office
) -> None:
    await create_user(
        username="zrzy-inspector",
        password=DEMO_PASSWORD,
        display_name="王芳",
        role=Role.INSPECTOR,
        department_code="zrzy",
    )
    inspection = await site_check(office, ["zjj", "zrzy"], ["inspector", "zrzy-inspector"])
    tablet = await open_tablet(browser, office, "inspector")
    other = await open_tablet(browser, office, "zrzy-inspector", viewport=PORTRAIT)
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        # a camera original, larger than the long edge kept (2000 px), with EXIF time and GPS
        original = make_jpeg(
            width=2600,
            height=1950,
            noise=True,
            taken_at=datetime(2026, 3, 2, 9, 30, 15),
            offset="+08:00",
            gps=(37.43412, 116.35751),
        )
        photo = FilePayload(name="IMG_0001.jpg", mimeType="image/jpeg", buffer=original)
        await tablet.check("fire-lane").locator("input[type=file]").set_input_files(files=[photo])
        shown = tablet.check("fire-lane").locator("[data-photo]")
        await expect(shown).to_have_count(1)
        await expect(shown).to_have_attribute("data-state", "local")
        await expect(shown.locator("img")).to_be_visible()
        await expect(tablet.page.locator("[data-test=photos-pending]")).to_contain_text("1 张")
        photo_id = await shown.get_attribute("data-photo")
        assert photo_id

        await tablet.page.reload()
        shown = tablet.check("fire-lane").locator("[data-photo]")
        await expect(shown).to_have_attribute("data-state", "local")
        await expect(shown).to_contain_text("待上传")
        assert await Upload.filter(sha256=photo_id).count() == 0

        await tablet.context.set_offline(False)
        await expect(shown).to_have_attribute("data-state", "ready", timeout=10_000)
        await expect(tablet.page.locator("[data-test=photos-pending]")).to_contain_text("0 张")
        await tablet.result("fire-lane", "合格")
        await tablet.measure("fire-lane", "3.6")
        await tablet.note("fire-lane", "东侧消防车道被临时材料占用, 净宽不足")
        await tablet.result("hydrant-pressure", "合格")
        await tablet.measure("hydrant-pressure", "0.35")
        await tablet.check("fire-lane").scroll_into_view_if_needed()
        await tablet.page.evaluate("window.scrollBy(0, -120)")
        await tablet.screenshot("field-checklist-landscape")

        async def ready() -> dict[str, Any] | None:
            rows = await checks_of(office, inspection["id"])
            photos = rows["zjj"]["fire-lane"]["photos"]
            return photos[0] if photos and photos[0]["status"] == "READY" else None

        uploaded = await eventually(ready, "the photo READY in GraphQL")
        assert uploaded is not None
        assert uploaded["id"] == photo_id
        assert uploaded["takenAt"] is not None and uploaded["takenAt"].startswith(
            "2026-03-02T09:30:15"
        )
        assert abs(float(uploaded["latitude"]) - 37.43412) < 1e-4
        assert abs(float(uploaded["longitude"]) - 116.35751) < 1e-4
        assert await Upload.filter(sha256=photo_id).count() == 1

        # the other department's tablet shows it, read-only, from the server
        await open_inspection(other, inspection, "zrzy")
        await other.page.get_by_role("tab", name="住建局").click()
        theirs = other.check("fire-lane").locator(f"[data-photo='{photo_id}']")
        await expect(theirs).to_have_attribute("data-state", "ready", timeout=10_000)
        await expect(theirs.locator("img")).to_be_visible()
        await expect(other.check("fire-lane").locator("input[type=file]")).to_have_count(0)

        # a reload later, nothing is sent again
        await tablet.page.reload()
        await expect(tablet.check("fire-lane").locator("[data-photo]")).to_have_attribute(
            "data-state", "ready"
        )
        assert await Upload.filter(sha256=photo_id).count() == 1
        assert tablet.errors() == [] and other.errors() == []
    finally:
        await tablet.close()
        await other.close()
