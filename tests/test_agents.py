"""一人代办: an agent is replaced (audited) and sees the warnings and overdue of their projects."""

from __future__ import annotations

from datetime import datetime, timedelta

from approval.core.auth import create_user, issue_token
from approval.core.dates import CHINA
from approval.oversight.supervision import SupervisionSettings, supervise
from storage.enums import Role
from storage.models import AuditEvent, Project, Task
from tests.helpers import create_project, db_id
from tests.supervision_support import accepted

REASSIGN = """mutation($input: ReassignAgentInput!) { reassignAgent(input: $input) {
  project { code agent { username } } errors { code field message } } }"""
ALERTS = """{ warnings(withinDays: 1) { tasks { projectCode } events { projectCode } }
  overdue { tasks { projectCode } events { projectCode } } }"""
MINE = "{ projects(first: 10) { edges { node { code } } } }"


async def _agent(username: str, clock) -> str:
    user = await create_user(
        username=username, password="test-password", display_name=username, role=Role.AGENT
    )
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(days=30))
    return token


async def test_an_agent_is_replaced_with_a_reason_and_the_change_is_audited(gql, clock):
    project = await create_project(gql)
    other = await _agent("agent2", clock)
    variables = {"input": {"projectId": project["id"], "agent": "agent2", "reason": ""}}
    body = await gql(REASSIGN, variables, as_="clerk")
    assert body["data"]["reassignAgent"]["errors"][0]["field"] == "reason"
    variables["input"]["reason"] = "原代办员休假"
    denied = await gql(REASSIGN, variables, as_="agent")
    assert denied["data"]["reassignAgent"]["errors"][0]["code"] == "FORBIDDEN"
    body = await gql(REASSIGN, variables, as_="supervisor")
    assert body["data"]["reassignAgent"]["project"]["agent"] == {"username": "agent2"}
    event = await AuditEvent.get(action="project.reassign_agent")
    assert event.before == {"agent": "agent"}
    assert event.after == {"agent": "agent2", "reason": "原代办员休假"}
    assert (await gql(MINE, as_="agent"))["data"]["projects"]["edges"] == []
    assert len((await gql(MINE, token=other))["data"]["projects"]["edges"]) == 1
    again = await gql(REASSIGN, variables, as_="supervisor")
    assert again["data"]["reassignAgent"]["errors"][0]["code"] == "INVALID_STATE"
    unknown = {"input": {**variables["input"], "agent": "nobody"}}
    assert (await gql(REASSIGN, unknown, as_="clerk"))["data"]["reassignAgent"]["errors"][0][
        "field"
    ] == "agent"
    assert (await Project.get(id=db_id(project["id"]))).agent_id is not None


async def test_an_agent_sees_the_warnings_and_overdue_of_their_own_projects(gql, clock):
    mine, stage = await accepted(gql)
    other, _ = await accepted(gql)
    await Project.filter(code=other["code"]).update(agent_id=None)
    first = min(await Task.filter(stage_id=db_id(stage["id"])).values_list("deadline", flat=True))
    eve = datetime.combine(first, datetime.min.time(), CHINA).replace(hour=9)
    assert await supervise(now=eve, settings=SupervisionSettings())  # yellow for both projects
    clock.now = eve
    body = await gql(ALERTS, as_="agent")
    assert "errors" not in body, body
    warned = body["data"]["warnings"]
    assert warned["tasks"] and {t["projectCode"] for t in warned["tasks"]} == {mine["code"]}
    assert warned["events"] and {e["projectCode"] for e in warned["events"]} == {mine["code"]}
    clock.now = eve + timedelta(days=3)
    body = await gql(ALERTS, as_="agent")
    late = body["data"]["overdue"]["tasks"]
    assert late and {t["projectCode"] for t in late} == {mine["code"]}
    assert other["code"] not in str(body)
    refused = await gql(ALERTS, as_="clerk")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
