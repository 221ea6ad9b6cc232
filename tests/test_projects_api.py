"""Projects through GraphQL: one form, one code, typed errors, scopes and filters."""

from __future__ import annotations

import re

from approval.core.auth import issue_token
from approval.core.codes import credit_code_with_check
from storage.models import AuditEvent, Enterprise, Project, Stage, User
from tests.helpers import CREATE, create_project, db_id, project_input


async def test_create_project_makes_code_stages_and_audit(gql):
    project = await create_project(gql)
    assert re.fullmatch(r"2026-371402-84-01-000001", project["code"])
    assert [s["code"] for s in project["stages"]] == [
        "project_approval",
        "engineering_permit",
        "construction_permit",
        "completion_acceptance",
    ]
    assert {s["status"] for s in project["stages"]} == {"NOT_STARTED"}
    second = await create_project(gql, name="第二个项目")
    assert second["code"].endswith("-000002")
    event = await AuditEvent.get(action="project.create", entity_id=db_id(project["id"]))
    assert event.after is not None and event.after["code"] == project["code"]


async def test_invalid_credit_code_is_a_typed_error_and_stores_nothing(gql):
    good = credit_code_with_check("91371400MA3C99999")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    body = await gql(CREATE, {"input": project_input(creditCode=bad)}, as_="clerk")
    payload = body["data"]["createProject"]
    assert payload["project"] is None
    [error] = payload["errors"]
    assert error["code"] == "INVALID_CREDIT_CODE"
    assert error["field"] == "creditCode"
    assert "check" in error["message"]
    assert await Project.all().count() == 0
    assert await Enterprise.all().count() == 0


async def test_bad_numbers_region_and_agent_are_refused(gql):
    cases = [
        ({"landArea": "-1"}, "landArea"),
        ({"region": "999999"}, "regionCode"),
        ({"agent": "clerk"}, "agentUsername"),
        ({"industryCode": "7"}, "industryCode"),
        ({"name": "  "}, "name"),
    ]
    for override, field in cases:
        body = await gql(CREATE, {"input": project_input(**override)}, as_="clerk")
        [error] = body["data"]["createProject"]["errors"]
        assert error["field"] == field, (override, error)
    assert await Project.all().count() == 0
    assert await Stage.all().count() == 0


async def test_only_window_and_applicants_create_projects(gql):
    body = await gql(CREATE, {"input": project_input()}, as_="fgw")
    [error] = body["data"]["createProject"]["errors"]
    assert error["code"] == "FORBIDDEN"


async def test_filters_text_region_agent_and_pagination(gql):
    for i in range(5):
        await create_project(gql, name=f"城区项目{i}", region="371402")
    await create_project(gql, name="开发区厂房", region="371471", agent=None)
    query = """query($first: Int!, $after: String, $filter: ProjectFilterInput) {
      projects(first: $first, after: $after, filter: $filter) {
        totalCount edges { cursor node { name code } } pageInfo { hasNextPage endCursor }
      }}"""
    body = await gql(query, {"first": 10, "filter": {"text": "厂房"}}, as_="supervisor")
    assert [e["node"]["name"] for e in body["data"]["projects"]["edges"]] == ["开发区厂房"]
    body = await gql(query, {"first": 10, "filter": {"region": "371471"}}, as_="supervisor")
    assert body["data"]["projects"]["totalCount"] == 1
    body = await gql(query, {"first": 10, "filter": {"agent": "agent"}}, as_="supervisor")
    assert body["data"]["projects"]["totalCount"] == 5
    seen = []
    after = None
    while True:
        body = await gql(query, {"first": 2, "after": after}, as_="supervisor")
        connection = body["data"]["projects"]
        seen += [e["node"]["name"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == 6 and len(set(seen)) == 6
    assert seen[0] == "开发区厂房"  # newest first
    body = await gql(query, {"first": 2, "after": "bm9wZQ=="}, as_="supervisor")
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_scope_agent_sees_only_own_projects_and_node_respects_it(gql):
    mine = await create_project(gql, name="代办项目")
    other = await create_project(gql, name="无代办项目", agent=None)
    query = "query { projects(first: 10) { edges { node { name } } } }"
    body = await gql(query, as_="agent")
    assert [e["node"]["name"] for e in body["data"]["projects"]["edges"]] == ["代办项目"]
    node = "query($id: ID!) { node(id: $id) { ... on Project { name code } } }"
    assert (await gql(node, {"id": mine["id"]}, as_="agent"))["data"]["node"]["name"] == "代办项目"
    hidden = await gql(node, {"id": other["id"]}, as_="agent")
    assert hidden["data"]["node"] is None
    by_code = "query($code: String!) { project(code: $code) { name } }"
    assert (await gql(by_code, {"code": other["code"]}, as_="agent"))["data"]["project"] is None
    shown = await gql(by_code, {"code": other["code"]}, as_="supervisor")
    assert shown["data"]["project"]["name"] == "无代办项目"


async def test_no_token_expired_token_and_garbage_token(gql, clock):
    from datetime import timedelta

    body = await gql("query { viewer { username } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql("query { viewer { username roleLabel } }", as_="clerk")
    assert body["data"]["viewer"] == {"username": "clerk", "roleLabel": "综合受理窗口"}
    clerk = await User.get(username="clerk")
    short, _ = await issue_token(user=clerk, now=clock(), ttl=timedelta(hours=1))
    assert "errors" not in await gql("query { viewer { username } }", token=short)
    clock.now += timedelta(hours=1, seconds=1)
    body = await gql("query { viewer { username } }", token=short)
    assert body["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"
    body = await gql(CREATE, {"input": project_input()}, token=short)
    assert body["data"]["createProject"]["errors"][0]["code"] == "TOKEN_EXPIRED"
    assert await Project.all().count() == 0
    body = await gql("query { viewer { username } }", token="not-a-token")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_login_gives_a_working_token_and_wrong_password_a_typed_error(gql):
    login = """mutation($u: String!, $p: String!) {
      login(username: $u, password: $p) { token viewer { username } errors { code message } }}"""
    body = await gql(login, {"u": "fgw", "p": "wrong-password"})
    assert body["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    body = await gql(login, {"u": "fgw", "p": "test-password"})
    token = body["data"]["login"]["token"]
    body = await gql("query { viewer { username department { code } } }", token=token)
    assert body["data"]["viewer"] == {"username": "fgw", "department": {"code": "fgw"}}


async def test_query_limits_and_masked_errors(gql):
    deep = (
        "query { projects { edges { node { stages { tasks { item { department { region "
        "{ parent { parent { parent { parent { code } } } } } } } } } } } } }"
    )
    body = await gql(deep, as_="supervisor")
    assert "more than 10" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    aliases = "query { " + " ".join(f"a{i}: viewer {{ username }}" for i in range(20)) + " }"
    body = await gql(aliases, as_="supervisor")
    assert "aliases" in body["errors"][0]["message"].lower()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_catalog_queries_have_chinese_names(gql):
    body = await gql(
        'query { departments { code name } serviceItems(stage: "completion_acceptance")'
        " { name siteCheck department { shortName } } regions { code kindLabel } }",
        as_="clerk",
    )
    data = body["data"]
    assert len(data["departments"]) >= 12
    assert any(i["siteCheck"] for i in data["serviceItems"])
    assert {"code": "371400", "kindLabel": "市"} in data["regions"]


async def test_audit_trail_shows_who_did_what_before_and_after(gql):
    project = await create_project(gql)
    query = """query($code: String!) { project(code: $code) {
      auditTrail { action actor { username } before after } } }"""
    body = await gql(query, {"code": project["code"]}, as_="supervisor")
    [event] = body["data"]["project"]["auditTrail"]
    assert event["action"] == "project.create"
    assert event["actor"] == {"username": "clerk"}
    assert event["after"]["code"] == project["code"] and event["before"] is None


async def test_unexpected_errors_are_masked(gql, monkeypatch):
    import schema.projects.query

    def broken(**_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(schema.projects.query, "project_query", broken)
    body = await gql("query { projects(first: 1) { totalCount } }", as_="supervisor")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "secret" not in str(body)


async def test_a_malformed_project_code_is_an_input_error_not_an_unknown_project(gql):
    project = await create_project(gql)
    by_code = "query($code: String!) { project(code: $code) { name } }"
    body = await gql(by_code, {"code": "2026-37140-47-01-000123"}, as_="supervisor")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": "code"}
    assert "malformed" in error["message"] and "YYYY-RRRRRR-II-TT-NNNNNN" in error["message"]
    unknown = await gql(by_code, {"code": "2026-371402-47-01-999999"}, as_="supervisor")
    assert unknown["data"]["project"] is None and "errors" not in unknown
    padded = await gql(by_code, {"code": f" {project['code']} "}, as_="supervisor")
    assert padded["data"]["project"]["name"] == project["name"]
