"""The field documents end to end: the real app under uvicorn, pycrdt tablets, GraphQL.

``server.app.create_app`` serves ``/sync/inspection/{id}`` and ``/graphql`` together: a check
recorded on a tablet becomes a row GraphQL reads, a check recorded through GraphQL reaches the
tablet, rights are enforced per department, and conclusions signed in the document close
stage 4.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map
from strawberry.relay import GlobalID

from approval.core.access import Viewer
from approval.core.auth import issue_token
from approval.fieldwork.documents import inspection_doc_name
from approval.fieldwork.inspections import assign_inspectors, schedule_joint_acceptance
from storage.enums import CheckOutcome, InspectionStatus, ObjectKind, ProjectStatus, StageStatus
from storage.models import (
    CheckResult,
    DocumentUpdate,
    Inspection,
    InspectionDepartment,
    Project,
    Stage,
    Upload,
    User,
)
from tests.conftest import Clock, GraphQLClient
from tests.fieldwork_support import at_acceptance, clerk, inspector, stage_departments
from tests.helpers import db_id
from tests.sync_support import TIMEOUT, SyncClient, serving_onewindow

INSPECTION = """
query($id: ID!) {
  inspection(id: $id) {
    status
    departments { department { code } conclusion checks { code outcome note recordedBy } }
  }
}"""

RECORD = """
mutation($input: RecordCheckInput!) {
  recordCheck(input: $input) {
    inspection { departments { department { code } checks { code outcome note } } }
    errors { code field message }
  }
}"""


@dataclass
class Field:
    base: str  # ws://127.0.0.1:port
    http: httpx.AsyncClient
    inspection: Inspection
    stage: Stage
    project_id: int
    viewers: dict[str, Viewer]  # department code -> assigned inspector
    tokens: dict[str, str]  # username -> bearer token
    clients: list[SyncClient]

    @property
    def doc_name(self) -> str:
        return inspection_doc_name(self.inspection.id)

    @property
    def gid(self) -> str:
        return str(GlobalID("Inspection", str(self.inspection.id)))

    async def tablet(self, username: str, doc: Doc | None = None) -> SyncClient:
        client = await SyncClient.open(
            self.base, self.doc_name, token=self.tokens[username], doc=doc
        )
        self.clients.append(client)
        return client

    async def synced(self, username: str) -> SyncClient:
        client = await self.tablet(username)
        await client.until(client.synced.is_set, f"the first sync of {username}")
        return client

    async def graphql(self, query: str, variables: dict[str, Any], username: str) -> Any:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.tokens[username]}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def checks(self, username: str) -> dict[tuple[str, str], dict[str, Any]]:
        body = await self.graphql(INSPECTION, {"id": self.gid}, username)
        assert "errors" not in body, body
        return {
            (section["department"]["code"], check["code"]): check
            for section in body["data"]["inspection"]["departments"]
            for check in section["checks"]
        }


async def token(username: str, clock: Clock) -> str:
    value, _ = await issue_token(
        user=await User.get(username=username), now=clock(), ttl=timedelta(days=1)
    )
    return value


@pytest.fixture
async def field(gql: GraphQLClient, clock: Clock, database: str) -> AsyncIterator[Field]:
    """A joint acceptance of every stage-4 department with one assigned inspector each, and
    the whole app served by uvicorn over the test database."""
    project, stage = await at_acceptance(gql, clock)
    codes = await stage_departments(stage)
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=codes,
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
    outsider = await inspector("zjj", 2)  # of a participating department, but not assigned
    tokens = {
        name: await token(name, clock)
        for name in [*(v.username for v in viewers.values()), outsider.username, "supervisor"]
    }
    clients: list[SyncClient] = []
    async with serving_onewindow(database, clock) as (base, http):
        yield Field(
            base=base,
            http=http,
            inspection=inspection,
            stage=stage,
            project_id=db_id(project["id"]),
            viewers=viewers,
            tokens=tokens,
            clients=clients,
        )
        for client in clients:
            await client.close()


def section(doc: Doc, code: str) -> Map[Any]:
    found = doc.get("departments", type=Map)[code]
    assert isinstance(found, Map)
    return found


def record(code: str, check: str, result: str, note: str, by: str) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        item = section(doc, code)["checks"][check]
        item["result"] = result
        item["note"] = note
        item["by"] = by
        item["at"] = "2026-03-04T10:30:00+08:00"

    return edit


def acked(client: SyncClient, number: int) -> Callable[[], bool]:
    return lambda: number in client.acks


async def eventually(condition: Callable[[], Any], what: str, within: float) -> Any:
    """Poll an async ``condition`` until it returns something truthy, at most ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.05)


async def test_a_tablet_check_becomes_a_row_graphql_reads_within_a_second(field: Field) -> None:
    zjj = field.viewers["zjj"]
    tablet = await field.synced(zjj.username)
    assert sorted(tablet.doc.get("departments", type=Map).keys()) == sorted(field.viewers)
    number = await tablet.change(record("zjj", "fire-lane", "pass", "消防车道畅通", zjj.username))
    await tablet.until(lambda: number in tablet.acks, "the acknowledgement")
    assert tablet.errors == []

    async def shown() -> bool:
        check = (await field.checks("supervisor"))[("zjj", "fire-lane")]
        return bool(check["outcome"] == "PASS" and check["note"] == "消防车道畅通")

    await eventually(shown, "the check in GraphQL", within=1.0)
    row = await CheckResult.get(inspection_id=field.inspection.id, check_code="fire-lane")
    assert row.recorded_by == zjj.username
    assert (await Inspection.get(id=field.inspection.id)).status is InspectionStatus.IN_PROGRESS


async def test_a_graphql_check_reaches_the_connected_tablet(field: Field) -> None:
    zjj = field.viewers["zjj"]
    tablet = await field.synced(zjj.username)
    body = await field.graphql(
        RECORD,
        {
            "input": {
                "inspectionId": field.gid,
                "check": "alarm",
                "result": "RECTIFY",
                "note": "火灾报警控制器故障",
            }
        },
        zjj.username,
    )
    payload = body["data"]["recordCheck"]
    assert payload["errors"] == [], payload
    [mine] = [s for s in payload["inspection"]["departments"] if s["department"]["code"] == "zjj"]
    alarm = next(c for c in mine["checks"] if c["code"] == "alarm")
    assert alarm == {"code": "alarm", "outcome": "RECTIFY", "note": "火灾报警控制器故障"}

    def arrived() -> bool:
        return section(tablet.doc, "zjj")["checks"]["alarm"].get("result") == "rectify"

    await tablet.until(arrived, "the GraphQL check in the tablet's document")
    in_doc = section(tablet.doc, "zjj")["checks"]["alarm"]
    assert in_doc["note"] == "火灾报警控制器故障" and in_doc["by"] == zjj.username
    row = await CheckResult.get(inspection_id=field.inspection.id, check_code="alarm")
    assert row.outcome is CheckOutcome.RECTIFY


async def test_another_department_is_refused_with_a_reason(field: Field) -> None:
    other_code = next(code for code in field.viewers if code != "zjj")
    other = field.viewers[other_code]
    tablet = await field.synced(other.username)
    kept = await DocumentUpdate.filter(doc=field.doc_name).count()
    number = await tablet.change(record("zjj", "alarm", "fail", "越权", other.username))
    await tablet.until(lambda: bool(tablet.errors), "the refusal")
    [refusal] = tablet.errors
    assert refusal.number == number and refusal.code == "invalid"
    assert f"an inspector of {other_code} may write only departments/{other_code}" in (
        refusal.reason
    )
    assert await DocumentUpdate.filter(doc=field.doc_name).count() == kept
    observer = await field.synced(field.viewers["zjj"].username)
    assert "result" not in section(observer.doc, "zjj")["checks"]["alarm"]
    row = await CheckResult.get(inspection_id=field.inspection.id, check_code="alarm")
    assert row.outcome is None


async def test_a_supervisor_reads_but_may_not_write(field: Field) -> None:
    zjj = field.viewers["zjj"]
    writer = await field.synced(zjj.username)
    number = await writer.change(record("zjj", "fire-lane", "fail", "占用", zjj.username))
    await writer.until(lambda: number in writer.acks, "the acknowledgement")
    boss = await field.synced("supervisor")
    assert section(boss.doc, "zjj")["checks"]["fire-lane"]["result"] == "fail"
    number = await boss.change(record("zjj", "fire-lane", "pass", "改判", "supervisor"))
    await boss.until(lambda: bool(boss.errors), "the refusal")
    [refusal] = boss.errors
    assert refusal.number == number and refusal.code == "read_only"
    assert "may read" in refusal.reason and "not change it" in refusal.reason


async def test_an_inspector_not_assigned_is_closed_with_4403(field: Field) -> None:
    outsider = await field.tablet("验收员2-zjj")
    code, reason = await outsider.until_closed()
    assert code == 4403 and "may not open" in reason


async def test_a_document_that_does_not_exist_is_closed_with_4404(field: Field) -> None:
    """4404 for an inspection or a project that does not exist, whoever asks (an assigned
    inspector of another inspection, a supervisor); 4403 only for one that exists."""
    inspector_name = field.viewers["zjj"].username
    for doc_name, username in (
        (f"inspection/{field.inspection.id + 1000}", inspector_name),
        (f"inspection/{field.inspection.id + 1000}", "supervisor"),
        (f"agency/{field.project_id + 1000}", inspector_name),
    ):
        client = await SyncClient.open(field.base, doc_name, token=field.tokens[username])
        field.clients.append(client)
        code, reason = await client.until_closed()
        assert code == 4404, (doc_name, username, code, reason)
        assert doc_name in reason
    outsider = await SyncClient.open(
        field.base, f"agency/{field.project_id}", token=field.tokens[inspector_name]
    )
    field.clients.append(outsider)
    code, reason = await outsider.until_closed()
    assert code == 4403 and "may not open" in reason


async def test_conclusions_signed_in_the_document_complete_stage_four(field: Field) -> None:
    tablets = {code: await field.synced(v.username) for code, v in field.viewers.items()}
    for code, tablet in tablets.items():
        viewer = field.viewers[code]

        def sign(doc: Doc, code: str = code, username: str = viewer.username) -> None:
            conclusion = section(doc, code)["conclusion"]
            conclusion["result"] = "pass"
            conclusion["note"] = "现场验收合格"
            conclusion["signed_by"] = username
            conclusion["signed_at"] = "2026-03-04T16:00:00+08:00"

        number = await tablet.change(sign)
        await tablet.until(acked(tablet, number), f"the signature of {code}")

    async def completed() -> bool:
        stage = await Stage.get(id=field.stage.id)
        return stage.status is StageStatus.COMPLETED

    await eventually(completed, "stage 4 completing", within=TIMEOUT)
    inspection = await Inspection.get(id=field.inspection.id)
    assert inspection.status is InspectionStatus.PASSED
    assert (await Project.get(id=field.project_id)).status is ProjectStatus.COMPLETED
    body = await field.graphql(INSPECTION, {"id": field.gid}, "supervisor")
    assert body["data"]["inspection"]["status"] == "PASSED"
    conclusions = {d["conclusion"] for d in body["data"]["inspection"]["departments"]}
    assert conclusions == {"PASS"}
    # A tablet still connected from before the last signature keeps its connection's rights,
    # but the round is closed in the document: refused as well.
    still = tablets["zjj"]
    number = await still.change(record("zjj", "alarm", "pass", "签字后补录", "x"))
    await still.until(lambda: any(e.number == number for e in still.errors), "the refusal")
    [refusal] = [e for e in still.errors if e.number == number]
    assert refusal.code == "invalid" and "the round is closed" in refusal.reason, refusal
    # Closed: a tablet may still read it, but nothing more is written.
    late = await field.synced(field.viewers["zjj"].username)
    number = await late.change(record("zjj", "alarm", "pass", "补录", "x"))
    await late.until(lambda: bool(late.errors), "the refusal")
    assert late.errors[0].number == number and late.errors[0].code == "read_only"


async def server_state(field: Field) -> dict[str, Any]:
    """The document as a fresh client of the supervisor receives it."""
    fresh = await field.synced("supervisor")
    state: dict[str, Any] = fresh.doc.get("departments", type=Map).to_py() or {}
    return state


async def test_a_forged_write_through_a_clock_gap_is_held_then_refused(field: Field) -> None:
    """An inspector of zjj keeps one local edit unsent and sends the next, which writes
    another department's check and signs its conclusion: it lacks a dependency, so it is held
    (not applied, stored, broadcast, acked or materialised); once the missing edit arrives,
    both are judged as a whole and refused, the dependent one with the same reason."""
    other_code = next(code for code in field.viewers if code != "zjj")
    zjj = field.viewers["zjj"]
    tablet = await field.synced(zjj.username)
    before = await server_state(field)
    rows_before = await DocumentUpdate.filter(doc=field.doc_name).count()
    tablet.make(record("zjj", "fire-lane", "pass", "本部门", zjj.username))  # never sent

    def forge(doc: Doc) -> None:
        record(other_code, next(iter(section(doc, other_code)["checks"])), "pass", "代签", "x")(doc)
        conclusion = section(doc, other_code)["conclusion"]
        conclusion["result"] = "pass"
        conclusion["signed_by"] = field.viewers[other_code].username
        conclusion["signed_at"] = "2026-03-04T16:00:00+08:00"

    forged = await tablet.send_update(tablet.make(forge))
    await tablet.until(lambda: forged in tablet.held, "the held answer")
    await tablet.until(lambda: tablet.acked_upto >= forged, "the group's ack")
    assert forged not in tablet.acks and tablet.errors == []
    assert await DocumentUpdate.filter(doc=field.doc_name).count() == rows_before
    assert await server_state(field) == before
    await asyncio.sleep(0.6)  # past the materialisation delay
    department = await InspectionDepartment.get(
        inspection_id=field.inspection.id, department__code=other_code
    )
    assert department.conclusion is None
    # the whole state now: the unsent edit with the forged one, judged as a whole
    whole = await tablet.send_update(tablet.doc.get_update())
    await tablet.until(lambda: len(tablet.errors) == 2, "both refusals")
    by_number = {error.number: error for error in tablet.errors}
    assert by_number[whole].code == "invalid" and other_code in by_number[whole].reason
    assert (by_number[forged].code, by_number[forged].reason) == (
        by_number[whole].code,
        by_number[whole].reason,
    )
    assert await DocumentUpdate.filter(doc=field.doc_name).count() == rows_before
    assert await server_state(field) == before


async def test_a_refusal_does_not_poison_the_document(field: Field) -> None:
    """Two offline notes over the limit: the first is refused, the second (which depends on
    it) is refused with the same reason; nothing invalid is stored; the inspector's valid
    edits from a fresh replica are kept and GraphQL's recordCheck still works."""
    zjj = field.viewers["zjj"]
    stock = await field.tablet(zjj.username)  # as a stock Yjs client would: no recovery
    await stock.until(stock.synced.is_set, "the first sync")
    first = await stock.change(record("zjj", "fire-lane", "pass", "长" * 4001, zjj.username))
    second = await stock.change(record("zjj", "alarm", "bogus", "长" * 4001, zjj.username))

    def unknown_key(doc: Doc) -> None:
        section(doc, "zjj")["checks"]["alarm"]["extra"] = "不该有"

    third = await stock.change(unknown_key)
    await stock.until(lambda: len(stock.errors) == 3, "three refusals")
    by_number = {error.number: error for error in stock.errors}
    assert "at most 4000" in by_number[first].reason
    for number in (second, third):
        assert (by_number[number].code, by_number[number].reason) == (
            by_number[first].code,
            by_number[first].reason,
        )
    state = await server_state(field)
    assert "note" not in state["zjj"]["checks"]["fire-lane"]
    assert "extra" not in state["zjj"]["checks"]["alarm"]
    # the recovery: a fresh replica (the server's state, a new client id) and a valid edit
    fresh = await field.synced(zjj.username)
    number = await fresh.change(record("zjj", "fire-lane", "pass", "消防车道畅通", zjj.username))
    await fresh.until(acked(fresh, number), "the valid edit's ack")
    body = await field.graphql(
        RECORD,
        {"input": {"inspectionId": field.gid, "check": "alarm", "result": "PASS"}},
        zjj.username,
    )
    assert body["data"]["recordCheck"]["errors"] == [], body

    async def rows_follow() -> bool:
        checks = await field.checks("supervisor")
        return bool(
            checks[("zjj", "fire-lane")]["note"] == "消防车道畅通"
            and checks[("zjj", "alarm")]["outcome"] == "PASS"
        )

    await eventually(rows_follow, "the rows", within=2.0)


async def test_a_photo_uploaded_for_another_inspection_is_refused_in_the_document(
    field: Field,
) -> None:
    """Issue 10, finding 5 (the validation side): a photo id that is the upload of another
    inspection or project is refused; one not uploaded yet (the tablet uploads after it
    syncs) and one uploaded for this inspection are kept."""
    zjj = field.viewers["zjj"]
    user = await User.get(username=zjj.username)
    now = datetime.now(UTC)

    async def upload(sha256: str, inspection_id: int | None) -> None:
        await Upload.create(
            id=uuid.uuid4(),
            kind=ObjectKind.PHOTO,
            sha256=sha256,
            size_bytes=10,
            declared_type="image/jpeg",
            file_name="现场.jpg",
            project_id=field.project_id,
            inspection_id=inspection_id,
            requested_by=user,
            staging_key=f"staging/{uuid.uuid4()}",
            requested_at=now,
            expires_at=now + timedelta(hours=1),
        )

    foreign, pending, own = "a" * 64, "b" * 64, "c" * 64
    longer = "sha256:" + "d" * 64  # a valid photo id (up to 128 characters), not a bare hash
    await upload(foreign, None)  # a project's photo, of no inspection of this check
    await upload(own, field.inspection.id)
    tablet = await field.synced(zjj.username)

    def attach(photo: str) -> Callable[[Doc], None]:
        def edit(doc: Doc) -> None:
            photos = section(doc, "zjj")["checks"]["fire-lane"]["photos"]
            photos.append(photo)

        return edit

    refused = await tablet.change(attach(foreign))
    await tablet.until(lambda: bool(tablet.errors), "the refusal")
    [error] = tablet.errors
    assert error.number == refused and "uploaded for another inspection or project" in error.reason
    fresh = await field.synced(zjj.username)  # a fresh replica: the server's state
    for photo in (pending, own, longer):
        number = await fresh.change(attach(photo))
        await fresh.until(acked(fresh, number), f"the ack of {photo[:4]}")
    assert fresh.errors == []
    state = await server_state(field)
    assert state["zjj"]["checks"]["fire-lane"]["photos"] == [pending, own, longer]
