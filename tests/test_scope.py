"""Scope holds on every door: task actions check region and department through one guard,
people and enterprises are seen only within the viewer's scope, and an inspector sees through
an inspection only what the visit needs."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from approval.core.auth import create_user, issue_token
from approval.fieldwork.inspections import assign_inspectors, schedule_site_check
from storage.enums import Role
from storage.models import Enterprise, Task, User
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.fieldwork_support import clerk
from tests.helpers import accept, create_project, db_id, ready_stage

pytestmark = pytest.mark.usefixtures("catalog")

PAUSE = """mutation($input: PauseTaskInput!) { pauseTask(input: $input) {
  task { statusLabel } errors { code field } } }"""
DECIDE = """mutation($input: DecideTaskInput!) { decideTask(input: $input) {
  task { status } errors { code field } } }"""
NODE = (
    "query($id: ID!) { node(id: $id) { id ... on Person { username } ... on Enterprise { name } } }"
)


def gid(type_name: str, number: int) -> str:
    return base64.b64encode(f"{type_name}:{number}".encode()).decode()


async def token_for(
    clock: Clock,
    username: str,
    role: Role,
    *,
    department: str | None = None,
    region: str | None = None,
) -> str:
    user = await create_user(
        username=username,
        password=PASSWORD,
        display_name=username,
        role=role,
        department_code=department,
        region_code=region,
    )
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=8))
    return token


async def fgw_task(gql: GraphQLClient, region: str) -> str:
    project = await create_project(gql, region=region)
    await ready_stage(gql, project["id"], "project_approval")
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    task = await Task.filter(stage_id=db_id(payload["stage"]["id"]), department__code="fgw").first()
    assert task is not None
    return gid("Task", task.id)


async def test_every_task_action_checks_the_region(gql: GraphQLClient, clock: Clock) -> None:
    elsewhere = await fgw_task(gql, "371403")  # 陵城区
    here = await fgw_task(gql, "371402")  # 德城区
    district = await token_for(clock, "fgw-dc", Role.REVIEWER, department="fgw", region="371402")
    for query, extra in (
        (PAUSE, {"reason": "EXPERT_REVIEW"}),
        (DECIDE, {"decision": "APPROVED", "opinion": "同意"}),
    ):
        body = await gql(query, {"input": {"taskId": elsewhere, **extra}}, token=district)
        [payload] = body["data"].values()
        assert payload["errors"] == [{"code": "NOT_FOUND", "field": "taskId"}], body
        assert (
            await gql("query($id: ID!) { node(id: $id) { id } }", {"id": elsewhere}, token=district)
        )["data"]["node"] is None
    body = await gql(PAUSE, {"input": {"taskId": here, "reason": "EXPERT_REVIEW"}}, token=district)
    assert body["data"]["pauseTask"]["errors"] == [], body
    # the city-wide reviewer of the department acts anywhere; another department nowhere
    body = await gql(DECIDE, {"input": {"taskId": elsewhere, "decision": "APPROVED"}}, as_="fgw")
    assert body["data"]["decideTask"]["errors"] == [], body
    body = await gql(PAUSE, {"input": {"taskId": here, "reason": "TESTING"}}, as_="zrzy")
    assert body["data"]["pauseTask"]["errors"] == [{"code": "WRONG_DEPARTMENT", "field": "taskId"}]


async def test_people_and_enterprises_only_within_scope(gql: GraphQLClient, clock: Clock) -> None:
    project = await create_project(gql, region="371403")
    row = await Enterprise.get(projects__id=db_id(project["id"]))
    stranger = await token_for(clock, "stranger-agent", Role.AGENT)
    applicant_user = await create_user(
        username="applicant-x",
        password=PASSWORD,
        display_name="申请人",
        role=Role.APPLICANT,
        enterprise_id=row.id,
    )
    applicant, _ = await issue_token(user=applicant_user, now=clock(), ttl=timedelta(hours=1))
    supervisor = await User.get(username="supervisor")
    agent = await User.get(username="agent")

    async def seen(node_id: str, **who: Any) -> dict[str, Any] | None:
        body = await gql(NODE, {"id": node_id}, **who)
        assert "errors" not in body, body
        found: dict[str, Any] | None = body["data"]["node"]
        return found

    # an agent with no projects sees only themselves
    assert await seen(gid("Person", supervisor.id), token=stranger) is None
    assert await seen(gid("Enterprise", row.id), token=stranger) is None
    stranger_id = (await User.get(username="stranger-agent")).id
    assert (await seen(gid("Person", stranger_id), token=stranger)) == {
        "id": gid("Person", stranger_id),
        "username": "stranger-agent",
    }
    # the applicant sees their enterprise and their project's agent, not the staff
    assert (await seen(gid("Enterprise", row.id), token=applicant)) is not None
    assert (await seen(gid("Person", agent.id), token=applicant)) is not None
    assert await seen(gid("Person", supervisor.id), token=applicant) is None
    # a reviewer sees colleagues of the department, not those of another
    fgw, zrzy = await User.get(username="fgw"), await User.get(username="zrzy")
    assert await seen(gid("Person", zrzy.id), as_="fgw") is None
    colleague = await create_user(
        username="fgw-2",
        password=PASSWORD,
        display_name="同事",
        role=Role.REVIEWER,
        department_code="fgw",
    )
    assert await seen(gid("Person", colleague.id), as_="fgw") is not None
    # the window and supervisors see the staff and the enterprises they serve
    assert await seen(gid("Person", fgw.id), as_="clerk") is not None
    assert await seen(gid("Enterprise", row.id), as_="supervisor") is not None
    assert await seen(gid("Person", applicant_user.id), as_="clerk") is None


async def test_an_inspector_sees_through_the_inspection_only_what_the_visit_needs(
    gql: GraphQLClient, clock: Clock
) -> None:
    project = await create_project(gql)  # no task of the inspector's department (zjj)
    window = await clerk()
    inspection = await schedule_site_check(
        viewer=window, project_id=db_id(project["id"]), department_codes=["zjj"], now=clock()
    )
    await assign_inspectors(
        viewer=window, inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    hidden = await gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": project["id"]}, as_="inspector"
    )
    assert hidden["data"]["node"] is None
    visit = await gql("{ myInspections { project { code name address } } }", as_="inspector")
    assert visit["data"]["myInspections"] == [
        {"project": {"code": project["code"], "name": project["name"], "address": "德城区新湖大街"}}
    ]
    for field in (
        "materials { id }",
        "auditTrail { action }",
        "stages { code }",
        "enterprise { name }",
        "agent { username }",
    ):
        body = await gql("{ myInspections { project { code " + field + " } } }", as_="inspector")
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, body)
    # the supervisor, who sees the project, sees it whole through the same inspection
    body = await gql(
        "query($id: ID!) { inspection(id: $id) { project { auditTrail { action } } } }",
        {"id": gid("Inspection", inspection.id)},
        as_="supervisor",
    )
    assert "errors" not in body and body["data"]["inspection"]["project"]["auditTrail"]
