"""Stages: window acceptance, parallel department tasks, fan-in, materials and 容缺."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from approval.core.access import Viewer
from approval.core.calendar import working_calendar
from approval.projects.tasks import decide_task
from storage.enums import Decision, Role, StageStatus, TaskStatus
from storage.models import AuditEvent, Department, Material, ServiceItem, Stage, Task, User
from tests.helpers import accept, create_project, db_id, ready_stage, stage_needs, submit

DECIDE = """
mutation($input: DecideTaskInput!) {
  decideTask(input: $input) {
    task { id status decision decisionLabel } stage { status outcome outcomeLabel }
    errors { code field message }
  }
}"""


async def reviewer(department_code: str) -> Viewer:
    department = await Department.get(code=department_code)
    user, _ = await User.get_or_create(
        username=f"reviewer-{department_code}",
        defaults={
            "display_name": department.short_name,
            "password_hash": "-",
            "role": Role.REVIEWER,
            "department": department,
        },
    )
    return Viewer(
        user_id=user.id, username=user.username, role=Role.REVIEWER, department_id=department.id
    )


async def accepted_stage(gql, clock) -> tuple[dict, dict]:
    project = await create_project(gql)
    await ready_stage(gql, project["id"], "project_approval")
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    return project, payload["stage"]


async def test_missing_core_material_refuses_and_changes_nothing(gql):
    project = await create_project(gql)
    core, _ = await stage_needs(project["id"], "project_approval")
    assert core
    payload = await accept(gql, project["id"], "project_approval")
    [error] = payload["errors"]
    assert error["code"] == "MISSING_CORE_MATERIALS"
    assert core[0] in error["message"]
    stage = await Stage.get(project_id=db_id(project["id"]), definition__code="project_approval")
    assert stage.status is StageStatus.NOT_STARTED and stage.round == 0
    assert await Task.all().count() == 0
    assert not await AuditEvent.exists(action="stage.accept")


async def test_acceptance_fans_out_to_every_department_with_working_day_deadlines(gql, clock):
    _, stage = await accepted_stage(gql, clock)
    assert stage["status"] == "IN_REVIEW" and stage["round"] == 1
    tasks = await Task.all().prefetch_related("item")
    items = await ServiceItem.filter(stage__code="project_approval", active=True)
    applicable = [i for i in items if "APPROVAL" in i.project_types]
    assert len(tasks) == len(applicable) == len(stage["tasks"])
    assert len({t["department"]["code"] for t in stage["tasks"]}) >= 3
    calendar = await working_calendar(years=[2026])
    today = clock().date()
    for task in tasks:
        assert task.deadline == calendar.add_working_days(today, task.item.promised_days)
        assert calendar.is_working_day(task.deadline)


async def test_commitment_lets_non_core_material_wait(gql, clock):
    project = await create_project(gql)
    core, non_core = await stage_needs(project["id"], "project_approval")
    assert non_core, "the catalog should have non-core materials in stage 1"
    for code in core:
        await submit(gql, project["id"], code)
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"][0]["field"] == "commitments"
    due = (clock().date() + timedelta(days=5)).isoformat()  # before every item deadline
    commitments = [{"materialType": c, "due": due, "signedBy": "张建国"} for c in non_core]
    bad = [{"materialType": core[0], "due": due, "signedBy": "张建国"}]
    payload = await accept(gql, project["id"], "project_approval", commitments=bad)
    assert payload["errors"][0]["code"] == "INVALID_INPUT"
    late = [{**c, "due": "2026-12-31"} for c in commitments]
    payload = await accept(gql, project["id"], "project_approval", commitments=late)
    assert "no later than the stage deadline" in payload["errors"][0]["message"]
    assert await Task.all().count() == 0
    payload = await accept(gql, project["id"], "project_approval", commitments=commitments)
    assert payload["errors"] == []
    committed = await Material.filter(status="committed").count()
    assert committed == len(non_core)


async def test_deadline_in_a_year_without_calendar_is_refused(gql, clock):
    project = await create_project(gql)
    await ready_stage(gql, project["id"], "project_approval")
    clock.now = datetime(2026, 12, 24, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    payload = await accept(gql, project["id"], "project_approval")
    [error] = payload["errors"]
    assert error["code"] == "CALENDAR_UNKNOWN"
    assert "2027" in error["message"] and "load-holidays" in error["message"]
    assert await Task.all().count() == 0
    stage = await Stage.get(project_id=db_id(project["id"]), definition__code="project_approval")
    assert stage.status is StageStatus.NOT_STARTED


async def test_decision_on_another_departments_task_is_refused(gql, clock):
    _, stage = await accepted_stage(gql, clock)
    other = next(t for t in stage["tasks"] if t["department"]["code"] != "fgw")
    body = await gql(DECIDE, {"input": {"taskId": other["id"], "decision": "APPROVED"}}, as_="fgw")
    [error] = body["data"]["decideTask"]["errors"]
    assert error["code"] == "WRONG_DEPARTMENT"
    task = await Task.get(id=db_id(other["id"]))
    assert task.status is TaskStatus.PENDING and task.decision is None


async def test_stage_completes_with_the_most_severe_decision(gql, clock):
    _, stage = await accepted_stage(gql, clock)
    own = [t for t in stage["tasks"] if t["department"]["code"] == "fgw"]
    body = await gql(DECIDE, {"input": {"taskId": own[0]["id"], "decision": "REJECTED"}}, as_="fgw")
    assert body["data"]["decideTask"]["errors"][0]["field"] == "opinion"
    body = await gql(
        DECIDE,
        {
            "input": {
                "taskId": own[0]["id"],
                "decision": "APPROVED_WITH_CONDITIONS",
                "opinion": "需落实节能措施",
            }
        },
        as_="fgw",
    )
    payload = body["data"]["decideTask"]
    assert payload["task"]["decisionLabel"] == "附条件准予"
    assert payload["stage"]["status"] == "IN_REVIEW"
    again = await gql(
        DECIDE, {"input": {"taskId": own[0]["id"], "decision": "APPROVED"}}, as_="fgw"
    )
    assert again["data"]["decideTask"]["errors"][0]["code"] == "ALREADY_DECIDED"
    rest = await Task.filter(decided_at__isnull=True).prefetch_related("department")
    for task in rest:
        await decide_task(
            viewer=await reviewer(task.department.code),
            task_id=task.id,
            decision=Decision.APPROVED,
            opinion="",
            now=clock(),
        )
    done = await Stage.get(id=db_id(stage["id"]))
    assert done.status is StageStatus.COMPLETED
    assert done.outcome is Decision.APPROVED_WITH_CONDITIONS
    assert await AuditEvent.filter(action="stage.complete").count() == 1


async def test_concurrent_decisions_never_lose_an_update(gql, clock):
    _, stage = await accepted_stage(gql, clock)
    tasks = await Task.all().prefetch_related("department")
    viewers = {t.id: await reviewer(t.department.code) for t in tasks}
    decisions = [Decision.REJECTED if i == 0 else Decision.APPROVED for i in range(len(tasks))]
    await asyncio.gather(
        *(
            decide_task(viewer=viewers[t.id], task_id=t.id, decision=d, opinion="意见", now=clock())
            for t, d in zip(tasks, decisions, strict=True)
        )
    )
    assert await Task.filter(status=TaskStatus.DECIDED).count() == len(tasks)
    done = await Stage.get(id=db_id(stage["id"]))
    assert done.status is StageStatus.COMPLETED and done.outcome is Decision.REJECTED
    assert await AuditEvent.filter(action="task.decide").count() == len(tasks)
    assert await AuditEvent.filter(action="stage.complete").count() == 1


async def test_supplement_request_pauses_task_until_material_arrives(gql, clock):
    project, stage = await accepted_stage(gql, clock)
    own = next(t for t in stage["tasks"] if t["department"]["code"] == "fgw")
    core, _ = await stage_needs(project["id"], "project_approval")
    material = (
        await Material.filter(project_id=db_id(project["id"]))
        .first()
        .prefetch_related("material_type")
    )
    assert material is not None and core == []
    mutation = """mutation($input: RequestSupplementInput!) {
      requestSupplement(input: $input) {
        task { status supplements { reason materialType { code } } } errors { code message } }}"""
    body = await gql(
        mutation,
        {
            "input": {
                "taskId": own["id"],
                "reason": "盖章不清晰, 请重新提供",
                "materialType": material.material_type.code,
            }
        },
        as_="fgw",
    )
    payload = body["data"]["requestSupplement"]
    assert payload["errors"] == []
    assert payload["task"]["status"] == "SUPPLEMENT_REQUESTED"
    await material.refresh_from_db()
    assert material.status.value == "rejected" and "盖章" in material.rejection_reason
    await submit(gql, project["id"], material.material_type.code, as_="agent")
    task = await Task.get(id=db_id(own["id"]))
    assert task.status is TaskStatus.PENDING
    await material.refresh_from_db()
    assert material.current_version == 2


async def test_later_stage_waits_for_the_earlier_one_and_rejection_opens_a_new_round(gql, clock):
    project, stage = await accepted_stage(gql, clock)
    payload = await accept(gql, project["id"], "engineering_permit")
    assert payload["errors"][0]["code"] == "INVALID_STATE"
    for task in await Task.all().prefetch_related("department"):
        await decide_task(
            viewer=await reviewer(task.department.code),
            task_id=task.id,
            decision=Decision.SUPPLEMENT_REQUIRED,
            opinion="材料不全",
            now=clock(),
        )
    clock.now += timedelta(days=7)
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    assert payload["stage"]["round"] == 2
    assert len(payload["stage"]["tasks"]) == len(stage["tasks"])
    assert await Task.filter(round=2).count() == len(stage["tasks"])
    assert all(
        date.fromisoformat(t["deadline"]) > clock().date() for t in payload["stage"]["tasks"]
    )
