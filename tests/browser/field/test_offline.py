"""An inspector records checks offline, reloads the page while offline, and the rows appear
once the tablet is online again; an edit the server refuses is shown with its reason and does
not block later edits."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.async_api import Browser, FilePayload, expect

from clients.field.session import FieldClient
from tests.browser.field.conftest import (
    Office,
    checks_of,
    open_inspection,
    open_tablet,
    site_check,
)
from tests.browser_support import eventually
from tests.photo_support import make_jpeg


async def test_checks_recorded_offline_survive_a_reload_and_sync(
    browser: Browser, office: Office
) -> None:
    inspection = await site_check(office, ["zjj"], ["inspector"])
    tablet = await open_tablet(browser, office, "inspector")
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        await tablet.result("fire-lane", "合格")
        await tablet.measure("fire-lane", "4.5")
        await tablet.note("fire-lane", "消防车道畅通, 宽度满足要求")
        await tablet.result("hydrant-pressure", "不合格")
        await tablet.measure("hydrant-pressure", "0.05")
        # a value outside the allowed range (0.1 to 1.0 MPa) is marked at once, one inside not
        hydrant = tablet.check("hydrant-pressure").locator("[data-outside]").first
        await expect(hydrant).to_have_attribute("data-outside", "true")
        await expect(hydrant).to_contain_text("低于允许最小值 0.1")
        await expect(tablet.check("hydrant-pressure")).to_contain_text("允许 0.1–1 MPa")
        await expect(tablet.check("fire-lane").locator("[data-outside]").first).to_have_attribute(
            "data-outside", "false"
        )
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 5 项")

        # nothing reached the server while offline
        rows = await checks_of(office, inspection["id"])
        assert rows["zjj"]["fire-lane"]["outcome"] is None

        await tablet.page.reload()
        await expect(tablet.check("fire-lane")).to_have_attribute("data-result", "pass")
        await expect(tablet.check("fire-lane").locator("input[type=number]").first).to_have_value(
            "4.5"
        )
        await expect(tablet.check("fire-lane").locator("textarea")).to_have_value(
            "消防车道畅通, 宽度满足要求"
        )
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 5 项")
        assert (await checks_of(office, inspection["id"]))["zjj"]["fire-lane"]["outcome"] is None

        started = time.monotonic()
        await tablet.context.set_offline(False)

        async def synced() -> bool:
            rows = await checks_of(office, inspection["id"])
            fire, hydrant = rows["zjj"]["fire-lane"], rows["zjj"]["hydrant-pressure"]
            return (
                fire["outcome"] == "PASS"
                and fire["measured"] == {"实测值": 4.5}
                and fire["note"] == "消防车道畅通, 宽度满足要求"
                # where the tablet was (the context's geolocation), recorded with the check
                and fire["position"] == {"latitude": 37.4341, "longitude": 116.3575, "accuracy": 12}
                and hydrant["outcome"] == "FAIL"
                and hydrant["measured"] == {"实测值": 0.05}
            )

        await eventually(synced, "the offline checks as rows", seconds=2.0)
        assert time.monotonic() - started <= 2.0
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")
        await expect(tablet.page.locator("[data-test=last-sync]")).not_to_contain_text("尚无")
        assert tablet.errors() == []
    finally:
        await tablet.close()


async def test_a_refused_edit_is_shown_with_its_reason_and_later_edits_go_through(
    browser: Browser, office: Office, tmp_path: Path
) -> None:
    inspection = await site_check(office, ["zjj"], ["inspector"])
    tablet = await open_tablet(browser, office, "inspector")
    try:
        await open_inspection(tablet, inspection, "zjj")
        await tablet.offline()
        # offline, this tablet adds a photo to a check ...
        photo = FilePayload(name="alarm.jpg", mimeType="image/jpeg", buffer=make_jpeg())
        await tablet.check("alarm").locator("input[type=file]").set_input_files(files=[photo])
        await expect(tablet.check("alarm").locator("[data-photo]")).to_have_count(1)
        # ... while another device fills the same check with the 100 photos a check may hold
        other = FieldClient(
            office.base, await office.token("inspector"), tmp_path / "other.sqlite3"
        )
        try:
            doc = inspection["documentName"]
            await other.sync(doc)
            for n in range(100):
                other.add_photo(doc, "zjj", "alarm", make_jpeg(width=16 + n))
            await other.sync(doc)
        finally:
            other.close()

        await tablet.context.set_offline(False)
        refused = tablet.page.locator("[data-test=refused-count]")
        await expect(refused).to_contain_text("被拒 1 项")
        await refused.click()
        reason = tablet.page.locator("[data-test=refused-reason]").first
        await expect(reason).to_contain_text("at most 100")
        await expect(reason.locator("[data-test=refused-explained]")).to_have_text(
            "此项的照片已达上限, 这张没有保存"
        )
        await expect(tablet.page.locator("[data-test=refused-list]")).to_contain_text(
            "检查项「火灾自动报警系统运行正常」的照片"
        )
        await tablet.page.wait_for_timeout(400)  # the sheet's slide
        await tablet.screenshot("field-refused-edit")
        await tablet.page.keyboard.press("Escape")
        await tablet.page.locator(".van-popup__close-icon").first.click()

        # the replica is the server's again, and the next edit goes through
        await expect(tablet.check("alarm").locator("[data-photo]")).to_have_count(100)
        await tablet.result("sprinkler", "合格")

        async def recorded() -> bool:
            rows = await checks_of(office, inspection["id"])
            return rows["zjj"]["sprinkler"]["outcome"] == "PASS"

        await eventually(recorded, "the edit after the refusal as a row", seconds=5.0)
        rows = await checks_of(office, inspection["id"])
        assert len(rows["zjj"]["alarm"]["photoIds"]) == 100
        await expect(tablet.page.locator("[data-test=pending]")).to_contain_text("待同步 0 项")
        await expect(refused).to_contain_text("被拒 1 项")
    finally:
        await tablet.close()
