"""The console's reads: the wall chart (挂图作战), a department's review queue with lights, a
stage application before acceptance, and an applicant rating their own completed service."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from approval.core.auth import create_user, issue_token
from approval.core.calendar import working_calendar
from approval.oversight.lights import Light, task_clock
from approval.oversight.notifications import collect
from approval.oversight.supervision import SupervisionSettings, supervise
from storage.enums import Role
from storage.models import Enterprise, Rating, SupervisionEvent, Task
from tests.browser_support import global_id
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.helpers import CREDIT_CODE, accept, create_project, db_id, stage_needs, submit
from tests.supervision_support import CHINA, accepted, approve_open_tasks
from tests.test_query_count import count_sql

STAGE_1 = "project_approval"
WALL = """
query($projects: [String!]) {
  wallChart(projects: $projects) {
    asOf
    rows { code name regionName enterpriseName light departmentCodes
      cells { stageCode status statusLabel light openTasks overdueTasks overdue deadline
        departments { code shortName light openTasks } } }
  }
}"""

QUEUE = """
query($department: String) {
  reviewQueue(department: $department) {
    stageCode light lightLabel workingDaysLeft owesFormalOpinion
    task { id deadline paused department { code } }
    project { code }
  }
}"""

APPLICATION = """
query($projectId: ID!, $stage: String!) {
  stageApplication(projectId: $projectId, stage: $stage) {
    stageCode stageDeadline missingCore missingNonCore
    items { item { code } department { code } deadline }
    materials { materialType { code } core holding holdingLabel latestCommitmentDue
      setByItem itemNames material { status } }
  }
}"""


def data(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]


# --- the wall chart --------------------------------------------------------------------------


async def test_every_project_is_one_row_across_the_four_stages(
    gql: GraphQLClient, clock: Clock
) -> None:
    waiting = await create_project(gql, name="未受理项目")
    project, stage = await accepted(gql)
    chart = data(await gql(WALL, as_="supervisor"))["wallChart"]
    rows = {r["code"]: r for r in chart["rows"]}
    assert set(rows) == {waiting["code"], project["code"]}
    row = rows[project["code"]]
    assert [c["stageCode"] for c in row["cells"]] == [
        "project_approval",
        "engineering_permit",
        "construction_permit",
        "completion_acceptance",
    ]
    first = row["cells"][0]
    assert first["status"] == "IN_REVIEW" and first["statusLabel"] == "审批中"
    # Items promised in one working day are within the warning window at once.
    assert first["light"] in ("GREEN", "YELLOW") and row["light"] == first["light"]
    order = ["GREEN", "YELLOW", "RED"]
    assert first["light"] == max((d["light"] for d in first["departments"]), key=order.index)
    assert first["openTasks"] == len(stage["tasks"]) > 1
    assert {d["code"] for d in first["departments"]} == {
        t["department"]["code"] for t in stage["tasks"]
    }
    assert set(row["departmentCodes"]) == {d["code"] for d in first["departments"]}
    assert all(c["light"] is None for c in row["cells"][1:])
    assert rows[waiting["code"]]["light"] is None
    assert rows[waiting["code"]]["departmentCodes"] == []


async def test_the_chart_turns_yellow_when_the_loop_warns_and_red_when_late(
    gql: GraphQLClient, clock: Clock
) -> None:
    project, stage = await accepted(gql)

    async def lights() -> dict[str, str]:
        row = data(await gql(WALL, {"projects": [project["code"]]}, as_="supervisor"))
        [only] = row["wallChart"]["rows"]
        return {d["code"]: d["light"] for d in only["cells"][0]["departments"]}

    green = sorted(code for code, light in (await lights()).items() if light == "GREEN")
    assert green, "some department has more than a working day left"
    task = await Task.filter(stage_id=db_id(stage["id"]), department__code=green[0]).first()
    assert task is not None
    # The loop's own warning colours the chart even outside the default window.
    await SupervisionEvent.create(
        key=f"task:{task.id}:yellow",
        kind="task",
        level="yellow",
        entity_type="task",
        entity_id=task.id,
        project_id=db_id(project["id"]),
        department_id=task.department_id,
        message="【黄色预警】",
        at=clock(),
    )
    after = await lights()
    assert after[green[0]] == "YELLOW"
    assert all(after[code] == "GREEN" for code in green[1:])
    latest = max(date.fromisoformat(t["deadline"]) for t in stage["tasks"])
    clock.now = datetime.combine(latest + timedelta(days=1), time(9), CHINA)
    assert set((await lights()).values()) == {"RED"}
    [row] = data(await gql(WALL, {"projects": [project["code"]]}, as_="supervisor"))["wallChart"][
        "rows"
    ]
    assert row["light"] == "RED"
    assert row["cells"][0]["overdueTasks"] == row["cells"][0]["openTasks"]


async def test_a_paused_clock_is_shown_and_neither_warns_nor_runs_late(
    gql: GraphQLClient, clock: Clock
) -> None:
    _, stage = await accepted(gql)
    task = await Task.filter(stage_id=db_id(stage["id"])).first()
    assert task is not None
    task.paused_at = clock()
    calendar = await working_calendar(years=[2026])
    late = task.deadline + timedelta(days=30)
    assert task_clock(task, today=late, calendar=calendar).light is Light.PAUSED
    task.paused_at = None
    assert task_clock(task, today=late, calendar=calendar).light is Light.RED
    assert task_clock(task, today=late, calendar=calendar).working_days_left is not None


async def test_a_refresh_names_projects_and_other_roles_are_refused(
    gql: GraphQLClient, clock: Clock
) -> None:
    project, _ = await accepted(gql)
    await create_project(gql, name="另一个项目")
    only = data(await gql(WALL, {"projects": [project["code"]]}, as_="supervisor"))
    assert [r["code"] for r in only["wallChart"]["rows"]] == [project["code"]]
    none = data(await gql(WALL, {"projects": ["2026-371400-47-01-999999"]}, as_="supervisor"))
    assert none["wallChart"]["rows"] == []
    too_many = await gql(WALL, {"projects": ["x"] * 201}, as_="supervisor")
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    refused = await gql(WALL, as_="fgw")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql(WALL)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_chart_costs_the_same_statements_for_more_projects(
    gql: GraphQLClient, clock: Clock
) -> None:
    await accepted(gql)
    with count_sql() as few:
        data(await gql(WALL, as_="supervisor"))
    for _ in range(3):
        await accepted(gql)
    with count_sql() as more:
        data(await gql(WALL, as_="supervisor"))
    assert len(more) == len(few)


# --- the review queue ------------------------------------------------------------------------


async def test_a_reviewer_sees_their_department_by_deadline_with_days_left(
    gql: GraphQLClient, clock: Clock
) -> None:
    await accepted(gql)
    clock.now += timedelta(days=1)
    await accepted(gql)
    entries = data(await gql(QUEUE, as_="fgw"))["reviewQueue"]
    assert len(entries) >= 2
    assert {e["task"]["department"]["code"] for e in entries} == {"fgw"}
    deadlines = [e["task"]["deadline"] for e in entries]
    assert deadlines == sorted(deadlines)
    assert all(e["light"] == "GREEN" and e["lightLabel"] == "正常" for e in entries)
    assert all(e["workingDaysLeft"] > 1 for e in entries)
    other = await gql(QUEUE, {"department": "zrzy"}, as_="fgw")
    assert other["errors"][0]["extensions"]["code"] == "WRONG_DEPARTMENT"
    supervisor = data(await gql(QUEUE, {"department": "zrzy"}, as_="supervisor"))
    assert {e["task"]["department"]["code"] for e in supervisor["reviewQueue"]} == {"zrzy"}
    assert (await gql(QUEUE, as_="agent"))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_queue_lists_formal_opinions_owed_after_a_default_approval(
    gql: GraphQLClient, clock: Clock
) -> None:
    _, stage = await accepted(gql)
    latest = max(date.fromisoformat(t["deadline"]) for t in stage["tasks"])
    clock.now = datetime.combine(latest + timedelta(days=3), time(9), CHINA)
    await supervise(now=clock(), settings=SupervisionSettings())
    entries = data(await gql(QUEUE, as_="fgw"))["reviewQueue"]
    owed = [e for e in entries if e["owesFormalOpinion"]]
    assert owed, "发改委's items of the first stage allow default approval"
    assert all(e["light"] is None and e["workingDaysLeft"] is None for e in owed)
    assert owed[0]["lightLabel"] == "待补正式意见"


# --- the stage application ------------------------------------------------------------------


async def test_the_window_sees_what_is_held_promised_and_missing(
    gql: GraphQLClient, clock: Clock
) -> None:
    project = await create_project(gql)
    core, non_core = await stage_needs(project["id"], "project_approval")
    assert core and non_core
    answer = data(
        await gql(
            APPLICATION, {"projectId": project["id"], "stage": "project_approval"}, as_="clerk"
        )
    )["stageApplication"]
    materials = {m["materialType"]["code"]: m for m in answer["materials"]}
    assert {c for c, m in materials.items() if m["holding"] == "MISSING"} == set(core + non_core)
    assert len(answer["missingCore"]) == len(core)
    assert all(materials[c]["core"] and materials[c]["latestCommitmentDue"] is None for c in core)
    promise = materials[non_core[0]]
    assert promise["latestCommitmentDue"] is not None and promise["itemNames"]
    items = {i["item"]["code"]: i["deadline"] for i in answer["items"]}
    assert promise["latestCommitmentDue"] <= answer["stageDeadline"]
    if promise["setByItem"] is not None:
        assert promise["latestCommitmentDue"] in items.values()

    # What it says is what the acceptance enforces: one day later is refused, that day is not.
    for code in core + non_core[1:]:
        await submit(gql, project["id"], code)
    late = date.fromisoformat(promise["latestCommitmentDue"]) + timedelta(days=1)
    commitment = {"materialType": non_core[0], "signedBy": "刘建华"}
    refused = await accept(
        gql, project["id"], "project_approval", commitments=[{**commitment, "due": str(late)}]
    )
    assert refused["errors"][0]["code"] == "INVALID_INPUT"
    answer = data(
        await gql(
            APPLICATION, {"projectId": project["id"], "stage": "project_approval"}, as_="clerk"
        )
    )["stageApplication"]
    assert answer["missingCore"] == [] and len(answer["missingNonCore"]) == 1
    ok = await accept(
        gql,
        project["id"],
        "project_approval",
        commitments=[{**commitment, "due": promise["latestCommitmentDue"]}],
    )
    assert ok["errors"] == [], ok
    answer = data(
        await gql(
            APPLICATION, {"projectId": project["id"], "stage": "project_approval"}, as_="clerk"
        )
    )["stageApplication"]
    held = {m["materialType"]["code"]: m["holding"] for m in answer["materials"]}
    assert held[non_core[0]] == "COMMITTED"
    assert answer["missingNonCore"] == []


async def test_an_unknown_stage_or_a_project_out_of_scope_is_refused(
    gql: GraphQLClient, clock: Clock
) -> None:
    project = await create_project(gql)
    bad = await gql(APPLICATION, {"projectId": project["id"], "stage": "nope"}, as_="clerk")
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    hidden = await gql(
        APPLICATION, {"projectId": project["id"], "stage": "project_approval"}, as_="fgw"
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    wrong = await gql(
        APPLICATION, {"projectId": "VGFzazox", "stage": "project_approval"}, as_="clerk"
    )
    assert wrong["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


# --- an applicant rates their own service ----------------------------------------------------

MY_RATINGS = "{ myRatings { id score stage { code } project { code } } }"
RATE = """
mutation($ratingId: ID!, $score: Int!, $comment: String!) {
  rateMyService(ratingId: $ratingId, score: $score, comment: $comment) {
    rating { score comment followUpOpen }
    errors { code field message }
  }
}"""


async def applicant(gql: GraphQLClient, clock: Clock, username: str, of: Enterprise) -> None:
    """An applicant user of enterprise ``of``, with a token in ``gql``."""
    user = await create_user(
        username=username,
        password=PASSWORD,
        display_name=of.name,
        role=Role.APPLICANT,
        enterprise_id=of.id,
    )
    gql.tokens[username], _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=1))


async def test_an_applicant_rates_a_completed_stage_once(gql: GraphQLClient, clock: Clock) -> None:
    project, stage = await accepted(gql)
    await approve_open_tasks(db_id(stage["id"]), clock())
    await collect(now=clock())
    await applicant(gql, clock, "applicant-1", await Enterprise.get(credit_code=CREDIT_CODE))
    [mine] = data(await gql(MY_RATINGS, as_="applicant-1"))["myRatings"]
    assert mine["score"] is None and mine["project"]["code"] == project["code"]
    rated = await gql(
        RATE, {"ratingId": mine["id"], "score": 2, "comment": "等待太久"}, as_="applicant-1"
    )
    payload = rated["data"]["rateMyService"]
    assert payload["errors"] == []
    assert payload["rating"] == {"score": 2, "comment": "等待太久", "followUpOpen": True}
    again = await gql(RATE, {"ratingId": mine["id"], "score": 5, "comment": ""}, as_="applicant-1")
    assert again["data"]["rateMyService"]["errors"][0]["code"] == "ALREADY_RATED"
    assert (await Rating.get(id=db_id(mine["id"]))).score == 2
    # Someone else's rating, or a supervisor's call, is refused and changes nothing.
    other = await gql(RATE, {"ratingId": mine["id"], "score": 5, "comment": ""}, as_="supervisor")
    assert other["data"]["rateMyService"]["errors"][0]["code"] == "FORBIDDEN"
    assert (await gql(MY_RATINGS, as_="supervisor"))["errors"][0]["extensions"][
        "code"
    ] == "FORBIDDEN"


async def test_an_applicant_cannot_rate_another_enterprise(
    gql: GraphQLClient, clock: Clock
) -> None:
    _, stage = await accepted(gql)
    await approve_open_tasks(db_id(stage["id"]), clock())
    await collect(now=clock())
    rating = await Rating.all().first()
    assert rating is not None
    stranger = await Enterprise.create(credit_code="91371400MA3D8P5X6", name="别家公司")
    await applicant(gql, clock, "applicant-2", stranger)
    assert data(await gql(MY_RATINGS, as_="applicant-2"))["myRatings"] == []
    answer = await gql(
        RATE,
        {"ratingId": global_id("Rating", rating.id), "score": 1, "comment": ""},
        as_="applicant-2",
    )
    assert answer["data"]["rateMyService"]["errors"][0]["code"] == "NOT_FOUND"
    assert (await Rating.get(id=rating.id)).score is None
