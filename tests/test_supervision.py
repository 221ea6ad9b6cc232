"""电子监察: warnings before deadlines, flags after, 超时默认, 容缺 commitments and suspension."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from approval.catalog.parse import CatalogError, parse_catalog
from approval.core.calendar import load_holiday_year, working_calendar
from approval.core.errors import DomainError, ErrorCode
from approval.oversight.supervision import SupervisionSettings, supervise
from approval.projects.materials import MaterialFile, submit_material
from approval.projects.tasks import decide_task, file_formal_opinion
from approval.review.rules import DEFAULT_OPINION
from storage.enums import Decision, MaterialStatus, StageStatus, TaskStatus, WarningLevel
from storage.models import (
    AuditEvent,
    Material,
    ServiceItem,
    Stage,
    SupervisionEvent,
    Task,
    TaskPause,
)
from tests.helpers import accept, create_project, db_id, stage_needs, submit
from tests.supervision_support import (
    HOLIDAYS_2027,
    accepted,
    advance_to,
    at,
    forget_year,
    reviewer,
    task_of,
)

SETTINGS = SupervisionSettings()


async def keys(**filters: object) -> list[str]:
    return sorted(await SupervisionEvent.filter(**filters).values_list("key", flat=True))


async def no_default_approval(stage_code: str) -> None:
    ids = await ServiceItem.filter(stage__code=stage_code).values_list("id", flat=True)
    await ServiceItem.filter(id__in=list(ids)).update(default_approval=False)


# --- warnings --------------------------------------------------------------------------------


async def test_yellow_then_red_fire_once_each_over_repeated_scans(gql, clock):
    await no_default_approval("project_approval")
    _, stage = await accepted(gql)  # Monday 2026-03-02
    task = await task_of(db_id(stage["id"]), "soil-conservation-approval")
    assert task.deadline == date(2026, 3, 9)  # 5 working days: Mon 9 March
    key = f"task:{task.id}"

    fired = await supervise(now=at("2026-03-05"), settings=SETTINGS)  # two working days left
    assert not [e for e in fired if e.key.startswith(f"{key}:")]
    fired = await supervise(now=at("2026-03-06"), settings=SETTINGS)  # Friday: one, the weekend
    assert f"{key}:yellow" in [e.key for e in fired]
    event = next(e for e in fired if e.key == f"{key}:yellow")
    assert event.level is WarningLevel.YELLOW and event.department_id == task.department_id
    assert event.message.startswith("【黄色预警】德州市第一人民医院门诊楼扩建项目 的 ")
    assert "水土保持" in event.message and "将于 2026-03-09 到期" in event.message
    assert await supervise(now=at("2026-03-06", 15), settings=SETTINGS) == []
    fired = await supervise(now=at("2026-03-09"), settings=SETTINGS)  # the day itself: in time
    assert not [e for e in fired if e.key.startswith(f"{key}:")]
    fired = await supervise(now=at("2026-03-10"), settings=SETTINGS)
    assert f"{key}:red" in [e.key for e in fired]
    red = await SupervisionEvent.get(key=f"{key}:red")
    assert red.level is WarningLevel.RED and "已于 2026-03-09 到期" in red.message
    assert "不适用超时默认" in red.message
    assert await supervise(now=at("2026-03-10", 16), settings=SETTINGS) == []
    fired = await supervise(now=at("2026-03-11"), settings=SETTINGS)
    assert not [e for e in fired if e.key.startswith(f"{key}:")]
    assert await keys(entity_type="task", entity_id=task.id) == [f"{key}:red", f"{key}:yellow"]
    await task.refresh_from_db()
    assert task.status is TaskStatus.PENDING  # excluded from 超时默认 here: still the department's


async def test_wider_warning_window_is_configurable(gql, clock):
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "soil-conservation-approval")
    fired = await supervise(now=at("2026-03-04"), settings=SupervisionSettings(warn_working_days=3))
    assert f"task:{task.id}:yellow" in [e.key for e in fired]
    with pytest.raises(ValueError, match="warn_working_days"):
        SupervisionSettings(warn_working_days=-1)


@pytest.mark.parametrize(
    ("accepted_on", "deadline", "quiet", "yellow", "red"),
    [
        # National Day 2025: 10-01..08 off; Sunday 09-28 and Saturday 10-11 are worked.
        ("2025-09-26", "2025-10-10", ["2025-09-30", "2025-10-05", "2025-10-08"], "2025-10-09",
         "2025-10-11"),
        # Spring Festival 2026: 02-15..23 off; Saturdays 02-14 and 02-28 are worked.
        ("2026-02-12", "2026-02-26", ["2026-02-14", "2026-02-20", "2026-02-24"], "2026-02-25",
         "2026-02-27"),
    ],
)  # fmt: skip
async def test_warnings_count_working_days_across_holidays(
    gql, clock, accepted_on, deadline, quiet, yellow, red
):
    await no_default_approval("project_approval")
    clock.now = at(accepted_on)
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "soil-conservation-approval")
    assert task.deadline == date.fromisoformat(deadline)
    for day in quiet:
        fired = await supervise(now=at(day), settings=SETTINGS)
        assert not [e for e in fired if e.key.startswith(f"task:{task.id}:")], day
    fired = await supervise(now=at(yellow), settings=SETTINGS)
    assert f"task:{task.id}:yellow" in [e.key for e in fired]
    fired = await supervise(now=at(red), settings=SETTINGS)
    assert f"task:{task.id}:red" in [e.key for e in fired]


async def test_stage_deadline_is_watched(gql, clock):
    await no_default_approval("project_approval")
    _, stage = await accepted(gql)
    row = await Stage.get(id=db_id(stage["id"]))
    assert row.deadline == date(2026, 3, 30)  # 20 working days
    fired = await supervise(now=at("2026-03-27"), settings=SETTINGS)
    assert f"stage:{row.id}:yellow" in [e.key for e in fired]
    fired = await supervise(now=at("2026-03-31"), settings=SETTINGS)
    assert f"stage:{row.id}:red" in [e.key for e in fired]
    red = await SupervisionEvent.get(key=f"stage:{row.id}:red")
    assert "立项用地规划许可 阶段 已于 2026-03-30 到期" in red.message


# --- 超时默认 --------------------------------------------------------------------------------


async def test_default_approval_fires_once_with_two_concurrent_scans_and_completes_the_stage(
    gql, clock
):
    _, stage = await accepted(gql)
    stage_id = db_id(stage["id"])
    tasks = await Task.filter(stage_id=stage_id)
    late = at("2026-03-17")  # every promised limit (at most 10 working days) has passed
    first, second = await asyncio.gather(
        supervise(now=late, settings=SETTINGS), supervise(now=late, settings=SETTINGS)
    )
    fired = [e.key for e in first + second]
    assert len(fired) == len(set(fired))
    assert sorted(k for k in fired if k.endswith(":default_approved")) == sorted(
        f"task:{t.id}:default_approved" for t in tasks
    )
    assert await AuditEvent.filter(action="task.default_approve").count() == len(tasks)
    assert await AuditEvent.filter(action="stage.complete").count() == 1
    done = await Stage.get(id=stage_id)
    assert done.status is StageStatus.COMPLETED and done.outcome is Decision.APPROVED
    for task in await Task.filter(stage_id=stage_id).prefetch_related("department"):
        assert task.status is TaskStatus.DECIDED and task.decision is Decision.APPROVED
        assert task.default_approved and task.decided_by_id is None
        assert task.opinion == DEFAULT_OPINION
        assert task.formal_opinion_due == date(2026, 3, 18)
    audit = await AuditEvent.filter(action="task.default_approve").first()
    assert audit is not None and audit.actor_id is None
    assert audit.after is not None and audit.after["department"]
    complete = await AuditEvent.get(action="stage.complete")
    assert complete.actor_id is None
    assert await supervise(now=late, settings=SETTINGS) == []
    assert not await SupervisionEvent.filter(kind="task", level=WarningLevel.RED).exists()


async def test_late_department_files_its_formal_opinion_or_is_flagged(gql, clock):
    _, stage = await accepted(gql)
    await supervise(now=at("2026-03-17"), settings=SETTINGS)
    fgw = await reviewer("fgw")
    own = await Task.filter(stage_id=db_id(stage["id"]), department_id=fgw.department_id).first()
    other = await Task.exclude(department_id=fgw.department_id).first()
    assert own is not None and other is not None
    with pytest.raises(DomainError) as caught:
        await file_formal_opinion(viewer=fgw, task_id=own.id, opinion="  ", now=at("2026-03-18"))
    assert caught.value.code is ErrorCode.INVALID_INPUT
    with pytest.raises(DomainError) as caught:
        await file_formal_opinion(
            viewer=fgw, task_id=other.id, opinion="同意", now=at("2026-03-18")
        )
    assert caught.value.code is ErrorCode.WRONG_DEPARTMENT
    filed = await file_formal_opinion(
        viewer=fgw, task_id=own.id, opinion="同意, 需落实节能措施", now=at("2026-03-18")
    )
    assert filed.formal_opinion_at is not None and "节能措施" in filed.opinion
    assert await AuditEvent.filter(action="task.file_formal_opinion", entity_id=own.id).exists()
    with pytest.raises(DomainError) as caught:
        await file_formal_opinion(viewer=fgw, task_id=own.id, opinion="再次", now=at("2026-03-18"))
    assert caught.value.code is ErrorCode.ALREADY_DECIDED
    assert await supervise(now=at("2026-03-18", 17), settings=SETTINGS) == []  # due today
    fired = await supervise(now=at("2026-03-19"), settings=SETTINGS)
    flagged = {e.entity_id for e in fired if e.kind == "formal_opinion"}
    assert other.id in flagged and own.id not in flagged
    assert all(e.level is WarningLevel.RED for e in fired if e.kind == "formal_opinion")
    assert await supervise(now=at("2026-03-20"), settings=SETTINGS) == []


async def test_formal_opinion_only_after_a_default_approval(gql, clock):
    _, stage = await accepted(gql)
    fgw = await reviewer("fgw")
    own = await Task.filter(stage_id=db_id(stage["id"]), department_id=fgw.department_id).first()
    assert own is not None
    with pytest.raises(DomainError) as caught:
        await file_formal_opinion(viewer=fgw, task_id=own.id, opinion="同意", now=clock())
    assert caught.value.code is ErrorCode.INVALID_STATE
    assert "decide the task instead" in caught.value.message


async def test_item_excluded_by_law_stays_undecided_with_a_red_event(gql, clock):
    _, stage = await advance_to(gql, clock, "construction_permit")
    permit = await task_of(stage["db_id"], "construction-permit")
    item = await ServiceItem.get(code="construction-permit")
    assert item.default_approval is False
    fired = await supervise(now=clock() + timedelta(days=30), settings=SETTINGS)
    await permit.refresh_from_db()
    assert permit.status is TaskStatus.PENDING and not permit.default_approved
    red = next(e for e in fired if e.key == f"task:{permit.id}:red")
    assert "建筑工程施工许可证核发" in red.message and "不适用超时默认" in red.message
    others = await Task.filter(stage_id=stage["db_id"]).exclude(id=permit.id)
    assert others and all(t.default_approved for t in others)
    row = await Stage.get(id=stage["db_id"])
    assert row.status is StageStatus.IN_REVIEW  # the permit is still open
    await decide_task(
        viewer=await reviewer("zjj"),
        task_id=permit.id,
        decision=Decision.APPROVED,
        opinion="",
        now=clock() + timedelta(days=31),
    )
    await row.refresh_from_db()
    assert row.status is StageStatus.COMPLETED


def test_catalog_default_approval_must_be_a_boolean():
    from approval.catalog.parse import default_catalog_path

    text = default_catalog_path().read_text(encoding="utf-8")
    broken = text.replace(
        "    default_approval: false  # 涉及公共安全",
        "    default_approval: maybe  # 涉及公共安全",
        1,
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(broken)
    assert "default_approval" in str(caught.value) and "true or false" in str(caught.value)
    assert caught.value.line is not None


# --- the year end ----------------------------------------------------------------------------


async def test_default_approval_waits_for_next_years_calendar(gql, clock):
    clock.now = at("2026-12-01")
    _, stage = await accepted(gql)
    stage_id = db_id(stage["id"])
    task = await task_of(stage_id, "land-tax-declaration")
    await Task.filter(id=task.id).update(deadline=date(2026, 12, 30))
    others = Task.filter(stage_id=stage_id).exclude(id=task.id)
    await Task.filter(id__in=list(await others.values_list("id", flat=True))).update(
        deadline=date(2027, 1, 5)
    )
    try:
        fired = await supervise(now=at("2026-12-31"), settings=SETTINGS)
        calendar = [e for e in fired if e.kind == "calendar"]
        assert [e.key for e in calendar] == ["calendar:2027:red"]
        assert "2027" in calendar[0].message and "load-holidays" in calendar[0].message
        await task.refresh_from_db()
        assert task.status is TaskStatus.PENDING  # the formal opinion's due day is unknown
        assert await supervise(now=at("2026-12-31", 10), settings=SETTINGS) == []
        await load_holiday_year(HOLIDAYS_2027)
        fired = await supervise(now=at("2026-12-31", 11), settings=SETTINGS)
        assert f"task:{task.id}:default_approved" in [e.key for e in fired]
        await task.refresh_from_db()
        assert task.default_approved and task.formal_opinion_due == date(2027, 1, 4)
        # the others are due Tuesday 5 January: one working day after Monday 4
        fired = await supervise(now=at("2027-01-04"), settings=SETTINGS)
        assert any(e.key.endswith(":yellow") and e.kind == "task" for e in fired)
    finally:
        await forget_year(2027)


# --- 容缺 commitments ------------------------------------------------------------------------


async def _accept_with_commitments(gql, clock, due: str) -> tuple[dict, dict, list[str]]:
    project = await create_project(gql)
    core, non_core = await stage_needs(project["id"], "project_approval")
    for code in core:
        await submit(gql, project["id"], code)
    commitments = [{"materialType": c, "due": due, "signedBy": "张建国"} for c in non_core]
    payload = await accept(gql, project["id"], "project_approval", commitments=commitments)
    assert payload["errors"] == [], payload
    return project, payload["stage"], non_core


async def test_commitment_due_after_the_items_deadline_is_refused(gql, clock):
    project = await create_project(gql)
    core, non_core = await stage_needs(project["id"], "project_approval")
    assert "legal_rep_id" in non_core  # needed by 土地登记 only, promised in 5 working days
    for code in core:
        await submit(gql, project["id"], code)
    commitments = [{"materialType": c, "due": "2026-03-09", "signedBy": "张建国"} for c in non_core]
    late = [{**c, "due": "2026-03-10"} if c["materialType"] == "legal_rep_id" else c
            for c in commitments]  # fmt: skip
    payload = await accept(gql, project["id"], "project_approval", commitments=late)
    [error] = payload["errors"]
    assert error["code"] == "INVALID_INPUT" and error["field"] == "commitments"
    assert "'legal_rep_id' is due 2026-03-10" in error["message"]
    assert "2026-03-09" in error["message"] and "不动产登记" in error["message"]
    assert await Task.all().count() == 0
    payload = await accept(gql, project["id"], "project_approval", commitments=commitments)
    assert payload["errors"] == []


async def test_commitment_reminder_then_suspension_then_arrival_resumes(gql, clock):
    project, stage, non_core = await _accept_with_commitments(gql, clock, "2026-03-06")
    stage_id = db_id(stage["id"])
    materials = await Material.filter(status=MaterialStatus.COMMITTED).prefetch_related(
        "material_type"
    )
    assert len(materials) == len(non_core)
    fired = await supervise(now=at("2026-03-05"), settings=SETTINGS)
    reminders = [e for e in fired if e.kind == "commitment"]
    assert sorted(e.key for e in reminders) == sorted(
        f"commitment:{m.id}:2026-03-06:yellow" for m in materials
    )
    assert all("承诺人 张建国" in e.message for e in reminders)
    fired = await supervise(now=at("2026-03-06"), settings=SETTINGS)  # due today: in time
    assert not [e for e in fired if e.kind == "commitment"]

    fired = await supervise(now=at("2026-03-09"), settings=SETTINGS)  # Monday: passed
    reds = [e for e in fired if e.kind == "commitment"]
    assert len(reds) == len(materials) and all(e.level is WarningLevel.RED for e in reds)
    assert all("已中止" in e.message for e in reds)
    row = await Stage.get(id=stage_id)
    assert row.status is StageStatus.SUSPENDED
    suspend = await AuditEvent.get(action="stage.suspend", entity_id=stage_id)
    assert suspend.actor_id is None
    # land-tax-declaration was due on 3 March: default-approved on the 5th, before the stop
    decided = await Task.filter(stage_id=stage_id, default_approved=True).values_list(
        "item__code", flat=True
    )
    assert decided == ["land-tax-declaration"]
    tasks = await Task.filter(stage_id=stage_id, default_approved=False)
    assert tasks and all(t.paused_at is not None for t in tasks)
    assert await supervise(now=at("2026-03-09", 15), settings=SETTINGS) == []
    assert await AuditEvent.filter(action="stage.suspend").count() == 1

    fgw = await reviewer("fgw")
    own = next(t for t in tasks if t.department_id == fgw.department_id)
    with pytest.raises(DomainError) as caught:
        await decide_task(
            viewer=fgw, task_id=own.id, decision=Decision.APPROVED, opinion="", now=at("2026-03-10")
        )
    assert caught.value.code is ErrorCode.INVALID_STATE
    assert "suspended" in caught.value.message and "delivers the material" in caught.value.message
    # nothing is default-approved or flagged while suspended, however late
    fired = await supervise(now=at("2026-04-30"), settings=SETTINGS)
    assert not [e for e in fired if e.kind in ("task", "default_approval")]

    clerk = await _clerk()
    deadlines = {t.id: t.deadline for t in tasks}
    for material in materials[:-1]:
        await submit_material(
            viewer=clerk,
            project_id=db_id(project["id"]),
            material_type_code=material.material_type.code,
            file=MaterialFile(file_name="补交.pdf"),
            now=at("2026-03-12"),
        )
    await row.refresh_from_db()
    assert row.status is StageStatus.SUSPENDED  # one commitment is still overdue
    await submit_material(
        viewer=clerk,
        project_id=db_id(project["id"]),
        material_type_code=materials[-1].material_type.code,
        file=MaterialFile(file_name="补交.pdf"),
        now=at("2026-03-12"),
    )
    await row.refresh_from_db()
    assert row.status is StageStatus.IN_REVIEW
    assert await AuditEvent.filter(action="stage.resume", entity_id=stage_id).count() == 1
    # suspended from Monday 9 to Thursday 12 March: 3 working days (10, 11, 12) do not count
    calendar = await working_calendar(years=[2026])
    for task in await Task.filter(stage_id=stage_id, default_approved=False):
        assert task.paused_at is None
        assert task.deadline == calendar.add_working_days(deadlines[task.id], 3), task.id
    pauses = await TaskPause.filter(task__stage_id=stage_id)
    assert pauses and all(p.reason == "stage_suspended" and p.working_days == 3 for p in pauses)
    await decide_task(
        viewer=fgw, task_id=own.id, decision=Decision.APPROVED, opinion="", now=at("2026-03-12")
    )


async def _clerk():
    from approval.core.access import Viewer
    from storage.enums import Role
    from storage.models import User

    user = await User.get(username="clerk")
    return Viewer(user_id=user.id, username=user.username, role=Role.WINDOW_CLERK)


# --- GraphQL ---------------------------------------------------------------------------------

EVENTS = """
query($level: WarningLevel, $kind: String, $department: String, $after: String) {
  supervisionEvents(first: 2, level: $level, kind: $kind, department: $department, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { key kind level levelLabel message departmentCode projectName } }
  }
}"""


async def test_supervision_events_query_scopes_by_role(gql, clock):
    await no_default_approval("project_approval")
    await accepted(gql)
    await supervise(now=at("2026-03-17"), settings=SETTINGS)
    total = await SupervisionEvent.all().count()
    body = await gql(EVENTS, as_="supervisor")
    connection = body["data"]["supervisionEvents"]
    assert connection["totalCount"] == total and connection["pageInfo"]["hasNextPage"]
    after = connection["pageInfo"]["endCursor"]
    body = await gql(EVENTS, {"after": after}, as_="supervisor")
    assert body["data"]["supervisionEvents"]["edges"]
    body = await gql(EVENTS, {"level": "RED", "kind": "task"}, as_="supervisor")
    reds = body["data"]["supervisionEvents"]
    assert reds["totalCount"] == await SupervisionEvent.filter(kind="task", level="red").count()
    node = reds["edges"][0]["node"]
    assert node["level"] == "RED" and node["projectName"].startswith("德州市")
    body = await gql(EVENTS, as_="fgw")
    own = body["data"]["supervisionEvents"]
    assert own["totalCount"] == await SupervisionEvent.filter(department__code="fgw").count() > 0
    assert all(e["node"]["departmentCode"] == "fgw" for e in own["edges"])
    body = await gql(EVENTS, {"department": "fgw"}, as_="supervisor")
    assert body["data"]["supervisionEvents"]["totalCount"] == own["totalCount"]
    body = await gql(EVENTS, as_="clerk")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(EVENTS, {"kind": "weather"}, as_="supervisor")
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


FORMAL = """
mutation($input: FileFormalOpinionInput!) {
  fileFormalOpinion(input: $input) {
    task { id defaultApproved formalOpinionDue opinion status } errors { code message }
  }
}"""


async def test_file_formal_opinion_through_graphql(gql, clock):
    _, stage = await accepted(gql)
    clock.now = at("2026-03-17")
    await supervise(now=clock(), settings=SETTINGS)
    task = await Task.filter(stage_id=db_id(stage["id"]), department__code="fgw").first()
    assert task is not None
    task_id = next(t["id"] for t in stage["tasks"] if db_id(t["id"]) == task.id)
    body = await gql(FORMAL, {"input": {"taskId": task_id, "opinion": "同意"}}, as_="fgw")
    payload = body["data"]["fileFormalOpinion"]
    assert payload["errors"] == []
    assert payload["task"]["defaultApproved"] is True
    assert payload["task"]["formalOpinionDue"] == "2026-03-18"
    assert payload["task"]["opinion"].endswith("正式意见: 同意")
    body = await gql(FORMAL, {"input": {"taskId": task_id, "opinion": "同意"}}, as_="zrzy")
    assert body["data"]["fileFormalOpinion"]["errors"][0]["code"] == "WRONG_DEPARTMENT"
