"""The field documents on the server: materialised rows, and GraphQL writing through the doc."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from approval.fieldwork.documents import LayoutError, agency_doc_name, inspection_doc_name
from approval.fieldwork.inspections import (
    assign_inspectors,
    document_access,
    schedule_joint_acceptance,
)
from approval.fieldwork.policy import FieldDocuments, record_check_change
from storage.enums import CheckOutcome, Conclusion, InspectionStatus, StageStatus, TaskStatus
from storage.models import (
    AgencyEntry,
    AuditEvent,
    CheckResult,
    Inspection,
    InspectionDepartment,
    Rectification,
    Stage,
    Task,
)
from tests.conftest import GraphQLClient
from tests.fieldwork_support import (
    MemoryEditor,
    at_acceptance,
    clerk,
    documents_app,
    inspector,
    person,
)
from tests.helpers import db_id

RECT = "0f7c2d4e-1b8a-4c39-9e55-6a7b8c9d0e1f"


async def scheduled(gql, clock, codes=("zjj", "rfb")):
    project, stage = await at_acceptance(gql, clock)
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=list(codes),
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    viewers = {code: await inspector(code) for code in codes}
    await assign_inspectors(
        viewer=await clerk(),
        inspection_id=inspection.id,
        usernames=[v.username for v in viewers.values()],
        now=clock(),
    )
    return project, stage, inspection, viewers


def tablet(editor_doc: Doc) -> Doc:
    doc: Doc = Doc()
    doc.apply_update(editor_doc.get_update())
    return doc


def zjj_section(doc: Doc) -> Map[Any]:
    section = doc.get("departments", type=Map)["zjj"]
    assert isinstance(section, Map)
    return section


async def test_materialised_rows_follow_the_document_idempotently(gql, clock):
    _, _, inspection, viewers = await scheduled(gql, clock)
    policy = FieldDocuments(clock=clock)
    editor = MemoryEditor(policy)
    name = inspection_doc_name(inspection.id)
    server = await editor.doc(name)
    rights = await document_access(viewers["zjj"], name)
    assert rights is not None
    pad = tablet(server)
    section = zjj_section(pad)
    with pad.transaction():
        lane = section["checks"]["fire-lane"]
        lane["result"] = "rectify"
        lane["note"] = "消防车道被临时建筑占用"
        lane["measured"]["宽度"] = 3.5
        lane["photos"].append("photo-7d1e")
        lane["by"] = viewers["zjj"].username
        lane["at"] = "2026-03-04T10:30:00"
        section["rectifications"][RECT] = Map(
            {"description": "拆除占用消防车道的临时建筑", "due": "2026-03-18", "done": False}
        )
    await editor.receive(name, pad.get_update(server.get_state()), rights)
    row = await CheckResult.get(inspection_id=inspection.id, check_code="fire-lane")
    assert row.outcome is CheckOutcome.RECTIFY and row.note == "消防车道被临时建筑占用"
    assert row.measured == {"宽度": 3.5} and row.photo_ids == ["photo-7d1e"]
    assert row.recorded_at is not None and row.recorded_at.utcoffset() is not None
    assert row.recorded_at.hour in (2, 10)  # 10:30 Beijing time, however the database returns it
    [rect] = await Rectification.filter(inspection_id=inspection.id)
    assert rect.uuid == RECT and rect.due == date(2026, 3, 18) and not rect.done
    assert (await Inspection.get(id=inspection.id)).status is InspectionStatus.IN_PROGRESS
    snapshot = [
        (r.check_code, r.outcome, r.note, r.measured, r.photo_ids)
        for r in await CheckResult.filter(inspection_id=inspection.id).order_by("id")
    ]
    events = await AuditEvent.filter(action="inspection.materialise").count()
    await policy.materialise(doc_name=name, doc=server)
    await policy.materialise(doc_name=name, doc=server)
    assert snapshot == [
        (r.check_code, r.outcome, r.note, r.measured, r.photo_ids)
        for r in await CheckResult.filter(inspection_id=inspection.id).order_by("id")
    ]
    assert await Rectification.filter(inspection_id=inspection.id).count() == 1
    assert await AuditEvent.filter(action="inspection.materialise").count() == events
    # The rectification is done, then removed on the tablet: the row follows, then goes.
    zjj_section(pad)["rectifications"][RECT]["done"] = True
    await editor.receive(name, pad.get_update(server.get_state()), rights)
    assert (await Rectification.get(uuid=RECT)).done
    del zjj_section(pad)["rectifications"][RECT]
    await editor.receive(name, pad.get_update(server.get_state()), rights)
    assert not await Rectification.exists(uuid=RECT)


async def test_another_departments_update_is_refused_and_not_kept(gql, clock):
    _, _, inspection, viewers = await scheduled(gql, clock)
    editor = MemoryEditor(FieldDocuments(clock=clock))
    name = inspection_doc_name(inspection.id)
    server = await editor.doc(name)
    rights = await document_access(viewers["rfb"], name)
    assert rights is not None
    pad = tablet(server)
    zjj_section(pad)["checks"]["alarm"]["result"] = "fail"
    with pytest.raises(LayoutError, match="an inspector of rfb may write only departments/rfb"):
        await editor.receive(name, pad.get_update(server.get_state()), rights)
    assert zjj_section(server)["checks"]["alarm"].to_py() == {"measured": {}, "photos": []}
    assert (await CheckResult.get(inspection_id=inspection.id, check_code="alarm")).outcome is None


async def test_conclusions_signed_in_the_document_close_the_round(gql, clock):
    _, stage, inspection, viewers = await scheduled(gql, clock)
    editor = MemoryEditor(FieldDocuments(clock=clock))
    name = inspection_doc_name(inspection.id)
    server = await editor.doc(name)
    for code, viewer in viewers.items():
        rights = await document_access(viewer, name)
        assert rights is not None
        pad = tablet(server)
        conclusion = pad.get("departments", type=Map)[code]["conclusion"]
        with pad.transaction():
            conclusion["result"] = "pass"
            conclusion["note"] = "现场验收合格"
            conclusion["signed_by"] = viewer.username
            conclusion["signed_at"] = "2026-03-04T16:00:00+08:00"
        await editor.receive(name, pad.get_update(server.get_state()), rights)
    rows = await InspectionDepartment.filter(inspection_id=inspection.id)
    assert {r.conclusion for r in rows} == {Conclusion.PASS}
    assert {r.signed_by for r in rows} == {v.username for v in viewers.values()}
    assert (await Inspection.get(id=inspection.id)).status is InspectionStatus.PASSED
    decided = await Task.filter(stage_id=stage.id, department__code__in=list(viewers))
    assert decided and all(t.status is TaskStatus.DECIDED for t in decided)
    assert {t.decided_by_id for t in decided} <= {v.user_id for v in viewers.values()}
    assert (await Stage.get(id=stage.id)).status is StageStatus.IN_REVIEW  # others still open


async def test_agency_entries_materialise_and_vanish_with_their_uuid(gql, clock):
    project, _ = await at_acceptance(gql, clock)
    agent = await person("agent", "agent")  # type: ignore[arg-type]
    policy = FieldDocuments(clock=clock)
    editor = MemoryEditor(policy)
    name = agency_doc_name(db_id(project["id"]))
    assert policy.initial_update(name) is None
    server = await editor.doc(name)
    rights = await document_access(agent, name)
    assert rights is not None and rights.writable
    pad = tablet(server)
    visit, todo = str(uuid.uuid4()), str(uuid.uuid4())
    entries = pad.get("entries", type=Map)
    with pad.transaction():
        entries[visit] = Map(
            {
                "kind": "visit",
                "text": "走访建设单位，核对竣工资料",
                "at": "2026-03-03T10:00:00+08:00",
            }
        )
        entries[todo] = Map({"kind": "todo", "text": "催交电梯检验报告", "due": "2026-03-06"})
    await editor.receive(name, pad.get_update(server.get_state()), rights)
    await policy.materialise(doc_name=name, doc=server)
    rows = {r.uuid: r for r in await AgencyEntry.filter(project_id=db_id(project["id"]))}
    assert set(rows) == {visit, todo}
    assert rows[todo].due == date(2026, 3, 6) and rows[visit].text == "走访建设单位，核对竣工资料"
    query = "query($p: ID!) { agencyEntries(projectId: $p) { uuid kind kindLabel text due done } }"
    shown = (await gql(query, {"p": project["id"]}, as_="agent"))["data"]["agencyEntries"]
    assert [(e["uuid"], e["kindLabel"], e["done"]) for e in shown] == [
        (todo, "待办", False),  # open to-dos first
        (visit, "走访", False),
    ]
    hidden = await gql(query, {"p": project["id"]}, as_="fgw")
    assert hidden["data"] is None and hidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (
        len((await gql(query, {"p": project["id"]}, as_="supervisor"))["data"]["agencyEntries"])
        == 2
    )
    with pad.transaction():
        entries[todo]["done"] = True
        del entries[visit]
    await editor.receive(name, pad.get_update(server.get_state()), rights)
    [left] = await AgencyEntry.filter(project_id=db_id(project["id"]))
    assert left.uuid == todo and left.done
    boss = await person("supervisor", "supervisor")  # type: ignore[arg-type]
    read_only = await document_access(boss, name)
    assert read_only is not None
    entries[todo]["text"] = "改写"
    with pytest.raises(LayoutError, match="read-only"):
        await editor.receive(name, pad.get_update(server.get_state()), read_only)


RECORD = """
mutation($input: RecordCheckInput!) {
  recordCheck(input: $input) {
    inspection {
      status statusLabel documentName
      departments {
        department { code }
        checks { code label unit measurable outcome outcomeLabel note measured photoIds recordedBy }
      }
    }
    errors { code field message }
  }
}"""

CONCLUDE = """
mutation($input: FileConclusionInput!) {
  fileConclusion(input: $input) {
    inspection { status departments { department { code } conclusion conclusionLabel signedBy } }
    errors { code field message }
  }
}"""

QUERY = """
query($project: ID!, $id: ID!) {
  inspections(projectId: $project) { id kind kindLabel round due }
  inspection(id: $id) {
    kindLabel status due scheduledFor project { name }
    assignments { person { username } department { code } }
    departments { department { code } checks { code label outcome } }
    rectifications { uuid description }
  }
}"""

MINE = "{ myInspections { id documentName departments { department { code } } } }"


@pytest.fixture
async def field_gql(gql, clock):
    """A GraphQL client whose app edits field documents through an in-memory editor."""
    editor = MemoryEditor(FieldDocuments(clock=clock))
    transport = httpx.ASGITransport(app=documents_app(clock, editor))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http=http, tokens=gql.tokens), editor


async def test_record_check_through_graphql_changes_the_document(gql, field_gql, clock):
    client, editor = field_gql
    project, _, inspection, _ = await scheduled(gql, clock, codes=("zjj",))
    await assign_inspectors(
        viewer=await clerk(), inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    gid = _gid(inspection.id)
    variables = {
        "input": {
            "inspectionId": gid,
            "check": "hydrant-pressure",
            "result": "PASS",
            "note": "栓口静水压力符合规范",
            "measured": [{"name": "静水压力", "value": 0.35}],
            "photoIds": ["photo-01", "photo-02"],
        }
    }
    body = await client(RECORD, variables, as_="inspector")
    payload = body["data"]["recordCheck"]
    assert payload["errors"] == [], payload
    checks = payload["inspection"]["departments"][0]["checks"]
    hydrant = next(c for c in checks if c["code"] == "hydrant-pressure")
    assert hydrant == {
        "code": "hydrant-pressure",
        "label": "室内消火栓栓口静水压力",
        "unit": "MPa",
        "measurable": True,
        "outcome": "PASS",
        "outcomeLabel": "合格",
        "note": "栓口静水压力符合规范",
        "measured": {"静水压力": 0.35},
        "photoIds": ["photo-01", "photo-02"],
        "recordedBy": "inspector",
    }
    assert payload["inspection"]["status"] == "IN_PROGRESS"
    doc = editor.docs[inspection_doc_name(inspection.id)]
    in_doc = zjj_section(doc)["checks"]["hydrant-pressure"].to_py()
    assert in_doc["result"] == "pass" and in_doc["photos"] == ["photo-01", "photo-02"]
    # A tablet that recorded the same check offline merges with the GraphQL change.
    rights = await document_access(await inspector("zjj"), inspection_doc_name(inspection.id))
    assert rights is not None
    offline: Doc = Doc()
    offline.apply_update(doc.get_update())
    zjj_section(offline)["checks"]["hydrant-pressure"]["photos"].append("photo-03")
    await editor.receive(
        inspection_doc_name(inspection.id), offline.get_update(doc.get_state()), rights
    )
    row = await CheckResult.get(inspection_id=inspection.id, check_code="hydrant-pressure")
    assert (
        row.photo_ids == ["photo-01", "photo-02", "photo-03"] and row.note == "栓口静水压力符合规范"
    )
    # Unknown check, another inspector, and the conclusion signed through the document.
    bad = await client(
        RECORD, {"input": {**variables["input"], "check": "无此项"}}, as_="inspector"
    )
    assert bad["data"]["recordCheck"]["errors"][0]["field"] == "check"
    other = await client(RECORD, variables, as_="clerk")
    assert other["data"]["recordCheck"]["errors"][0]["code"] == "FORBIDDEN"
    body = await client(
        CONCLUDE,
        {"input": {"inspectionId": gid, "result": "PASS", "note": "合格"}},
        as_="inspector",
    )
    concluded = body["data"]["fileConclusion"]
    assert concluded["errors"] == [], concluded
    assert concluded["inspection"]["status"] == "PASSED"
    assert concluded["inspection"]["departments"][0]["conclusionLabel"] == "合格"
    assert zjj_section(doc)["conclusion"]["result"] == "pass"
    closed = await client(RECORD, variables, as_="inspector")
    assert closed["data"]["recordCheck"]["errors"][0]["code"] == "INVALID_STATE"
    # Reading it back.
    body = await client(QUERY, {"project": project["id"], "id": gid}, as_="supervisor")
    assert "errors" not in body, body
    assert body["data"]["inspections"][0]["kindLabel"] == "联合验收"
    found = body["data"]["inspection"]
    assert found["status"] == "PASSED" and found["scheduledFor"] == "2026-03-04"
    assert {a["person"]["username"] for a in found["assignments"]} >= {"inspector"}
    body = await client(MINE, as_="inspector")
    assert body["data"]["myInspections"] == []  # closed ones are left out by default


async def test_record_check_without_sync_answers_a_typed_error(gql, clock):
    _, _, inspection, _ = await scheduled(gql, clock, codes=("zjj",))
    await assign_inspectors(
        viewer=await clerk(), inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    body = await gql(
        RECORD,
        {"input": {"inspectionId": _gid(inspection.id), "check": "alarm", "result": "PASS"}},
        as_="inspector",
    )
    [error] = body["data"]["recordCheck"]["errors"]
    assert error["code"] == "SYNC_UNAVAILABLE" and "sync is not configured" in error["message"]
    mine = await gql(MINE, as_="inspector")
    assert [i["documentName"] for i in mine["data"]["myInspections"]] == [
        inspection_doc_name(inspection.id)
    ]
    # Without sync the conclusion is filed straight to the rows.
    body = await gql(
        CONCLUDE,
        {"input": {"inspectionId": _gid(inspection.id), "result": "FAIL", "note": "报警系统故障"}},
        as_="inspector",
    )
    assert body["data"]["fileConclusion"]["inspection"]["status"] == "RECTIFICATION_REQUIRED"


async def test_graphql_schedules_and_assigns(gql, clock):
    project, _ = await at_acceptance(gql, clock)
    schedule = """mutation($input: ScheduleJointAcceptanceInput!) {
      scheduleJointAcceptance(input: $input) {
        inspection { id kind round due departments { department { code } checks { code } } }
        errors { code field message } } }"""
    body = await gql(
        schedule,
        {
            "input": {
                "projectId": project["id"],
                "departments": ["zjj"],
                "scheduledFor": "2026-03-04",
            }
        },
        as_="inspector",
    )
    assert body["data"]["scheduleJointAcceptance"]["errors"][0]["code"] == "FORBIDDEN"
    body = await gql(
        schedule,
        {
            "input": {
                "projectId": project["id"],
                "departments": ["zjj"],
                "scheduledFor": "2026-03-04",
            }
        },
        as_="clerk",
    )
    payload = body["data"]["scheduleJointAcceptance"]
    assert payload["errors"] == [], payload
    assert payload["inspection"]["kind"] == "JOINT_ACCEPTANCE"
    assert len(payload["inspection"]["departments"][0]["checks"]) == 16  # 消防验收 + 竣工验收备案
    assign = """mutation($input: AssignInspectorsInput!) {
      assignInspectors(input: $input) {
        inspection { assignments { person { username } } } errors { code message } } }"""
    body = await gql(
        assign,
        {"input": {"inspectionId": payload["inspection"]["id"], "usernames": ["inspector"]}},
        as_="clerk",
    )
    assert body["data"]["assignInspectors"]["inspection"]["assignments"] == [
        {"person": {"username": "inspector"}}
    ]
    site = """mutation($input: ScheduleSiteCheckInput!) {
      scheduleSiteCheck(input: $input) { inspection { kindLabel due } errors { code } } }"""
    body = await gql(
        site, {"input": {"projectId": project["id"], "departments": ["zrzy"]}}, as_="clerk"
    )
    assert body["data"]["scheduleSiteCheck"]["inspection"] == {
        "kindLabel": "现场踏勘",
        "due": "2026-03-05",
    }


def _gid(inspection_id: int) -> str:
    from strawberry.relay import GlobalID

    return str(GlobalID("Inspection", str(inspection_id)))


def test_record_check_change_sets_what_it_names_and_keeps_the_rest():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from approval.fieldwork.documents import InspectionLayout, initial_update, read_inspection

    doc: Doc = Doc()
    doc.apply_update(initial_update(InspectionLayout(departments={"zjj": ["alarm"]})))
    at = datetime(2026, 3, 4, 10, tzinfo=ZoneInfo("Asia/Shanghai"))

    def record(**values: Any) -> None:
        record_check_change(
            department_code="zjj", check_code="alarm", by="inspector", at=at, **values
        )(doc)

    record(
        result=CheckOutcome.FAIL, note="报警主机故障", measured={"响应时间": 12}, photo_ids=["p1"]
    )
    record(result=CheckOutcome.RECTIFY, note=None, measured=None, photo_ids=["p1", "p2"])
    alarm = read_inspection(doc)["zjj"].checks["alarm"]
    assert alarm.result is CheckOutcome.RECTIFY and alarm.note == "报警主机故障"
    assert alarm.measured == {"响应时间": 12.0} and alarm.photos == ("p1", "p2")
    assert alarm.at == at and alarm.by == "inspector"
    record(result=CheckOutcome.PASS, note="", measured={}, photo_ids=[])
    alarm = read_inspection(doc)["zjj"].checks["alarm"]
    assert alarm.measured == {} and alarm.note == "" and alarm.photos == ("p1", "p2")
    with pytest.raises(LayoutError, match="no such check"):
        record_check_change(
            department_code="zjj",
            check_code="sprinkler",
            result=CheckOutcome.PASS,
            note=None,
            measured=None,
            photo_ids=[],
            by="inspector",
            at=at,
        )(doc)
