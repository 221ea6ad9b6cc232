"""联合告知: the one-time joint notice, as a service, in GraphQL and as a printable page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette

from approval.core.errors import DomainError, ErrorCode
from approval.oversight.notice import joint_notice
from server.pages import page_routes
from storage.enums import ProjectType
from storage.models import AuditEvent, ChecklistTemplate, ItemMaterial, ServiceItem, User
from tests.conftest import Clock, GraphQLClient
from tests.helpers import create_project, db_id

PARK = "371403-p01"  # 陵城经济开发区: all four assessments, land ≤ 200000 m², investment ≤ 300000
ASSESSED = {"energy-review", "eia-approval", "seismic-safety-evaluation", "water-permit"}

NOTICE = """
query($id: ID!) {
  jointNotice(projectId: $id) {
    projectCode regionName projectTypeLabel notes totalTimeLimitDays
    stages { code timeLimitDays longestPromisedDays items { code promisedDays }
             exempted { code reason } }
    materials { code core departmentNames needs { itemCode departmentCode core } }
    designRequirements { departmentCode checklistName requirements }
  }
}"""

NOTICE_FOR = """
query($input: JointNoticeInput!) {
  jointNoticeFor(input: $input) {
    projectCode regionName notes
    stages { code items { code } exempted { code } }
    materials { code }
  }
}"""


async def _notice(region: str, *, land: str = "12000", investment: str = "28000"):
    return await joint_notice(
        region_code=region,
        project_type=ProjectType.APPROVAL,
        land_area_m2=Decimal(land),
        investment_10k_yuan=Decimal(investment),
    )


async def test_every_material_is_listed_once_with_every_item_that_needs_it(catalog: None) -> None:
    notice = await _notice("371402")
    codes = [m.code for m in notice.materials]
    assert len(codes) == len(set(codes))
    applicable = [i for i in await ServiceItem.filter(active=True) if "APPROVAL" in i.project_types]
    links = await ItemMaterial.filter(item_id__in=[i.id for i in applicable]).select_related(
        "material_type", "item"
    )
    assert set(codes) == {link.material_type.code for link in links}
    form = next(m for m in notice.materials if m.code == "project_application_form")
    expected = {link.item.code for link in links if link.material_type.code == form.code}
    assert {n.item_code for n in form.needs} == expected
    assert len(form.department_names) > 3 and form.core
    # core when any item needs it as core, else not
    for material in notice.materials:
        assert material.core == any(n.core for n in material.needs)
    # every applicable item appears in exactly one stage; nothing is exempt outside a park
    listed = [i.code for s in notice.stages for i in s.items]
    assert sorted(listed) == sorted(i.code for i in applicable)
    assert not any(s.exempted for s in notice.stages) and notice.notes == ()
    for stage in notice.stages:
        assert stage.longest_promised_days == max(i.promised_days for i in stage.items)
    assert notice.total_time_limit_days == 20 + 20 + 10 + 15


async def test_design_requirements_come_from_the_involved_departments_checklists(
    catalog: None,
) -> None:
    notice = await _notice("371402")
    planning = next(
        d for d in notice.design_requirements if d.checklist_code == "planning-verification"
    )
    template = await ChecklistTemplate.get(code="planning-verification")
    assert planning.requirements == tuple(c["label"] for c in template.checks)
    assert "建筑高度" in planning.requirements
    involved = {i.department_code for s in notice.stages for i in s.items}
    assert {d.department_code for d in notice.design_requirements} <= involved


async def test_a_park_assessment_exempts_items_within_the_limits(catalog: None) -> None:
    notice = await _notice(PARK)
    approval_stage = notice.stages[0]
    exempted = {e.code: e for e in approval_stage.exempted}
    assert set(exempted) == ASSESSED
    assert not ASSESSED & {i.code for i in approval_stage.items}
    assert "陵城经济开发区" in exempted["energy-review"].reason
    assert "区域节能评价" in exempted["energy-review"].reason
    codes = {m.code for m in notice.materials}
    assert not {"energy_report", "eia_report", "water_resource_report"} & codes
    assert notice.notes == ()


@pytest.mark.parametrize(
    ("land", "investment", "why"),
    [("250000", "28000", "用地面积"), ("12000", "300000.01", "总投资")],
)
async def test_a_project_beyond_the_park_limits_gets_no_exemption(
    catalog: None, land: str, investment: str, why: str
) -> None:
    notice = await _notice(PARK, land=land, investment=investment)
    assert not any(s.exempted for s in notice.stages)
    assert {i.code for i in notice.stages[0].items} >= ASSESSED
    assert "energy_report" in {m.code for m in notice.materials}
    assert any(why in note and "超过" in note for note in notice.notes)


async def test_a_prospective_notice_refuses_bad_input(catalog: None) -> None:
    with pytest.raises(DomainError) as caught:
        await _notice("nowhere")
    assert caught.value.code is ErrorCode.INVALID_INPUT and caught.value.field == "regionCode"
    with pytest.raises(DomainError) as caught:
        await _notice("371402", land="0")
    assert caught.value.field == "landArea"


async def test_joint_notice_in_graphql(gql: GraphQLClient) -> None:
    project = await create_project(gql, region=PARK)
    body = await gql(NOTICE, {"id": project["id"]}, as_="clerk")
    assert "errors" not in body, body
    notice = body["data"]["jointNotice"]
    assert notice["projectCode"] == project["code"]
    assert notice["regionName"] == "陵城经济开发区"
    assert notice["projectTypeLabel"] == "审批"
    stage = notice["stages"][0]
    assert {e["code"] for e in stage["exempted"]} == ASSESSED
    codes = [m["code"] for m in notice["materials"]]
    assert len(codes) == len(set(codes))

    body = await gql(
        NOTICE_FOR,
        {
            "input": {
                "region": PARK,
                "projectType": "APPROVAL",
                "landArea": "12000",
                "investment": "400000",
            }
        },
        as_="agent",
    )
    assert "errors" not in body, body
    prospective = body["data"]["jointNoticeFor"]
    assert prospective["projectCode"] is None
    assert not any(s["exempted"] for s in prospective["stages"])
    assert prospective["notes"]

    body = await gql(NOTICE, {"id": project["id"]})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_joint_notice_of_an_invisible_project_is_not_found(gql: GraphQLClient) -> None:
    project = await create_project(gql)
    body = await gql(NOTICE, {"id": project["id"]}, as_="fgw")  # no task of fgw yet
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# --- the printable page -------------------------------------------------------------------------


@pytest.fixture
async def pages(gql: GraphQLClient, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=page_routes(clock=clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_printable_notice_page(gql: GraphQLClient, pages: httpx.AsyncClient) -> None:
    project = await create_project(gql, name="德州<script>alert(1)</script>门诊楼", region=PARK)
    token = gql.tokens["clerk"]
    response = await pages.get(
        f"/projects/{project['code']}/notice", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "<h1>建设项目联合告知书</h1>" in html
    assert project["code"] in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@media print" in html
    assert "区域评估免办事项" in html and "固定资产投资项目节能审查" in html
    assert html.count("<td>建设项目并联审批申请表</td>") == 1  # one set of materials

    by_ticket = await pages.get(await ticket_url(gql, f"/projects/{project['code']}/notice"))
    assert by_ticket.status_code == 200
    assert "<h1>建设项目联合告知书</h1>" in by_ticket.text
    # every view of a project's notice is audited
    clerk_id = (await User.get(username="clerk")).id
    views = await AuditEvent.filter(action="notice.view", project_id=db_id(project["id"]))
    assert [e.actor_id for e in views] == [clerk_id, clerk_id]


TICKET = """mutation($path: String!) {
  pageTicket(path: $path) { url expiresAt errors { code field } } }"""


async def ticket_url(gql: GraphQLClient, path: str, as_: str = "clerk") -> str:
    body = await gql(TICKET, {"path": path}, as_=as_)
    payload = body["data"]["pageTicket"]
    assert payload["errors"] == [], payload
    url: str = payload["url"]
    return url


async def test_no_bearer_token_is_read_from_a_url_and_tickets_open_one_page_for_a_minute(
    gql: GraphQLClient, pages: httpx.AsyncClient, clock: Clock
) -> None:
    project = await create_project(gql)
    notice = f"/projects/{project['code']}/notice"
    by_token = await pages.get(notice, params={"token": gql.tokens["clerk"]})
    assert by_token.status_code == 401 and "never read from a URL" in by_token.text
    url = await ticket_url(gql, notice)
    assert gql.tokens["clerk"] not in url and "ticket=" in url
    assert (await pages.get(url)).status_code == 200
    # for that page alone: not the ledger, not another project, not GraphQL
    ticket = url.split("ticket=")[1]
    assert (await pages.get("/ledger.xlsx", params={"ticket": ticket})).status_code == 401
    other = await create_project(gql, name="另一个项目")
    elsewhere = await pages.get(f"/projects/{other['code']}/notice", params={"ticket": ticket})
    assert elsewhere.status_code == 401
    assert (await gql("{ viewer { username } }", token=ticket))["errors"][0]["extensions"][
        "code"
    ] == "UNAUTHENTICATED"
    # a minute later it is spent
    clock.now += timedelta(seconds=61)
    expired = await pages.get(url)
    assert expired.status_code == 401 and "expired" in expired.text
    # only the pages take tickets
    body = await gql(TICKET, {"path": "/graphql"}, as_="clerk")
    assert body["data"]["pageTicket"]["errors"] == [{"code": "INVALID_INPUT", "field": "path"}]
    ledger = await ticket_url(gql, "/ledger.xlsx?month=2026-03", as_="supervisor")
    assert ledger.startswith("/ledger.xlsx?month=2026-03&ticket=")
    assert (await pages.get(ledger)).status_code == 200


async def test_notice_page_refuses_unknown_invisible_and_anonymous(
    gql: GraphQLClient, pages: httpx.AsyncClient
) -> None:
    project = await create_project(gql)
    url = f"/projects/{project['code']}/notice"
    invisible = await pages.get(url, headers={"Authorization": f"Bearer {gql.tokens['fgw']}"})
    assert invisible.status_code == 404
    assert "未找到项目" in invisible.text
    unknown = await pages.get(
        "/projects/2026-371402-84-01-999999/notice",
        headers={"Authorization": f"Bearer {gql.tokens['clerk']}"},
    )
    assert unknown.status_code == 404
    anonymous = await pages.get(url)
    assert anonymous.status_code == 401
    bad = await pages.get(url, params={"ticket": "not-a-ticket"})
    assert bad.status_code == 401
