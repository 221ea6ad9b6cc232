"""A company setup's site check (现场踏勘) on the inspection documents and sync path of the
construction site checks: accepted -> an inspection of the setup with the permit department's
checklist, due in 3 working days -> the department assigns its inspector -> the inspector
records it on a tablet (the real app under uvicorn, pycrdt) and signs -> the permit's check is
done and the department may approve. Hostile actors: another department's inspector, another
region, the applicant, an agent; a failed check, a re-inspection and a re-accepted round."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from approval.core.auth import create_user, issue_token
from approval.fieldwork.documents import inspection_doc_name
from storage.enums import InspectionKind, InspectionStatus, Role
from storage.models import (
    AuditEvent,
    CheckResult,
    Enterprise,
    Inspection,
    InspectionAssignment,
    SetupTask,
)
from tests import test_company_setups_api as setups_api
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.helpers import db_id
from tests.sync_support import TIMEOUT, SyncClient, serving_onewindow
from tests.test_company_setups_api import (
    ASSIGN,
    CONCLUDE,
    DECIDE,
    accept,
    pass_site_check,
    site_check_id,
)
from tests.test_field_sync import eventually, record, section

tokens = setups_api.tokens  # the company reviewers r-* and inspectors i-* (a fixture)

INSPECTION = """query($id: ID!) { inspection(id: $id) {
  kind status due documentName project { name }
  setup { code companyName businessType { code name } }
  departments { department { code } conclusion checks { code outcome note recordedBy } } } }"""
MINE = """{ myInspections { id kindLabel due project { name } setup { code companyName
  businessType { name } } } }"""
REINSPECT = """mutation($input: ScheduleReinspectionInput!) { scheduleReinspection(input: $input) {
  inspection { id round status due } errors { code field message } } }"""
FOOD_CHECKS = ["area", "cold-storage", "layout", "pest-control", "staff-health"]


async def _person(username: str, role: Role, clock: Clock, **where: Any) -> str:
    user = await create_user(
        username=username, password=PASSWORD, display_name=username, role=role, **where
    )
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=30))
    return token


@dataclass
class Restaurant:
    """A restaurant's setup as the window accepted it, and who tries its site checks."""

    code: str
    tasks: dict[str, dict[str, Any]]  # permit code -> task as acceptCompanySetup answers
    food: str  # the food-business check's inspection, as a global id
    fire: str
    tokens: dict[str, str]  # company reviewers r-*, inspectors i-*, and the hostile below


@pytest.fixture
async def restaurant(
    gql: GraphQLClient,
    tokens: dict[str, str],
    clock: Clock,
) -> Restaurant:
    setup = await accept(gql)  # region 371402 (德城区)
    tasks = {t["permitCode"]: t for t in setup["tasks"]}
    made = dict(tokens)
    made["shiyao-other-region"] = await _person(
        "r-shiyao-ling", Role.REVIEWER, clock, department_code="shiyao", region_code="371403"
    )
    made["i-shiyao-other-region"] = await _person(
        "i-shiyao-ling", Role.INSPECTOR, clock, department_code="shiyao", region_code="371403"
    )
    enterprise = await Enterprise.create(
        credit_code="91371400MA0SETUP1X", name="德州某企业", contact_name="刘", contact_phone="1"
    )
    made["applicant"] = await _person(
        "s-applicant", Role.APPLICANT, clock, enterprise_id=enterprise.id
    )
    made["agent"] = gql.tokens["agent"]
    made["supervisor"] = gql.tokens["supervisor"]
    made["clerk"] = gql.tokens["clerk"]
    return Restaurant(
        code=setup["code"],
        tasks=tasks,
        food=await site_check_id(gql, setup["code"], tasks["food_business_license"]["taskId"]),
        fire=await site_check_id(gql, setup["code"], tasks["fire_safety_check"]["taskId"]),
        tokens=made,
    )


async def test_acceptance_opens_an_inspection_per_site_check_with_the_permits_checklist(
    gql: GraphQLClient, restaurant: Restaurant
) -> None:
    food_task = restaurant.tasks["food_business_license"]
    body = await gql(INSPECTION, {"id": restaurant.food}, token=restaurant.tokens["shiyao"])
    found = body["data"]["inspection"]
    assert found["kind"] == "SITE_CHECK" and found["status"] == "SCHEDULED"
    assert found["project"] is None
    assert found["setup"] == {
        "code": restaurant.code,
        "companyName": "德州市老街餐饮有限公司",
        "businessType": {"code": "restaurant", "name": found["setup"]["businessType"]["name"]},
    }
    assert found["due"] == food_task["siteCheckDue"] == "2026-03-05"  # 3 working days
    [section] = found["departments"]
    assert section["department"]["code"] == "shiyao"
    assert sorted(c["code"] for c in section["checks"]) == FOOD_CHECKS
    fire = await gql(INSPECTION, {"id": restaurant.fire}, token=restaurant.tokens["xfjy"])
    [fire_section] = fire["data"]["inspection"]["departments"]
    assert fire_section["department"]["code"] == "xfjy"
    assert {c["code"] for c in fire_section["checks"]} == {
        "exits",
        "evacuation",
        "extinguishers",
        "decoration",
    }
    rows = await Inspection.filter(setup__code=restaurant.code).order_by("id")
    assert [(r.kind, r.project_id, r.setup_task_id) for r in rows] == [
        (InspectionKind.SITE_CHECK, None, food_task["taskId"]),
        (InspectionKind.SITE_CHECK, None, restaurant.tasks["fire_safety_check"]["taskId"]),
    ]
    # Nobody outside the setup's scope sees the inspection (the setup's other departments do,
    # as a project's departments see its inspections).
    seen = await gql(INSPECTION, {"id": restaurant.food}, token=restaurant.tokens["gongshang"])
    assert seen["data"]["inspection"]["setup"]["code"] == restaurant.code
    for who in ("shiyao-other-region", "applicant", "agent", "wenguang", "inspector"):
        token = restaurant.tokens.get(who) or gql.tokens[who]
        hidden = await gql(INSPECTION, {"id": restaurant.food}, token=token)
        assert hidden["data"]["inspection"] is None, who


async def test_who_may_assign_the_setups_inspectors(
    gql: GraphQLClient, restaurant: Restaurant
) -> None:
    async def assign(inspection: str, names: list[str], who: str) -> dict[str, Any]:
        body = await gql(
            ASSIGN,
            {"input": {"inspectionId": inspection, "usernames": names}},
            token=restaurant.tokens[who],
        )
        return dict(body["data"]["assignInspectors"])

    refused = {
        # another department's reviewer, for its own inspector or the right one
        ("xfjy", "food", "i-xfjy"): "WRONG_DEPARTMENT",
        ("xfjy", "food", "i-shiyao"): "WRONG_DEPARTMENT",
        # the right department's reviewer, naming an inspector of another department
        ("shiyao", "food", "i-xfjy"): "WRONG_DEPARTMENT",
        # the department in another region does not see the setup: as any reviewer outside
        # a setup check of their scope, FORBIDDEN (the construction inspections' answer)
        ("shiyao-other-region", "food", "i-shiyao"): "FORBIDDEN",
        # the inspector of the right department but another region
        ("shiyao", "food", "i-shiyao-ling"): "FORBIDDEN",
        # a reviewer of a department without a site check in it
        ("gongshang", "food", "i-shiyao"): "WRONG_DEPARTMENT",
        ("applicant", "food", "i-shiyao"): "FORBIDDEN",
        ("agent", "food", "i-shiyao"): "FORBIDDEN",
    }
    for (who, which, name), code in refused.items():
        inspection = restaurant.food if which == "food" else restaurant.fire
        payload = await assign(inspection, [name], who)
        assert [e["code"] for e in payload["errors"]] == [code], (who, name, payload)
    assert await InspectionAssignment.filter(inspection__setup__code=restaurant.code).count() == 0
    assert (await assign(restaurant.food, ["i-shiyao"], "shiyao"))["errors"] == []
    assert (await assign(restaurant.fire, ["i-xfjy"], "clerk"))["errors"] == []  # the window
    mine = await gql(MINE, token=restaurant.tokens["i-shiyao"])
    [listed] = mine["data"]["myInspections"]
    assert listed["id"] == restaurant.food and listed["project"] is None
    assert listed["setup"]["code"] == restaurant.code
    assert listed["setup"]["companyName"] == "德州市老街餐饮有限公司"
    assert listed["kindLabel"] == "现场踏勘"
    audited = await AuditEvent.filter(action="inspection.assign").values_list("after", flat=True)
    assert {"inspectors": ["i-shiyao"]} in audited


@dataclass
class Served:
    base: str
    http: httpx.AsyncClient
    clients: list[SyncClient]

    async def tablet(self, doc_name: str, token: str) -> SyncClient:
        client = await SyncClient.open(self.base, doc_name, token=token)
        self.clients.append(client)
        return client


@pytest.fixture
async def served(clock: Clock, database: str) -> AsyncIterator[Served]:
    """The whole app (GraphQL and the sync endpoint) under uvicorn over the test database."""
    clients: list[SyncClient] = []
    async with serving_onewindow(database, clock) as (base, http):
        yield Served(base=base, http=http, clients=clients)
        for client in clients:
            await client.close()


def _sign(result: str, by: str) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        conclusion = section(doc, "shiyao")["conclusion"]
        conclusion["result"] = result
        conclusion["note"] = "现场核查合格" if result == "pass" else "冷藏设施不运转"
        conclusion["signed_by"] = by
        conclusion["signed_at"] = "2026-03-03T16:00:00+08:00"

    return edit


async def test_the_inspector_records_it_offline_and_the_permit_can_then_be_approved(
    gql: GraphQLClient, restaurant: Restaurant, served: Served
) -> None:
    tokens = restaurant.tokens
    food_task = restaurant.tasks["food_business_license"]
    decide = {"input": {"taskId": food_task["taskId"], "decision": "APPROVED"}}
    early = await gql(DECIDE, decide, token=tokens["shiyao"])
    [error] = early["data"]["decideSetupTask"]["errors"]
    assert error["code"] == "INVALID_STATE" and "field app" in error["message"]
    for inspection, who in ((restaurant.food, "shiyao"), (restaurant.fire, "xfjy")):
        body = await gql(
            ASSIGN,
            {"input": {"inspectionId": inspection, "usernames": [f"i-{who}"]}},
            token=tokens[who],
        )
        assert body["data"]["assignInspectors"]["errors"] == []
    doc_name = inspection_doc_name(db_id(restaurant.food))

    # Hostile: the fire inspector (assigned to the same setup's other check), an inspector of
    # the department in another region, the applicant: none may open the food document.
    for who in ("i-xfjy", "i-shiyao-other-region", "applicant", "agent"):
        intruder = await served.tablet(doc_name, tokens[who])
        code, reason = await intruder.until_closed()
        assert code == 4403 and "may not open" in reason, (who, code, reason)
    # The fire inspector on its own document may not write the food department's section.
    fire_doc = inspection_doc_name(db_id(restaurant.fire))
    fire_tablet = await served.tablet(fire_doc, tokens["i-xfjy"])
    await fire_tablet.until(fire_tablet.synced.is_set, "the fire inspector's sync")
    assert list(fire_tablet.doc.get("departments", type=Map).keys()) == ["xfjy"]

    tablet = await served.tablet(doc_name, tokens["i-shiyao"])
    await tablet.until(tablet.synced.is_set, "the food inspector's sync")
    for check in FOOD_CHECKS:
        number = await tablet.change(record("shiyao", check, "pass", "符合要求", "i-shiyao"))
        await tablet.until(lambda n=number: n in tablet.acks, f"the ack of {check}")
    assert tablet.errors == []

    async def recorded() -> bool:
        rows = await CheckResult.filter(inspection_id=db_id(restaurant.food))
        return len(rows) == len(FOOD_CHECKS) and all(r.outcome is not None for r in rows)

    await eventually(recorded, "the checks as rows", within=TIMEOUT)
    supervisor = await gql(INSPECTION, {"id": restaurant.food}, token=tokens["supervisor"])
    assert supervisor["data"]["inspection"]["status"] == "IN_PROGRESS"
    # Another region's supervisor-free path: a reviewer of another region still sees nothing.
    hidden = await gql(INSPECTION, {"id": restaurant.food}, token=tokens["shiyao-other-region"])
    assert hidden["data"]["inspection"] is None

    number = await tablet.change(_sign("pass", "i-shiyao"))
    await tablet.until(lambda: number in tablet.acks, "the signature's ack")

    async def done() -> bool:
        task = await SetupTask.get(id=food_task["taskId"])
        return task.site_check_done_at is not None

    await eventually(done, "the permit's site check done", within=TIMEOUT)
    inspection = await Inspection.get(id=db_id(restaurant.food))
    assert inspection.status is InspectionStatus.PASSED
    audit = await AuditEvent.get(action="setup_task.site_check", entity_id=food_task["taskId"])
    assert audit.after["inspection"] == inspection.id
    # Closed: a tablet opening it now may read it, but nothing more is written.
    reader = await served.tablet(doc_name, tokens["i-shiyao"])
    await reader.until(reader.synced.is_set, "the late sync")
    late = await reader.change(record("shiyao", "layout", "fail", "补录", "i-shiyao"))
    await reader.until(lambda: bool(reader.errors), "the refusal")
    assert reader.errors[0].number == late and reader.errors[0].code == "read_only"

    approved = await gql(DECIDE, decide, token=tokens["shiyao"])
    assert approved["data"]["decideSetupTask"]["errors"] == []
    task = await SetupTask.get(id=food_task["taskId"])
    assert task.decision is not None and task.decision.value == "approved"


async def test_a_failed_check_blocks_approval_until_a_passing_reinspection(
    gql: GraphQLClient, restaurant: Restaurant, clock: Clock
) -> None:
    tokens = restaurant.tokens
    food_task = restaurant.tasks["food_business_license"]
    failed = await pass_site_check(gql, tokens, food_task, code=restaurant.code, result="FAIL")
    assert failed == {"status": "RECTIFICATION_REQUIRED"}
    decide = {"input": {"taskId": food_task["taskId"], "decision": "APPROVED"}}
    refused = await gql(DECIDE, decide, token=tokens["shiyao"])
    assert refused["data"]["decideSetupTask"]["errors"][0]["code"] == "INVALID_STATE"
    assert (await SetupTask.get(id=food_task["taskId"])).site_check_done_at is None
    # The reviewer may not re-inspect (the window organises it); the window does.
    variables = {"input": {"inspectionId": restaurant.food}}
    by_reviewer = await gql(REINSPECT, variables, token=tokens["shiyao"])
    assert by_reviewer["data"]["scheduleReinspection"]["errors"][0]["code"] == "FORBIDDEN"
    clock.now += timedelta(days=1)  # Tuesday
    again = await gql(REINSPECT, variables, token=tokens["clerk"])
    payload = again["data"]["scheduleReinspection"]
    assert payload["errors"] == [], payload
    assert payload["inspection"]["round"] == 2 and payload["inspection"]["due"] == "2026-03-06"
    task = await SetupTask.get(id=food_task["taskId"])
    assert str(task.site_check_due) == "2026-03-06"
    # The inspector stays assigned; their passing conclusion opens the way to approval.
    concluded = await gql(
        CONCLUDE,
        {"input": {"inspectionId": payload["inspection"]["id"], "result": "PASS"}},
        token=tokens["i-shiyao"],
    )
    assert concluded["data"]["fileConclusion"]["errors"] == []
    approved = await gql(DECIDE, decide, token=tokens["shiyao"])
    assert approved["data"]["decideSetupTask"]["errors"] == []


async def test_the_record_site_check_mutation_is_gone(gql: GraphQLClient) -> None:
    """One way to record a setup's site check: the inspection."""
    body = await gql('mutation { recordSetupSiteCheck(taskId: 1, note: "x") { setup { code } } }')
    assert "recordSetupSiteCheck" in body["errors"][0]["message"]


async def test_a_reaccepted_permit_is_checked_again_in_a_new_round(
    gql: GraphQLClient, restaurant: Restaurant, clock: Clock
) -> None:
    from approval.oversight.supervision import SupervisionSettings, supervise
    from tests.supervision_support import at
    from tests.test_company_setups_api import REACCEPT, _decide_all

    tokens = restaurant.tokens
    food = restaurant.tasks["food_business_license"]["taskId"]
    setup = {"code": restaurant.code, "tasks": list(restaurant.tasks.values())}
    closed = await _decide_all(
        gql, tokens, setup, {"food_business_license": ("SUPPLEMENT_REQUIRED", "布局图不清")}
    )
    assert closed["status"] == "SUPPLEMENT_REQUIRED"
    first = await Inspection.get(id=db_id(restaurant.food))
    assert first.status is InspectionStatus.PASSED
    clock.now += timedelta(days=7)  # Monday 9 March
    body = await gql(
        REACCEPT, {"code": restaurant.code, "materials": ["premises_layout"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"] == []
    task = await SetupTask.get(id=food)
    assert task.round == 2 and task.site_check_done_at is None
    assert str(task.site_check_due) == "2026-03-12"
    second = await Inspection.filter(setup_task_id=food).order_by("-id").first()
    assert second is not None and second.id != first.id
    assert (second.round, second.previous_id, second.status) == (
        2,
        first.id,
        InspectionStatus.SCHEDULED,
    )
    assert str(second.due) == "2026-03-12"
    kept = await InspectionAssignment.filter(inspection_id=second.id).values_list(
        "user__username", flat=True
    )
    assert kept == ["i-shiyao"]
    fire = restaurant.tasks["fire_safety_check"]["taskId"]
    assert await Inspection.filter(setup_task_id=fire).count() == 1  # not reopened
    # The supervisor warns of the new round's check under a key of its own.
    fired = await supervise(now=at("2026-03-11"), settings=SupervisionSettings())
    assert f"setup_site_check:r2:{food}:yellow" in {e.key for e in fired}
    decide = {"input": {"taskId": food, "decision": "APPROVED"}}
    refused = await gql(DECIDE, decide, token=tokens["shiyao"])
    assert refused["data"]["decideSetupTask"]["errors"][0]["code"] == "INVALID_STATE"
    await pass_site_check(gql, tokens, {"taskId": food, "departmentCode": "shiyao"})
    approved = await gql(DECIDE, decide, token=tokens["shiyao"])
    assert approved["data"]["decideSetupTask"]["setup"]["status"] == "READY"


async def test_a_refused_setups_open_check_is_cancelled(
    gql: GraphQLClient, restaurant: Restaurant
) -> None:
    tokens = restaurant.tokens
    food = restaurant.tasks["food_business_license"]
    assigned = await gql(
        ASSIGN,
        {"input": {"inspectionId": restaurant.food, "usernames": ["i-shiyao"]}},
        token=tokens["shiyao"],
    )
    assert assigned["data"]["assignInspectors"]["errors"] == []
    for permit, task in restaurant.tasks.items():
        if permit == "food_business_license":
            continue
        if task["siteCheckDue"]:
            await pass_site_check(gql, tokens, task, code=restaurant.code)
        body = await gql(
            DECIDE,
            {"input": {"taskId": task["taskId"], "decision": "APPROVED"}},
            token=tokens[task["departmentCode"]],
        )
        assert body["data"]["decideSetupTask"]["errors"] == []
    open_list = await gql(MINE, token=tokens["i-shiyao"])
    assert [i["id"] for i in open_list["data"]["myInspections"]] == [restaurant.food]
    refused = await gql(
        DECIDE,
        {"input": {"taskId": food["taskId"], "decision": "REJECTED", "opinion": "场所不符合"}},
        token=tokens["shiyao"],
    )
    assert refused["data"]["decideSetupTask"]["setup"]["status"] == "REFUSED"
    inspection = await Inspection.get(id=db_id(restaurant.food))
    assert inspection.status is InspectionStatus.CANCELLED and inspection.closed_at is not None
    audit = await AuditEvent.get(action="inspection.cancel", entity_id=inspection.id)
    assert audit.after["reason"] == "setup refused"
    assert (await gql(MINE, token=tokens["i-shiyao"]))["data"]["myInspections"] == []
    late = await gql(
        CONCLUDE,
        {"input": {"inspectionId": restaurant.food, "result": "PASS"}},
        token=tokens["i-shiyao"],
    )
    assert late["data"]["fileConclusion"]["errors"][0]["code"] == "INVALID_STATE"
    # The passed fire check stays as it was.
    fire = await Inspection.get(id=db_id(restaurant.fire))
    assert fire.status is InspectionStatus.PASSED


async def test_a_departments_queue_reads_its_site_checks_in_one_statement(
    gql: GraphQLClient, restaurant: Restaurant
) -> None:
    """setupTasks with siteCheckId costs the same statements for one setup as for three."""
    from tests.test_query_count import count_sql

    query = "{ setupTasks { taskId siteCheckId } }"
    await gql(query, token=restaurant.tokens["shiyao"])  # the catalog snapshot, read once
    counts = []
    for more in (0, 2):
        for n in range(more):
            await accept(gql, companyName=f"德州市第{n}餐饮有限公司")
        with count_sql() as statements:
            body = await gql(query, token=restaurant.tokens["shiyao"])
        tasks = body["data"]["setupTasks"]
        assert tasks and all(t["siteCheckId"] for t in tasks)
        counts.append(len(statements))
    assert len(tasks) == 3
    assert counts[0] == counts[1], counts
