"""Company setup (1+4+X) through GraphQL: a business type's plan, intake at the window with
容缺, parallel review with site checks and the fan-in, unified issuing with its SMS, scope."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from approval.company.review import default_approve_setup_task
from approval.core.auth import create_user, issue_token
from approval.core.labels import label
from approval.oversight.notifications import collect
from storage.enums import Decision, Role, SetupStatus
from storage.models import (
    AuditEvent,
    CompanySetup,
    Notification,
    Rating,
    SetupTask,
    SetupTaskRound,
    SupervisionEvent,
)
from tests.conftest import Clock, GraphQLClient

REVIEWERS = (
    "gongshang",
    "zhijian",
    "guoshui",
    "dishui",
    "shiyao",
    "xfjy",
    "shangwu",
    "renhang",
    "wenguang",
)
CORE_MATERIALS = [
    "setup_application",
    "name_approval_notice",
    "articles_of_association",
    "shareholder_identity",
    "legal_rep_appointment",
    "premises_certificate",
    "finance_officer_info",
]
RESTAURANT = [
    *CORE_MATERIALS,
    "food_safety_rules",
    "premises_layout",
    "fire_safety_rules",
    "food_staff_health",
    "decoration_fire_proof",
]
PROMISED = ("food_staff_health", "decoration_fire_proof")  # non-core: 容缺 allowed
WITHOUT_PROMISED = [m for m in RESTAURANT if m not in PROMISED]

PLAN = """query($type: String!) { setupPlan(businessType: $type) {
  flow { code name } coreDays xDays siteCheckDays
  permits { code core department siteCheck defaultApproval }
  materials { code core } } }"""
ACCEPT = """mutation($input: AcceptCompanySetupInput!) { acceptCompanySetup(input: $input) {
  setup { code status statusLabel coreDeadline xDeadline projectCode
    tasks { taskId permitCode departmentCode core deadline siteCheckDue }
    materials { code status commitmentDue } }
  errors { code field message } } }"""
DECIDE = """mutation($input: DecideSetupTaskInput!) { decideSetupTask(input: $input) {
  setup { status statusLabel outcome } errors { code field message } } }"""
ASSIGN = """mutation($input: AssignInspectorsInput!) { assignInspectors(input: $input) {
  inspection { id } errors { code field message } } }"""
CONCLUDE = """mutation($input: FileConclusionInput!) { fileConclusion(input: $input) {
  inspection { status } errors { code field message } } }"""
SITE_CHECK_ID = """query($code: String!) { companySetup(code: $code) {
  tasks { taskId siteCheckId } } }"""
INSPECTORS = ("shiyao", "xfjy", "weisheng")  # the departments whose setup permits check sites
ISSUE = """mutation($code: String!) { issueCompanySetup(code: $code) {
  setup { status statusLabel issuedAt } errors { code field message } } }"""


company_catalog = functools.cache(load_default_company_catalog)  # parsed once, frozen


@pytest.fixture
async def tokens(gql: GraphQLClient, clock: Clock) -> AsyncIterator[dict[str, str]]:
    """The company catalog loaded and a reviewer of each company department."""
    await load_company_catalog(company_catalog())
    made: dict[str, str] = {}
    for code in REVIEWERS:
        user = await create_user(
            username=f"r-{code}",
            password="test-password",
            display_name=code,
            role=Role.REVIEWER,
            department_code=code,
        )
        made[code], _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=400))
    for code in INSPECTORS:
        user = await create_user(
            username=f"i-{code}",
            password="test-password",
            display_name=f"{code} inspector",
            role=Role.INSPECTOR,
            department_code=code,
        )
        made[f"i-{code}"], _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=400))
    yield made


async def site_check_id(gql: GraphQLClient, code: str, task_id: int) -> str:
    """The global id of the latest site-check inspection of a setup's task."""
    body = await gql(SITE_CHECK_ID, {"code": code}, as_="clerk")
    [found] = [t for t in body["data"]["companySetup"]["tasks"] if t["taskId"] == task_id]
    assert found["siteCheckId"], found
    return str(found["siteCheckId"])


async def pass_site_check(
    gql: GraphQLClient,
    tokens: dict[str, str],
    task: dict,
    *,
    code: str | None = None,
    result: str = "PASS",
) -> dict:
    """The permit department's reviewer assigns its inspector to the task's site check, and
    the inspector signs the conclusion (the field app's GraphQL door; the sync path is
    tests/test_setup_site_checks.py). ``task`` has taskId and departmentCode; ``code`` is the
    setup's (looked up when left out)."""
    if code is None:
        row = await CompanySetup.get(tasks__id=task["taskId"])
        code = row.code
    department = task["departmentCode"]
    inspection = await site_check_id(gql, code, task["taskId"])
    assigned = await gql(
        ASSIGN,
        {"input": {"inspectionId": inspection, "usernames": [f"i-{department}"]}},
        token=tokens[department],
    )
    assert assigned["data"]["assignInspectors"]["errors"] == [], assigned
    concluded = await gql(
        CONCLUDE,
        {"input": {"inspectionId": inspection, "result": result, "note": "布局合格"}},
        token=tokens[f"i-{department}"],
    )
    payload = concluded["data"]["fileConclusion"]
    assert payload["errors"] == [], payload
    return dict(payload["inspection"])


def form(business_type: str = "restaurant", **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "companyName": "德州市老街餐饮有限公司",
        "businessType": business_type,
        "region": "371402",
        "contactName": "赵敏",
        "contactPhone": "13800000001",
        "materials": RESTAURANT,
        "commitments": [],
    }
    values.update(changes)
    return values


async def accept(gql: GraphQLClient, **changes: object) -> dict:
    body = await gql(ACCEPT, {"input": form(**changes)}, as_="clerk")
    payload = body["data"]["acceptCompanySetup"]
    assert payload["errors"] == [], payload["errors"]
    return payload["setup"]


async def test_a_restaurant_gets_its_one_flow_with_two_site_checks(gql, tokens):
    body = await gql(PLAN, {"type": "restaurant"}, as_="clerk")
    plan = body["data"]["setupPlan"]
    assert plan["flow"] == {"code": "catering", "name": "餐饮服务企业设立"}
    assert (plan["coreDays"], plan["xDays"], plan["siteCheckDays"]) == (4, 10, 3)
    permits = {p["code"]: p for p in plan["permits"]}
    assert [p["department"] for p in plan["permits"] if p["core"]] == [
        "工商局",
        "质监局",
        "国税局",
        "地税局",
    ]
    assert permits["food_business_license"]["siteCheck"] == "食品经营场所核查"
    assert permits["fire_safety_check"]["siteCheck"] == "消防安全检查"
    assert not permits["business_license"]["defaultApproval"]
    materials = {m["code"]: m["core"] for m in plan["materials"]}
    assert materials["premises_layout"] is True  # one set of materials, core for any permit
    assert materials["food_staff_health"] is False
    unknown = await gql(PLAN, {"type": "spaceport"}, as_="clerk")
    assert unknown["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": "businessType"}


async def test_intake_refuses_missing_core_materials_and_accepts_with_a_commitment(gql, tokens):
    missing = await gql(ACCEPT, {"input": form(materials=CORE_MATERIALS)}, as_="clerk")
    [error] = missing["data"]["acceptCompanySetup"]["errors"]
    assert error["code"] == "MISSING_CORE_MATERIALS" and "food_safety_rules" in error["message"]
    late = form(
        materials=WITHOUT_PROMISED,
        commitments=[
            {"materialType": "food_staff_health", "due": "2026-03-20", "signedBy": "赵敏"}
        ],
    )
    body = await gql(ACCEPT, {"input": late}, as_="clerk")
    [error] = body["data"]["acceptCompanySetup"]["errors"]
    assert error["field"] == "commitments" and "2026-03-16" in error["message"]
    bad_phone = await gql(ACCEPT, {"input": form(contactPhone="call me")}, as_="clerk")
    assert bad_phone["data"]["acceptCompanySetup"]["errors"][0]["field"] == "contactPhone"
    assert await CompanySetup.all().count() == 0  # nothing stored by a refusal
    setup = await accept(
        gql,
        materials=WITHOUT_PROMISED,
        commitments=[
            {"materialType": "food_staff_health", "due": "2026-03-13", "signedBy": "赵敏"},
            {"materialType": "decoration_fire_proof", "due": "2026-03-13", "signedBy": "赵敏"},
        ],
    )
    assert setup["code"] == f"QS2026{(await CompanySetup.get()).id:06d}"
    assert setup["status"] == "IN_REVIEW" and setup["statusLabel"] == "并联审批中"
    # Monday 2 March: 4 working days -> Friday 6 March, 10 -> Monday 16 March, 3 -> 5 March.
    assert (setup["coreDeadline"], setup["xDeadline"]) == ("2026-03-06", "2026-03-16")
    tasks = {t["permitCode"]: t for t in setup["tasks"]}
    assert len(tasks) == 6
    assert {t["deadline"] for t in setup["tasks"] if t["core"]} == {"2026-03-06"}
    assert tasks["fire_safety_check"]["deadline"] == "2026-03-16"
    assert tasks["food_business_license"]["siteCheckDue"] == "2026-03-05"
    assert tasks["business_license"]["siteCheckDue"] is None
    committed = {m["code"]: m for m in setup["materials"] if m["status"] == "COMMITTED"}
    assert set(committed) == {"food_staff_health", "decoration_fire_proof"}
    event = await AuditEvent.get(action="setup.accept")
    assert event.after["flow"] == "catering" and event.after["tasks"] == 6


async def test_parallel_review_fans_in_and_the_window_issues_together(gql, tokens, clock):
    setup = await accept(gql)
    tasks = {t["permitCode"]: t for t in setup["tasks"]}
    food = tasks.pop("food_business_license")
    early = await gql(
        DECIDE,
        {"input": {"taskId": food["taskId"], "decision": "APPROVED"}},
        token=tokens["shiyao"],
    )
    assert early["data"]["decideSetupTask"]["errors"][0]["code"] == "INVALID_STATE"
    wrong = await gql(
        DECIDE,
        {"input": {"taskId": food["taskId"], "decision": "APPROVED"}},
        token=tokens["gongshang"],
    )
    assert wrong["data"]["decideSetupTask"]["errors"][0]["code"] == "WRONG_DEPARTMENT"
    checked = await pass_site_check(gql, tokens, food, code=setup["code"])
    assert checked == {"status": "PASSED"}
    body = await gql(
        DECIDE,
        {"input": {"taskId": food["taskId"], "decision": "APPROVED"}},
        token=tokens["shiyao"],
    )
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "IN_REVIEW"
    not_yet = await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert not_yet["data"]["issueCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"
    fire = tasks.pop("fire_safety_check")
    await pass_site_check(gql, tokens, fire, code=setup["code"])
    for task in [fire, *tasks.values()]:
        body = await gql(
            DECIDE,
            {"input": {"taskId": task["taskId"], "decision": "APPROVED"}},
            token=tokens[task["departmentCode"]],
        )
        assert body["data"]["decideSetupTask"]["errors"] == []
    assert body["data"]["decideSetupTask"]["setup"] == {
        "status": "READY",
        "statusLabel": "待统一发证",
        "outcome": "APPROVED",
    }
    issued = await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert issued["data"]["issueCompanySetup"]["setup"]["statusLabel"] == "已发证"
    again = await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert again["data"]["issueCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"
    assert await collect(now=clock()) == 3
    texts = {n.moment: n for n in await Notification.filter(recipient="13800000001")}
    assert "已受理" in texts["received"].text and setup["code"] in texts["received"].text
    assert "统一领取" in texts["ready"].text
    assert "评价码" in texts["rate"].text  # 办结评议 goes with the certificates
    assert await collect(now=clock()) == 0  # exactly once


async def test_one_refusal_refuses_the_setup_and_nothing_is_issued(gql, tokens):
    setup = await accept(
        gql,
        businessType="supermarket",
        materials=[*CORE_MATERIALS, "food_safety_rules", "premises_layout", "food_staff_health"],
    )
    core = next(t for t in setup["tasks"] if t["permitCode"] == "organization_code")
    body = await gql(
        DECIDE,
        {"input": {"taskId": core["taskId"], "decision": "REJECTED", "opinion": ""}},
        token=tokens["zhijian"],
    )
    assert body["data"]["decideSetupTask"]["errors"][0]["field"] == "opinion"
    body = await gql(
        DECIDE,
        {"input": {"taskId": core["taskId"], "decision": "REJECTED", "opinion": "名称冲突"}},
        token=tokens["zhijian"],
    )
    assert body["data"]["decideSetupTask"]["errors"] == []
    for task in setup["tasks"]:
        if task["taskId"] == core["taskId"]:
            continue
        if task["siteCheckDue"]:
            await pass_site_check(gql, tokens, task, code=setup["code"])
        body = await gql(
            DECIDE,
            {"input": {"taskId": task["taskId"], "decision": "APPROVED"}},
            token=tokens[task["departmentCode"]],
        )
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "REFUSED"
    assert body["data"]["decideSetupTask"]["setup"]["outcome"] == "REJECTED"
    issued = await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert issued["data"]["issueCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"


async def test_each_department_sees_its_setups_only(gql, tokens):
    await accept(gql)
    await accept(
        gql, businessType="bookstore", materials=[*CORE_MATERIALS, "publication_supply_plan"]
    )
    query = "{ companySetups { code flow } setupTasks { permitCode } }"
    fire = await gql(query, token=tokens["xfjy"])
    assert [s["flow"] for s in fire["data"]["companySetups"]] == ["餐饮服务企业设立"]
    assert [t["permitCode"] for t in fire["data"]["setupTasks"]] == ["fire_safety_check"]
    assert len((await gql(query, token=tokens["gongshang"]))["data"]["companySetups"]) == 2
    assert (await gql(query, as_="agent"))["data"]["companySetups"] == []
    refused = await gql(ACCEPT, {"input": form()}, token=tokens["gongshang"])
    assert refused["data"]["acceptCompanySetup"]["errors"][0]["code"] == "FORBIDDEN"


async def test_a_foreign_factory_links_its_construction_project(gql, tokens):
    from tests.helpers import create_project

    project = await create_project(gql)
    factory = [*CORE_MATERIALS, "foreign_investor_identity", "foreign_exchange_application"]
    setup = await accept(
        gql, businessType="foreign-factory", materials=factory, projectCode=project["code"]
    )
    assert setup["projectCode"] == project["code"]
    shop = await gql(
        ACCEPT,
        {"input": form(projectCode=project["code"])},
        as_="clerk",
    )
    assert shop["data"]["acceptCompanySetup"]["errors"][0]["field"] == "projectCode"


async def test_default_approval_after_the_deadline_only_where_the_law_allows(gql, tokens, clock):
    setup = await accept(
        gql, businessType="bookstore", materials=[*CORE_MATERIALS, "publication_supply_plan"]
    )
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    assert await default_approve_setup_task(task_id=ids["publication_license"], now=clock()) is None
    late = clock() + timedelta(days=15)  # past the X deadline of 16 March
    assert await default_approve_setup_task(task_id=ids["publication_license"], now=late)
    assert await default_approve_setup_task(task_id=ids["business_license"], now=late) is None
    task = await SetupTask.get(id=ids["publication_license"])
    assert task.default_approved and task.opinion == "超时默认通过"
    assert await default_approve_setup_task(task_id=ids["publication_license"], now=late) is None
    assert (await CompanySetup.get(code=setup["code"])).status is SetupStatus.IN_REVIEW
    assert task.deadline == date(2026, 3, 16)


async def test_the_supervisor_loop_watches_setup_tasks_and_site_checks(gql, tokens):
    from approval.oversight.supervision import SupervisionSettings, supervise
    from tests.supervision_support import at

    setup = await accept(gql)
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    settings = SupervisionSettings()
    fired = await supervise(now=at("2026-03-04"), settings=settings)  # checks due Thursday
    assert sorted(e.key for e in fired) == sorted(
        f"setup_site_check:{ids[p]}:yellow" for p in ("food_business_license", "fire_safety_check")
    )
    assert {e.department_id for e in fired} == {
        (await SetupTask.get(id=ids["food_business_license"])).department_id,
        (await SetupTask.get(id=ids["fire_safety_check"])).department_id,
    }
    fire = {"taskId": ids["fire_safety_check"], "departmentCode": "xfjy"}
    await pass_site_check(gql, tokens, fire, code=setup["code"])
    fired = await supervise(now=at("2026-03-06"), settings=settings)  # Friday: core due today
    keys = {e.key for e in fired}
    assert f"setup_site_check:{ids['food_business_license']}:red" in keys
    assert f"setup_site_check:{ids['fire_safety_check']}:red" not in keys  # recorded in time
    assert f"setup_task:{ids['business_license']}:yellow" in keys
    fired = await supervise(now=at("2026-03-09"), settings=settings)  # Monday: core overdue
    keys = {e.key for e in fired}
    assert f"setup_task:{ids['business_license']}:red" in keys  # the law excludes 超时默认
    assert f"setup_task:{ids['organization_code']}:default_approved" in keys
    assert (await SetupTask.get(id=ids["organization_code"])).default_approved
    overdue = await gql("{ overdue { events { key kindLabel } } }", as_="supervisor")
    labels = {e["key"]: e["kindLabel"] for e in overdue["data"]["overdue"]["events"]}
    assert labels[f"setup_task:{ids['business_license']}:red"] == "企业设立许可期限"
    assert labels[f"setup_site_check:{ids['food_business_license']}:red"] == "现场踏勘期限"
    assert await supervise(now=at("2026-03-09", 10), settings=settings) == []  # exactly once


async def test_setup_figures_count_setups_apart_from_projects(gql, tokens):
    await accept(gql)
    shop = await accept(
        gql, businessType="bookstore", materials=[*CORE_MATERIALS, "publication_supply_plan"]
    )
    for task in shop["tasks"]:
        await gql(
            DECIDE,
            {"input": {"taskId": task["taskId"], "decision": "APPROVED"}},
            token=tokens[task["departmentCode"]],
        )
    await gql(ISSUE, {"code": shop["code"]}, as_="clerk")
    query = """query($month: String) {
      setupFigures(month: $month) { accepted inReview ready issued refused issuedWithinPromise
        departments { departmentCode decided onTime openNow overdueNow } }
      departmentFigures { departmentCode } }"""
    body = await gql(query, {"month": None}, as_="supervisor")
    figures = body["data"]["setupFigures"]
    assert (figures["accepted"], figures["inReview"], figures["issued"]) == (2, 1, 1)
    assert figures["issuedWithinPromise"] == 1 and figures["ready"] == figures["refused"] == 0
    gongshang = next(d for d in figures["departments"] if d["departmentCode"] == "gongshang")
    assert gongshang == {
        "departmentCode": "gongshang",
        "decided": 1,
        "onTime": 1,
        "openNow": 1,
        "overdueNow": 0,
    }
    assert body["data"]["departmentFigures"] == []  # construction figures count no setup
    april = await gql(query, {"month": "2026-04"}, as_="supervisor")
    assert april["data"]["setupFigures"]["accepted"] == 0
    refused = await gql(query, {"month": None}, as_="clerk")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_ledger_has_the_setups_on_a_sheet_of_their_own(gql, tokens, clock):
    import io

    from openpyxl import load_workbook

    from approval.core.auth import viewer_of
    from approval.oversight.reports import ledger_rows, ledger_xlsx
    from approval.oversight.setup_figures import setup_ledger_rows
    from storage.models import User

    first = await accept(gql)
    await accept(gql, companyName="=HYPERLINK(1)餐饮有限公司")
    viewer = await viewer_of(await User.get(username="supervisor"))
    setups = await setup_ledger_rows(viewer=viewer, now=clock())
    assert setups[0].code == first["code"]
    book = load_workbook(
        io.BytesIO(ledger_xlsx(await ledger_rows(viewer=viewer, now=clock()), setups=setups))
    )
    assert book.sheetnames == ["台账", "企业设立台账"]
    sheet = book["企业设立台账"]
    table = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert table[0][:4] == ["受理编号", "企业名称", "经营类型", "流程"]
    assert table[1][0] == first["code"] and table[1][2] == "饭店" and table[1][10] == 6
    assert table[2][1] == "'=HYPERLINK(1)餐饮有限公司"  # text, never a formula
    assert len(table) == 3
    assert await setup_ledger_rows(viewer=viewer, now=clock(), month="2026-04") == []


async def test_a_setups_commitment_is_chased_and_the_applicant_reminded(gql, tokens, clock):
    from approval.oversight.supervision import SupervisionSettings, supervise
    from tests.supervision_support import at

    setup = await accept(
        gql,
        materials=WITHOUT_PROMISED,
        commitments=[
            {"materialType": m, "due": "2026-03-05", "signedBy": "赵敏"} for m in PROMISED
        ],
    )
    fired = await supervise(now=at("2026-03-04"), settings=SupervisionSettings())
    reminders = [e for e in fired if e.kind == "commitment"]
    assert len(reminders) == 2 and all("承诺人 赵敏" in e.message for e in reminders)
    await collect(now=at("2026-03-04"))
    to_applicant = await Notification.filter(recipient="13800000001", moment="warning")
    assert len(to_applicant) == 2 and all("容缺承诺提醒" in n.text for n in to_applicant)
    deliver = """mutation($code: String!, $type: String!) {
      deliverSetupMaterial(code: $code, materialType: $type) {
        setup { materials { code status } } errors { code field } } }"""
    body = await gql(deliver, {"code": setup["code"], "type": "food_staff_health"}, as_="clerk")
    statuses = {
        m["code"]: m["status"] for m in body["data"]["deliverSetupMaterial"]["setup"]["materials"]
    }
    assert statuses["food_staff_health"] == "SUBMITTED"
    again = await gql(deliver, {"code": setup["code"], "type": "food_staff_health"}, as_="clerk")
    assert again["data"]["deliverSetupMaterial"]["errors"][0]["code"] == "INVALID_STATE"
    fired = await supervise(now=at("2026-03-06"), settings=SupervisionSettings())
    red = [e.message for e in fired if e.kind == "commitment"]
    assert len(red) == 1 and "装修材料防火性能证明" in red[0]  # the delivered one is done
    assert await AuditEvent.filter(action="setup_material.deliver").count() == 1


async def test_a_stopped_clock_moves_the_deadline_and_silences_the_supervisor(gql, tokens):
    from approval.company.review import resume_setup_clock
    from approval.core.auth import viewer_of
    from approval.oversight.setup_figures import setup_figures
    from approval.oversight.supervision import SupervisionSettings, supervise
    from storage.models import User
    from tests.supervision_support import at

    setup = await accept(gql)
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    stop = """mutation($id: Int!, $note: String!) {
      stopSetupClock(taskId: $id, reason: EXPERT_REVIEW, note: $note) {
        setup { tasks { taskId deadline pausedAt pauseReason } } errors { code field } } }"""
    resume = """mutation($id: Int!) { resumeSetupClock(taskId: $id) {
      setup { tasks { taskId deadline pausedAt } } errors { code field } } }"""
    empty = await gql(stop, {"id": ids["business_license"], "note": " "}, token=tokens["gongshang"])
    assert empty["data"]["stopSetupClock"]["errors"][0]["field"] == "note"
    body = await gql(
        stop, {"id": ids["business_license"], "note": "名称专家论证"}, token=tokens["gongshang"]
    )
    [task] = [t for t in body["data"]["stopSetupClock"]["setup"]["tasks"]
              if t["taskId"] == ids["business_license"]]  # fmt: skip
    assert task["pausedAt"] and task["pauseReason"] == "expert_review"
    again = await gql(stop, {"id": ids["business_license"], "note": "x"}, token=tokens["gongshang"])
    assert again["data"]["stopSetupClock"]["errors"][0]["code"] == "INVALID_STATE"
    fired = await supervise(now=at("2026-03-09"), settings=SupervisionSettings())
    keys = {e.key for e in fired}
    assert f"setup_task:{ids['business_license']}:red" not in keys  # stopped: no warning
    chief = await viewer_of(await User.get(username="supervisor"))
    figures = await setup_figures(viewer=chief, now=at("2026-03-09"))
    [gongshang] = [f for f in figures.departments if f.department_code == "gongshang"]
    assert gongshang.open_now == 1 and gongshang.overdue_now == 0  # its clock stands still
    assert f"setup_task:{ids['organization_code']}:default_approved" in keys
    # Stopped Monday 2 March, resumed Monday 9 March: 5 working days, 6 March -> 13 March.
    reviewer = await viewer_of(await User.get(username="r-gongshang"))
    resumed = await resume_setup_clock(
        viewer=reviewer, task_id=ids["business_license"], now=at("2026-03-09")
    )
    assert resumed.deadline == date(2026, 3, 13) and resumed.paused_at is None
    event = await AuditEvent.get(action="setup_task.resume")
    assert event.after["pausedWorkingDays"] == 5
    running = await gql(resume, {"id": ids["business_license"]}, token=tokens["gongshang"])
    assert running["data"]["resumeSetupClock"]["errors"][0]["code"] == "INVALID_STATE"


SUPPLEMENT = """mutation($id: Int!, $reason: String!, $type: String) {
  requestSetupSupplement(taskId: $id, reason: $reason, materialType: $type) {
    setup { materials { code status }
      tasks { taskId status deadline pausedAt pauseReason
        supplements { reason materialType materialName requestedAt resolvedAt } } }
    errors { code field message } } }"""
DELIVER = """mutation($code: String!, $type: String!) {
  deliverSetupMaterial(code: $code, materialType: $type) {
    setup { materials { code status }
      tasks { taskId status deadline pausedAt pauseReason supplements { resolvedAt } } }
    errors { code field message } } }"""


async def token_in_another_region(
    clock: Clock, role: Role, *, department_code: str | None = None
) -> str:
    """A token of someone in 陵城区 (371403): the setups here are accepted in 德城区."""
    user = await create_user(
        username=f"{role.value}-{department_code}-371403",
        password="test-password",
        display_name="陵城区",
        role=role,
        department_code=department_code,
        region_code="371403",
    )
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=1))
    return token


def _task_of(setup: dict, task_id: int) -> dict:
    [task] = [t for t in setup["tasks"] if t["taskId"] == task_id]
    return task


async def test_a_supplement_stops_the_permit_until_the_window_receives_the_material(
    gql, tokens, clock
):
    from tests.supervision_support import at

    setup = await accept(gql)
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    food, deadline = ids["food_business_license"], _task_of(setup, ids["food_business_license"])
    ask = functools.partial(gql, SUPPLEMENT, token=tokens["shiyao"])
    # Hostile and broken requests change nothing.
    other = await gql(
        SUPPLEMENT,
        {"id": food, "reason": "平面图不清", "type": "premises_layout"},
        token=tokens["gongshang"],
    )
    assert other["data"]["requestSetupSupplement"]["errors"][0]["code"] == "WRONG_DEPARTMENT"
    token = await token_in_another_region(clock, Role.REVIEWER, department_code="shiyao")
    far = await gql(SUPPLEMENT, {"id": food, "reason": "平面图不清"}, token=token)
    assert far["data"]["requestSetupSupplement"]["errors"][0]["code"] == "NOT_FOUND"
    clerk = await gql(SUPPLEMENT, {"id": food, "reason": "x"}, as_="clerk")
    assert clerk["data"]["requestSetupSupplement"]["errors"][0]["code"] == "FORBIDDEN"
    cases = {
        ("  ", "premises_layout"): ("INVALID_INPUT", "reason"),
        ("平面图不清", "no_such_material"): ("INVALID_INPUT", "materialType"),
        ("平面图不清", "legal_rep_id"): ("INVALID_INPUT", "materialType"),  # not this setup's
    }
    for (reason, kind), (code, field) in cases.items():
        body = await ask({"id": food, "reason": reason, "type": kind})
        error = body["data"]["requestSetupSupplement"]["errors"][0]
        assert (error["code"], error["field"]) == (code, field), error
    assert await AuditEvent.filter(action="setup_task.request_supplement").count() == 0
    # 补正: the permit waits, its clock stopped; the material is returned.
    body = await ask({"id": food, "reason": "经营场所平面图比例不清", "type": "premises_layout"})
    payload = body["data"]["requestSetupSupplement"]
    assert payload["errors"] == []
    task = _task_of(payload["setup"], food)
    assert task["status"] == "supplement_requested" and task["pauseReason"] == "supplement"
    assert task["pausedAt"] is not None
    [request] = task["supplements"]
    assert request["materialType"] == "premises_layout" and request["resolvedAt"] is None
    assert request["reason"] == "经营场所平面图比例不清" and request["materialName"]
    statuses = {m["code"]: m["status"] for m in payload["setup"]["materials"]}
    assert statuses["premises_layout"] == "REJECTED"
    again = await ask({"id": food, "reason": "再补", "type": "premises_layout"})
    assert again["data"]["requestSetupSupplement"]["errors"][0]["code"] == "INVALID_STATE"
    # The fire department asks for the same material: one delivery answers both.
    fire = ids["fire_safety_check"]
    await gql(
        SUPPLEMENT,
        {"id": fire, "reason": "消防通道未标注", "type": "premises_layout"},
        token=tokens["xfjy"],
    )
    # Stopped Monday 2 March, delivered Thursday 5 March: 3 working days stood still.
    clock.now = at("2026-03-05")
    body = await gql(DELIVER, {"code": setup["code"], "type": "premises_layout"}, as_="clerk")
    payload = body["data"]["deliverSetupMaterial"]
    assert payload["errors"] == []
    for task_id in (food, fire):
        task = _task_of(payload["setup"], task_id)
        assert task["status"] == "pending" and task["pausedAt"] is None
        assert task["pauseReason"] == "" and task["supplements"][0]["resolvedAt"] is not None
        before = date.fromisoformat(_task_of(setup, task_id)["deadline"])
        assert date.fromisoformat(task["deadline"]) == before + timedelta(days=3)
    assert deadline["deadline"] != _task_of(payload["setup"], food)["deadline"]
    delivered = await AuditEvent.get(action="setup_material.deliver")
    assert delivered.after["resumedTasks"] == sorted([food, fire])
    resumes = await AuditEvent.filter(action="setup_task.resume").order_by("entity_id")
    assert [(e.entity_id, e.before["reason"], e.after["pausedWorkingDays"]) for e in resumes] == [
        (food, "supplement", 3),
        (fire, "supplement", 3),
    ]
    twice = await gql(DELIVER, {"code": setup["code"], "type": "premises_layout"}, as_="clerk")
    assert twice["data"]["deliverSetupMaterial"]["errors"][0]["code"] == "INVALID_STATE"


async def test_a_supplement_without_a_material_ends_when_the_department_resumes(gql, tokens):
    setup = await accept(gql)
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    licence = ids["business_license"]
    body = await gql(
        SUPPLEMENT, {"id": licence, "reason": "股东签字不全, 请补签"}, token=tokens["gongshang"]
    )
    task = _task_of(body["data"]["requestSetupSupplement"]["setup"], licence)
    assert task["status"] == "supplement_requested"
    assert task["supplements"][0]["materialType"] is None
    resume = """mutation($id: Int!) { resumeSetupClock(taskId: $id) {
      setup { tasks { taskId status pausedAt supplements { resolvedAt } } }
      errors { code } } }"""
    body = await gql(resume, {"id": licence}, token=tokens["gongshang"])
    task = _task_of(body["data"]["resumeSetupClock"]["setup"], licence)
    assert task["status"] == "pending" and task["pausedAt"] is None
    assert task["supplements"][0]["resolvedAt"] is not None
    # Decided, a permit takes no supplement request any more.
    await gql(
        DECIDE, {"input": {"taskId": licence, "decision": "APPROVED"}}, token=tokens["gongshang"]
    )
    late = await gql(SUPPLEMENT, {"id": licence, "reason": "再补"}, token=tokens["gongshang"])
    assert late["data"]["requestSetupSupplement"]["errors"][0]["code"] == "INVALID_STATE"


RATE = """mutation($code: String!, $score: Int!, $comment: String!) {
  rateService(code: $code, score: $score, comment: $comment) {
    rating { score followUpDue } errors { code field } } }"""
SETUP_RATINGS = """query($open: Boolean) { setupRatings(followUpOpen: $open) {
  ratingId setupCode companyName score comment followUpDue followUpOpen followUpNote } }"""
CLOSE_FOLLOW_UP = """mutation($id: Int!, $note: String!) {
  closeSetupFollowUp(ratingId: $id, note: $note) {
    rating { ratingId followUpOpen followUpNote } errors { code field } } }"""


async def _decide_all(
    gql, tokens, setup: dict, decisions: dict[str, tuple[str, str]] | None = None
) -> dict:
    """Every department decides (after its site check): approved, or as ``decisions`` says
    by permit code (decision, opinion)."""
    body: dict = {}
    for task in setup["tasks"]:
        if task["siteCheckDue"]:
            await pass_site_check(gql, tokens, task, code=setup["code"])
        decision, opinion = (decisions or {}).get(task["permitCode"], ("APPROVED", ""))
        body = await gql(
            DECIDE,
            {"input": {"taskId": task["taskId"], "decision": decision, "opinion": opinion}},
            token=tokens[task["departmentCode"]],
        )
        assert body["data"]["decideSetupTask"]["errors"] == [], body
    return body["data"]["decideSetupTask"]["setup"]


async def test_a_setup_hears_at_midway_and_is_rated_with_the_code_of_its_sms(gql, tokens, clock):
    from tests.supervision_support import at

    setup = await accept(gql)
    assert await collect(now=clock()) == 1  # 办件确认
    # Accepted Monday 2 March, 10 working days: half of them have passed on Monday 9 March.
    assert await collect(now=at("2026-03-06")) == 0
    assert await collect(now=at("2026-03-09")) == 1
    assert await collect(now=at("2026-03-10")) == 0  # once
    midway = await Notification.get(moment="midway", recipient="13800000001")
    assert "承诺时限已过半" in midway.text and setup["code"] in midway.text
    assert midway.key == f"midway:setup:{(await CompanySetup.get(code=setup['code'])).id}"
    await _decide_all(gql, tokens, setup)
    assert await collect(now=at("2026-03-10")) == 0  # ready: the SMS waits for 统一发证
    await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert await collect(now=at("2026-03-10")) == 2
    rate = await Notification.get(moment="rate", recipient="13800000001")
    code = rate.text.split("评价码 ")[1].rstrip("。")
    # The code rates the setup once; a bad score opens a follow-up the supervisor closes.
    bad = await gql(RATE, {"code": code, "score": 2, "comment": "跑了两趟"})
    assert bad["data"]["rateService"]["rating"]["followUpDue"] == "2026-03-23"  # 15 working days
    again = await gql(RATE, {"code": code, "score": 5, "comment": ""})
    assert again["data"]["rateService"]["errors"][0]["code"] == "ALREADY_RATED"
    event = await AuditEvent.get(action="rating.submit")
    assert event.after["setup"] == setup["code"] and "stage" not in event.after
    [rating] = (await gql(SETUP_RATINGS, {"open": True}, as_="supervisor"))["data"]["setupRatings"]
    assert (rating["setupCode"], rating["score"], rating["followUpOpen"]) == (
        setup["code"],
        2,
        True,
    )
    stages = await gql("{ ratings { edges { node { id } } } }", as_="supervisor")
    assert stages["data"]["ratings"]["edges"] == []  # construction's list stays construction's
    refused = await gql(SETUP_RATINGS, {"open": None}, as_="clerk")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    rid = rating["ratingId"]
    empty = await gql(CLOSE_FOLLOW_UP, {"id": rid, "note": " "}, as_="supervisor")
    assert empty["data"]["closeSetupFollowUp"]["errors"][0]["field"] == "note"
    clerk = await gql(CLOSE_FOLLOW_UP, {"id": rid, "note": "已回访"}, as_="clerk")
    assert clerk["data"]["closeSetupFollowUp"]["errors"][0]["code"] == "FORBIDDEN"
    token = await token_in_another_region(clock, Role.SUPERVISOR)
    far = await gql(CLOSE_FOLLOW_UP, {"id": rid, "note": "已回访"}, token=token)
    assert far["data"]["closeSetupFollowUp"]["errors"][0]["code"] == "NOT_FOUND"
    assert (await gql(SETUP_RATINGS, {"open": True}, token=token))["data"]["setupRatings"] == []
    closed = await gql(
        CLOSE_FOLLOW_UP, {"id": rid, "note": "已回访, 窗口增设一次告知"}, as_="supervisor"
    )
    assert closed["data"]["closeSetupFollowUp"]["rating"] == {
        "ratingId": rid,
        "followUpOpen": False,
        "followUpNote": "已回访, 窗口增设一次告知",
    }
    twice = await gql(CLOSE_FOLLOW_UP, {"id": rid, "note": "再次"}, as_="supervisor")
    assert twice["data"]["closeSetupFollowUp"]["errors"][0]["code"] == "INVALID_STATE"


async def test_a_refused_setup_is_told_to_pick_up_the_decision_and_rates_it(gql, tokens, clock):
    setup = await accept(gql)
    closed = await _decide_all(
        gql, tokens, setup, {"organization_code": ("REJECTED", "不符合条件")}
    )
    assert closed["status"] == "REFUSED"
    assert await collect(now=clock()) == 3  # 办件确认, then 领件通知 and 办结评议
    ready = await Notification.get(moment="ready", recipient="13800000001")
    outcome = label(Decision.REJECTED)
    assert f"结果: {outcome}" in ready.text and "审批意见" in ready.text
    assert "统一领取" not in ready.text
    rate = await Notification.get(moment="rate", recipient="13800000001")
    code = rate.text.split("评价码 ")[1].rstrip("。")
    body = await gql(RATE, {"code": code, "score": 4, "comment": ""})
    assert body["data"]["rateService"]["rating"] == {"score": 4, "followUpDue": None}


async def test_concurrent_decisions_close_the_setup_once_and_a_racing_supplement_loses(
    gql, tokens, clock
):
    import asyncio

    from approval.company.review import decide_setup_task, request_setup_supplement
    from approval.core.auth import viewer_of
    from approval.core.errors import DomainError
    from storage.models import User

    setup = await accept(gql)
    tasks = setup["tasks"]
    for task in tasks:
        if task["siteCheckDue"]:
            await pass_site_check(gql, tokens, task, code=setup["code"])
    viewers = {
        t["taskId"]: await viewer_of(await User.get(username=f"r-{t['departmentCode']}"))
        for t in tasks
    }
    first = tasks[0]["taskId"]

    async def decide(task_id: int) -> object:
        refused = task_id == tasks[-1]["taskId"]
        return await decide_setup_task(
            viewer=viewers[task_id],
            task_id=task_id,
            decision=Decision.REJECTED if refused else Decision.APPROVED,
            opinion="不符合条件" if refused else "",
            now=clock(),
        )

    async def supplement() -> object:
        return await request_setup_supplement(
            viewer=viewers[first],
            task_id=first,
            reason="补签",
            material_type_code=None,
            now=clock(),
        )

    results = await asyncio.gather(
        *(decide(t["taskId"]) for t in tasks), supplement(), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(f, DomainError) for f in failures), failures
    row = await CompanySetup.get(code=setup["code"])
    assert await SetupTask.filter(setup_id=row.id, status="decided").count() == len(tasks)
    assert await AuditEvent.filter(action="setup_task.decide").count() == len(tasks)
    assert await AuditEvent.filter(action="setup.complete").count() == 1
    assert row.status is SetupStatus.REFUSED and row.outcome is Decision.REJECTED
    # The supplement either came first (a decision may still end a permit waiting for one)
    # or was refused because the permit was decided: never lost, never both.
    asked = await AuditEvent.filter(action="setup_task.request_supplement").count()
    assert asked + len(failures) == 1


REACCEPT = """mutation($code: String!, $materials: [String!]!) {
  reacceptCompanySetup(code: $code, materials: $materials) {
    setup { status statusLabel outcome coreDeadline materials { code status } }
    errors { code field message } } }"""
SUPERMARKET = [*CORE_MATERIALS, "food_safety_rules", "premises_layout", "food_staff_health"]


async def test_a_supplement_outcome_waits_for_the_applicant_and_a_new_round_reviews_again(
    gql, tokens, clock
):
    from approval.oversight.supervision import SupervisionSettings, supervise
    from tests.supervision_support import at

    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    ids = {t["permitCode"]: t["taskId"] for t in setup["tasks"]}
    core = ids["organization_code"]
    await supervise(now=at("2026-03-06"), settings=SupervisionSettings())  # core due today
    assert await SupervisionEvent.exists(key=f"setup_task:{core}:yellow")
    asked = await gql(
        SUPPLEMENT,
        {"id": core, "reason": "章程缺少股东签章", "type": "articles_of_association"},
        token=tokens["zhijian"],
    )
    assert asked["data"]["requestSetupSupplement"]["errors"] == []
    closed = await _decide_all(
        gql, tokens, setup, {"organization_code": ("SUPPLEMENT_REQUIRED", "章程需补正后重新提交")}
    )
    assert closed == {
        "status": "SUPPLEMENT_REQUIRED",
        "statusLabel": "待补正",
        "outcome": "SUPPLEMENT_REQUIRED",
    }
    # The applicant is told to bring the material; not completed, so nothing to rate yet.
    await collect(now=clock())
    applicant = Notification.filter(recipient="13800000001")
    assert await applicant.count() == 2  # 办件确认 and the 补正 notice
    [notice] = await Notification.filter(recipient="13800000001", moment="ready")
    assert "需补正" in notice.text and setup["code"] in notice.text
    assert not await Rating.exists()
    approved = {
        t.id: (t.decision, t.decided_at, t.deadline)
        for t in await SetupTask.filter(setup__code=setup["code"]).exclude(id=core)
    }
    assert {d for d, _, _ in approved.values()} == {Decision.APPROVED}
    issued = await gql(ISSUE, {"code": setup["code"]}, as_="clerk")
    assert issued["data"]["issueCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"

    # Hostile and broken re-acceptances change nothing.
    again = functools.partial(gql, REACCEPT)
    code = setup["code"]
    reviewer = await again({"code": code, "materials": ["articles_of_association"]},
                           token=tokens["zhijian"])  # fmt: skip
    assert reviewer["data"]["reacceptCompanySetup"]["errors"][0]["code"] == "FORBIDDEN"
    far_clerk = await token_in_another_region(clock, Role.WINDOW_CLERK)
    far = await again({"code": code, "materials": ["articles_of_association"]}, token=far_clerk)
    assert far["data"]["reacceptCompanySetup"]["errors"][0]["code"] == "NOT_FOUND"
    cases = {
        (): ("INVALID_INPUT", "materials"),
        ("  ",): ("INVALID_INPUT", "materials"),
        ("no_such_material",): ("INVALID_INPUT", "materials"),
        ("premises_layout",): ("MISSING_CORE_MATERIALS", "materials"),  # not the one returned
    }
    for materials, (error, field) in cases.items():
        body = await again({"code": code, "materials": list(materials)}, as_="clerk")
        [found] = body["data"]["reacceptCompanySetup"]["errors"]
        assert (found["code"], found["field"]) == (error, field), (materials, found)
    waiting = await CompanySetup.get(code=code)
    assert waiting.status is SetupStatus.SUPPLEMENT_REQUIRED
    assert not await AuditEvent.exists(action="setup.reaccept")
    assert await collect(now=clock()) == 0  # a refused re-acceptance tells nobody anything
    assert await applicant.count() == 2

    # A week later the applicant brings the corrected articles: a new round for 质监局 only.
    clock.now += timedelta(days=7)  # Monday 9 March 2026
    body = await again({"code": code, "materials": ["articles_of_association"]}, as_="clerk")
    payload = body["data"]["reacceptCompanySetup"]
    assert payload["errors"] == []
    assert payload["setup"]["status"] == "IN_REVIEW" and payload["setup"]["outcome"] is None
    assert payload["setup"]["coreDeadline"] == "2026-03-13"  # 4 working days from 9 March
    statuses = {m["code"]: m["status"] for m in payload["setup"]["materials"]}
    assert statuses["articles_of_association"] == "SUBMITTED"
    reopened = await SetupTask.get(id=core)
    assert reopened.decision is None and reopened.opinion == "" and reopened.paused_at is None
    assert reopened.deadline == date(2026, 3, 13) and reopened.round == 2
    kept = {
        t.id: (t.decision, t.decided_at, t.deadline)
        for t in await SetupTask.filter(setup__code=code).exclude(id=core)
    }
    assert kept == approved  # the other departments keep their approvals
    event = await AuditEvent.get(action="setup.reaccept")
    assert event.before == {"status": "supplement_required", "outcome": "supplement_required"}
    assert event.after["reopenedTasks"] == [core]
    assert event.after["materials"] == ["articles_of_association"]
    assert (await AuditEvent.get(action="setup_task.reopen")).entity_id == core
    # 办件确认 again, once, with the new round's deadline (the reopened permit's); the first
    # round's 中途提醒 (due today, 5 of its 10 working days) is not sent late: the new round
    # has its own (tests/test_setup_midway.py).
    assert await collect(now=clock()) == 1
    assert await collect(now=clock()) == 0
    assert await applicant.filter(moment="midway").count() == 0
    received = await Notification.get(key=f"received:{event.id}")
    assert (received.moment, received.recipient) == ("received", "13800000001")
    assert received.text == (
        f"【德州市政务服务中心】您的企业设立申请“德州市老街餐饮有限公司”(受理编号 {code}) "
        "补正材料已收到, 已重新受理(第2轮审查), 需补正的许可承诺 2026年3月13日 前办结。"
    )
    not_waiting = await again({"code": code, "materials": ["articles_of_association"]}, as_="clerk")
    assert not_waiting["data"]["reacceptCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"
    assert await collect(now=clock()) == 0

    # The new round is watched afresh: its warning fires though the first round's did.
    await supervise(now=at("2026-03-13"), settings=SupervisionSettings())
    assert await SupervisionEvent.exists(key=f"setup_task:r2:{core}:yellow")

    # The new round's fan-in closes the setup as before.
    body = await gql(
        DECIDE, {"input": {"taskId": core, "decision": "APPROVED"}}, token=tokens["zhijian"]
    )
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "READY"
    issued = await gql(ISSUE, {"code": code}, as_="clerk")
    assert issued["data"]["issueCompanySetup"]["errors"] == []
    await collect(now=clock())
    assert await applicant.count() == 5  # 领件通知 and 办结评议 with the certificates
    assert await Rating.filter(setup__code=code).count() == 1


async def test_only_a_setup_waiting_for_supplement_is_accepted_again(gql, tokens):
    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    body = await gql(
        REACCEPT, {"code": setup["code"], "materials": ["premises_layout"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"
    closed = await _decide_all(gql, tokens, setup, {"organization_code": ("REJECTED", "名称冲突")})
    assert closed["status"] == "REFUSED"
    body = await gql(
        REACCEPT, {"code": setup["code"], "materials": ["premises_layout"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"][0]["code"] == "INVALID_STATE"
    assert (await CompanySetup.get(code=setup["code"])).status is SetupStatus.REFUSED


async def test_racing_reacceptances_accept_once_and_confirm_once(gql, tokens, clock):
    """Two clerks re-accept one setup at the same moment while notifications are collected:
    one new round, one 办件确认 for it, whatever runs first or again."""
    import asyncio

    from approval.company.intake import reaccept_setup
    from approval.core.auth import viewer_of
    from approval.core.errors import DomainError
    from storage.models import User

    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    closed = await _decide_all(
        gql, tokens, setup, {"organization_code": ("SUPPLEMENT_REQUIRED", "章程需补正")}
    )
    assert closed["status"] == "SUPPLEMENT_REQUIRED"
    assert await collect(now=clock()) == 2  # 办件确认 and the 补正 notice
    clerk = await viewer_of(await User.get(username="clerk"))
    clock.now += timedelta(days=1)

    async def reaccept() -> object:
        return await reaccept_setup(
            viewer=clerk, code=setup["code"], materials=["articles_of_association"], now=clock()
        )

    results = await asyncio.gather(
        reaccept(), reaccept(), collect(now=clock()), reaccept(), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 2 and all(isinstance(f, DomainError) for f in failures), failures
    assert {f.code.value for f in failures if isinstance(f, DomainError)} == {"INVALID_STATE"}
    await asyncio.gather(collect(now=clock()), collect(now=clock()))
    assert await collect(now=clock()) == 0
    [event] = await AuditEvent.filter(action="setup.reaccept")
    confirmations = await Notification.filter(recipient="13800000001", moment="received")
    assert sorted(n.key for n in confirmations) == sorted(
        [f"received:{(await AuditEvent.get(action='setup.accept')).id}", f"received:{event.id}"]
    )
    assert "第2轮审查" in next(n.text for n in confirmations if n.key == f"received:{event.id}")
    [kept] = await SetupTaskRound.filter(task__setup__code=setup["code"])  # one round kept
    assert (kept.round, kept.decision, kept.opinion) == (
        1,
        Decision.SUPPLEMENT_REQUIRED,
        "章程需补正",
    )


HISTORY = """query($code: String!) { companySetup(code: $code) { tasks { taskId round
  history { round decision decisionLabel opinion deadline decidedAt decidedBy defaultApproved
    reopenedAt returnedMaterials { code name reason } } } } }"""


async def _rounds(gql, code: str) -> dict[int, list[dict]]:
    body = await gql(HISTORY, {"code": code}, as_="clerk")
    return {t["taskId"]: t["history"] for t in body["data"]["companySetup"]["tasks"]}


async def _kept_rounds() -> list[tuple]:
    return [
        (r.task_id, r.round, r.decision, r.opinion, r.deadline, r.decided_by_id,
         r.default_approved, r.returned_materials, r.reopened_by_id)
        for r in await SetupTaskRound.all().order_by("task_id", "round")
    ]  # fmt: skip


async def test_each_earlier_round_is_kept_with_its_decision_and_returned_materials(
    gql, tokens, clock
):
    from tests.supervision_support import at

    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    code = setup["code"]
    core = next(t["taskId"] for t in setup["tasks"] if t["permitCode"] == "organization_code")
    first_deadline = next(t["deadline"] for t in setup["tasks"] if t["taskId"] == core)
    asked = await gql(
        SUPPLEMENT,
        {"id": core, "reason": "章程缺少股东签章", "type": "articles_of_association"},
        token=tokens["zhijian"],
    )
    assert asked["data"]["requestSetupSupplement"]["errors"] == []
    await _decide_all(
        gql, tokens, setup, {"organization_code": ("SUPPLEMENT_REQUIRED", "章程需补正")}
    )
    decided_at = (await SetupTask.get(id=core)).decided_at
    assert await _rounds(gql, code) == {t["taskId"]: [] for t in setup["tasks"]}

    clock.now += timedelta(days=7)  # Monday 9 March
    body = await gql(
        REACCEPT, {"code": code, "materials": ["articles_of_association"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"] == []
    # Round 2 ends 需补正 again, this time returning the premises certificate.
    clock.now += timedelta(days=1)
    asked = await gql(
        SUPPLEMENT,
        {"id": core, "reason": "住所证明已过期", "type": "premises_certificate"},
        token=tokens["zhijian"],
    )
    assert asked["data"]["requestSetupSupplement"]["errors"] == []
    body = await gql(
        DECIDE,
        {"input": {"taskId": core, "decision": "SUPPLEMENT_REQUIRED", "opinion": "住所证明需更新"}},
        token=tokens["zhijian"],
    )
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "SUPPLEMENT_REQUIRED"
    clock.now += timedelta(days=2)  # Thursday 12 March
    body = await gql(REACCEPT, {"code": code, "materials": ["premises_certificate"]}, as_="clerk")
    assert body["data"]["reacceptCompanySetup"]["errors"] == []

    rounds = await _rounds(gql, code)
    assert all(history == [] for task, history in rounds.items() if task != core)
    first, second = rounds[core]
    reopened = [datetime.fromisoformat(r.pop("reopenedAt")) for r in (first, second)]
    assert reopened == [at("2026-03-09", 9), at("2026-03-12", 9)]
    assert first == {
        "round": 1,
        "decision": "SUPPLEMENT_REQUIRED",
        "decisionLabel": label(Decision.SUPPLEMENT_REQUIRED),
        "opinion": "章程需补正",
        "deadline": first_deadline,
        "decidedAt": decided_at.isoformat() if decided_at else None,
        "decidedBy": "zhijian",
        "defaultApproved": False,
        "returnedMaterials": [
            {"code": "articles_of_association", "name": "公司章程", "reason": "章程缺少股东签章"}
        ],
    }
    assert (second["round"], second["opinion"], second["deadline"]) == (
        2,
        "住所证明需更新",
        "2026-03-13",
    )
    assert second["returnedMaterials"] == [
        {
            "code": "premises_certificate",
            "name": "住所（经营场所）使用证明",
            "reason": "住所证明已过期",
        }
    ]  # only this round's request
    task = await SetupTask.get(id=core)
    assert (task.round, task.decision, task.opinion) == (3, None, "")
    assert await SetupTaskRound.filter(task_id=core).count() == 2
    # The reviewer of the department sees the same history in its queue.
    mine = await gql(
        "{ setupTasks(openOnly: true) { taskId round history { round opinion } } }",
        token=tokens["zhijian"],
    )
    [queued] = [t for t in mine["data"]["setupTasks"] if t["taskId"] == core]
    assert queued == {
        "taskId": core,
        "round": 3,
        "history": [
            {"round": 1, "opinion": "章程需补正"},
            {"round": 2, "opinion": "住所证明需更新"},
        ],
    }


async def test_the_migration_backfills_earlier_rounds_from_the_audit_trail(gql, tokens, clock):
    """Rounds reopened before setup_task_round existed (only the audit trail has them) are
    written by migration 0015 as the engine writes them today; a second run adds nothing."""
    import importlib
    from types import SimpleNamespace

    from tortoise import Tortoise

    migration = importlib.import_module("storage.migrations.0015_setup_task_rounds")
    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    core = next(t["taskId"] for t in setup["tasks"] if t["permitCode"] == "organization_code")
    await gql(
        SUPPLEMENT,
        {"id": core, "reason": "章程缺少股东签章", "type": "articles_of_association"},
        token=tokens["zhijian"],
    )
    await _decide_all(
        gql, tokens, setup, {"organization_code": ("SUPPLEMENT_REQUIRED", "章程需补正")}
    )
    clock.now += timedelta(days=7)
    body = await gql(
        REACCEPT, {"code": setup["code"], "materials": ["articles_of_association"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"] == []
    clock.now += timedelta(days=1)
    body = await gql(
        DECIDE,
        {"input": {"taskId": core, "decision": "SUPPLEMENT_REQUIRED", "opinion": "仍需补正"}},
        token=tokens["zhijian"],
    )
    clock.now += timedelta(days=1)
    body = await gql(
        REACCEPT, {"code": setup["code"], "materials": ["articles_of_association"]}, as_="clerk"
    )
    assert body["data"]["reacceptCompanySetup"]["errors"] == []
    written = await _kept_rounds()
    assert [(r[0], r[1], r[3]) for r in written] == [(core, 1, "章程需补正"), (core, 2, "仍需补正")]

    await SetupTaskRound.all().delete()  # as before the table existed
    editor = SimpleNamespace(client=Tortoise.get_connection("default"))
    assert await migration.backfill_rounds(None, editor) == 2
    assert await _kept_rounds() == written
    # The times come from the audit trail (when the decision and the reopen were recorded).
    assert not await SetupTaskRound.filter(decided_at__isnull=True).exists()
    assert await migration.backfill_rounds(None, editor) == 0
    assert await SetupTaskRound.all().count() == 2
