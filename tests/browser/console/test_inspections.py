"""The supervisor sees a site inspection with each department's conclusion, the checks and the
photo that proves one (uploaded through the ticket flow, shown from a short-lived URL)."""

from __future__ import annotations

import hashlib
from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.console.conftest import Office
from tests.browser.console.test_review import accepted_project
from tests.photo_support import make_jpeg

SITE_CHECK = """
mutation($projectId: ID!) {
  scheduleSiteCheck(input: {projectId: $projectId, departments: ["zjj"]}) {
    inspection { id departments { department { code } checks { code label } } }
    errors { code message }
  }
}"""
ASSIGN = """
mutation($id: ID!) {
  assignInspectors(input: {inspectionId: $id, usernames: ["inspector"]}) { errors { code message } }
}"""
REQUEST = """
mutation($input: RequestUploadInput!) {
  requestUpload(input: $input) {
    upload { id } ticket { url method headers { name value } } errors { code message }
  }
}"""
CONFIRM = """
mutation($id: ID!) { confirmUpload(uploadId: $id) { upload { status } errors { code message } } }"""
RECORD = """
mutation($input: RecordCheckInput!) { recordCheck(input: $input) { errors { code message } } }"""
CONCLUDE = """
mutation($id: ID!) {
  fileConclusion(input: {inspectionId: $id, result: PASS, note: "现场与审批内容一致"}) {
    inspection { status } errors { code message }
  }
}"""
PROJECT = "query($code: String!) { project(code: $code) { id } }"


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["errors"] == [], payload
    return payload


async def test_inspection_conclusions_and_photos_on_the_project(
    browser: Browser, office: Office
) -> None:
    project_code, _ = await accepted_project(office)
    project = (await office.graphql(PROJECT, {"code": project_code}, as_="window"))["project"]
    scheduled = await office.graphql(SITE_CHECK, {"projectId": project["id"]}, as_="window")
    inspection = ok(scheduled["scheduleSiteCheck"])["inspection"]
    ok((await office.graphql(ASSIGN, {"id": inspection["id"]}, as_="window"))["assignInspectors"])
    [section] = inspection["departments"]
    check = section["checks"][0]

    # The inspector's photo through the ticket flow: ask, PUT the bytes, confirm.
    photo = make_jpeg(width=640, height=480, color=(90, 140, 200))
    digest = hashlib.sha256(photo).hexdigest()
    requested = await office.graphql(
        REQUEST,
        {
            "input": {
                "kind": "PHOTO",
                "sha256": digest,
                "sizeBytes": len(photo),
                "contentType": "image/jpeg",
                "fileName": "site.jpg",
                "check": {
                    "inspectionId": inspection["id"],
                    "department": "zjj",
                    "checkCode": check["code"],
                },
            }
        },
        as_="inspector",
    )
    ticket = ok(requested["requestUpload"])["ticket"]
    put = await office.http.request(
        ticket["method"],
        ticket["url"],
        content=photo,
        headers={h["name"]: h["value"] for h in ticket["headers"]},
    )
    assert put.status_code == 200, put.text
    upload_id = requested["requestUpload"]["upload"]["id"]
    ok((await office.graphql(CONFIRM, {"id": upload_id}, as_="inspector"))["confirmUpload"])
    recorded = await office.graphql(
        RECORD,
        {
            "input": {
                "inspectionId": inspection["id"],
                "check": check["code"],
                "result": "PASS",
                "note": "已核对",
                "photoIds": [digest],
            }
        },
        as_="inspector",
    )
    ok(recorded["recordCheck"])
    concluded = await office.graphql(CONCLUDE, {"id": inspection["id"]}, as_="inspector")
    assert ok(concluded["fileConclusion"])["inspection"]["status"] == "PASSED"

    desk = await office.open(
        browser, "supervisor", path=f"/projects/{project_code}?tab=inspections"
    )
    page = desk.page
    try:
        panel = page.locator("[data-test=inspections]")
        await expect(panel).to_contain_text("现场踏勘")
        await expect(panel).to_contain_text("住建局")
        await expect(panel).to_contain_text("现场与审批内容一致")
        await expect(panel).to_contain_text(f"{check['label']}: 合格")
        thumbnail = panel.get_by_role("button", name=f"查看照片 {check['label']}")
        await expect(thumbnail.locator("img")).to_have_js_property("complete", True)
        assert await thumbnail.locator("img").evaluate("(img) => img.naturalWidth") > 0
        await desk.screenshot("supervisor-inspection")
        await thumbnail.click()
        dialog = page.get_by_role("dialog", name="现场照片")
        await expect(dialog.locator("img")).to_be_visible()
        assert await dialog.locator("img").evaluate("(img) => img.naturalWidth") == 640
        assert desk.errors() == []
    finally:
        await desk.close()
