"""Clock stops (行政许可法 Art. 45): paused working days move the deadline later."""

from __future__ import annotations

from datetime import date

import pytest

from approval.core.calendar import load_holiday_year
from approval.core.errors import DomainError, ErrorCode
from approval.oversight.supervision import SupervisionSettings, supervise
from approval.projects.tasks import pause_task, request_supplement, resume_task
from storage.enums import StageStatus, TaskStatus
from storage.models import AuditEvent, Material, Stage, Task, TaskPause
from tests.helpers import db_id, submit
from tests.supervision_support import (
    HOLIDAYS_2027,
    accepted,
    at,
    forget_year,
    reviewer,
    task_of,
)

SETTINGS = SupervisionSettings()


async def test_pause_over_national_day_moves_the_deadline_by_the_paused_working_days(gql, clock):
    clock.now = at("2025-09-22")  # Monday
    _, stage = await accepted(gql)
    stage_id = db_id(stage["id"])
    task = await task_of(stage_id, "energy-review")
    assert task.deadline == date(2025, 9, 28)  # 5 working days; Sunday 28 September is worked
    fgw = await reviewer("fgw")
    paused = await pause_task(
        viewer=fgw,
        task_id=task.id,
        reason="expert_review",
        note="组织专家评审",
        now=at("2025-09-25"),
    )
    assert paused.paused_at is not None
    assert await AuditEvent.filter(action="task.pause", entity_id=task.id).exists()

    # while paused: never flagged, never default-approved, though its deadline passed
    fired = await supervise(now=at("2025-10-01"), settings=SETTINGS)
    assert not [e for e in fired if e.key.startswith(f"task:{task.id}:")]
    await task.refresh_from_db()
    assert task.status is TaskStatus.PENDING and not task.default_approved
    late = await Task.filter(stage_id=stage_id, deadline__lt=date(2025, 10, 1)).exclude(id=task.id)
    assert late and all(t.default_approved for t in late)
    assert (await Stage.get(id=stage_id)).status is StageStatus.IN_REVIEW

    resumed = await resume_task(viewer=fgw, task_id=task.id, now=at("2025-10-09"))
    # 26, 28 (Sunday, worked), 29, 30 September and 9 October stood still: 5 working days;
    # 28 Sept + 5 = 29, 30 Sept, 9, 10 Oct and Saturday 11 October (worked)
    assert resumed.deadline == date(2025, 10, 11) and resumed.paused_at is None
    [pause] = await TaskPause.filter(task_id=task.id)
    assert pause.reason == "expert_review" and pause.note == "组织专家评审"
    assert pause.working_days == 5 and pause.ended_at == at("2025-10-09")
    resume = await AuditEvent.get(action="task.resume", entity_id=task.id)
    assert resume.before == {"paused": True, "reason": "expert_review", "deadline": "2025-09-28"}
    assert resume.after is not None and resume.after["deadline"] == "2025-10-11"
    fired = await supervise(now=at("2025-10-10"), settings=SETTINGS)
    assert f"task:{task.id}:yellow" in [e.key for e in fired]
    await supervise(now=at("2025-10-13"), settings=SETTINGS)
    await task.refresh_from_db()
    assert task.default_approved
    assert (await Stage.get(id=stage_id)).status is StageStatus.COMPLETED


async def test_pause_over_spring_festival(gql, clock):
    clock.now = at("2026-02-10")
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "energy-review")
    fgw = await reviewer("fgw")
    await pause_task(viewer=fgw, task_id=task.id, reason="hearing", note="", now=at("2026-02-13"))
    before = (await Task.get(id=task.id)).deadline
    resumed = await resume_task(viewer=fgw, task_id=task.id, now=at("2026-02-24"))
    # Saturday 14 February (worked) and Tuesday 24: 2 working days; 15..23 were holidays
    pause = await TaskPause.get(task_id=task.id)
    assert pause.working_days == 2
    assert before == date(2026, 2, 24)
    assert resumed.deadline == date(2026, 2, 26)


async def test_clock_stops_are_checked(gql, clock):
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "energy-review")
    fgw, zrzy = await reviewer("fgw"), await reviewer("zrzy")
    with pytest.raises(DomainError) as caught:
        await pause_task(viewer=zrzy, task_id=task.id, reason="testing", note="", now=clock())
    assert caught.value.code is ErrorCode.WRONG_DEPARTMENT
    with pytest.raises(DomainError) as caught:
        await pause_task(viewer=fgw, task_id=task.id, reason="holiday", note="", now=clock())  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_INPUT and "expert_review" in caught.value.message
    with pytest.raises(DomainError) as caught:
        await resume_task(viewer=fgw, task_id=task.id, now=clock())
    assert caught.value.code is ErrorCode.INVALID_STATE and "running" in caught.value.message
    await pause_task(viewer=fgw, task_id=task.id, reason="testing", note="", now=clock())
    with pytest.raises(DomainError) as caught:
        await pause_task(viewer=fgw, task_id=task.id, reason="hearing", note="", now=clock())
    assert (
        caught.value.code is ErrorCode.INVALID_STATE and "already stopped" in caught.value.message
    )
    resumed = await resume_task(viewer=fgw, task_id=task.id, now=clock())
    assert resumed.deadline == task.deadline  # same day: no working day stood still


async def test_supplement_request_stops_the_clock_until_the_material_arrives(gql, clock):
    project, stage = await accepted(gql)  # Monday 2 March 2026
    task = await task_of(db_id(stage["id"]), "energy-review")
    assert task.deadline == date(2026, 3, 9)
    material = await Material.filter(
        project_id=db_id(project["id"]), material_type__code="energy_report"
    ).first()
    assert material is not None
    await request_supplement(
        viewer=await reviewer("fgw"),
        task_id=task.id,
        reason="节能报告缺少能耗计算",
        material_type_code="energy_report",
        now=at("2026-03-03"),
    )
    await task.refresh_from_db()
    assert task.status is TaskStatus.SUPPLEMENT_REQUESTED and task.paused_at is not None
    pause = await TaskPause.get(task_id=task.id)
    assert pause.reason == "supplement" and "能耗" in pause.note
    clock.now = at("2026-03-06")  # Friday: 4, 5 and 6 March stood still
    await submit(gql, project["id"], "energy_report", as_="agent")
    await task.refresh_from_db()
    assert task.status is TaskStatus.PENDING and task.paused_at is None
    assert task.deadline == date(2026, 3, 12)
    await pause.refresh_from_db()
    assert pause.working_days == 3
    submitted = await AuditEvent.filter(action="material.submit").order_by("-id").first()
    assert submitted is not None and submitted.after is not None
    assert submitted.after["restartedClocks"] == [task.id]


async def test_resuming_a_supplement_pause_by_hand_accepts_the_supplement(gql, clock):
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "energy-review")
    fgw = await reviewer("fgw")
    await request_supplement(
        viewer=fgw,
        task_id=task.id,
        reason="补充说明",
        material_type_code=None,
        now=at("2026-03-03"),
    )
    resumed = await resume_task(viewer=fgw, task_id=task.id, now=at("2026-03-04"))
    assert resumed.status is TaskStatus.PENDING and resumed.deadline == date(2026, 3, 10)


async def test_resume_across_the_year_end_needs_next_years_calendar(gql, clock):
    clock.now = at("2026-12-01")
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "energy-review")
    assert task.deadline == date(2026, 12, 8)
    fgw = await reviewer("fgw")
    await pause_task(viewer=fgw, task_id=task.id, reason="testing", note="", now=at("2026-12-07"))
    try:
        with pytest.raises(DomainError) as caught:
            await resume_task(viewer=fgw, task_id=task.id, now=at("2027-01-05"))
        assert caught.value.code is ErrorCode.CALENDAR_UNKNOWN
        assert "2027" in caught.value.message and "load-holidays" in caught.value.message
        await task.refresh_from_db()
        assert task.paused_at is not None and task.deadline == date(2026, 12, 8)
        await load_holiday_year(HOLIDAYS_2027)
        resumed = await resume_task(viewer=fgw, task_id=task.id, now=at("2027-01-05"))
        # 8..31 December: 18 working days; 1 January is a holiday; 4 and 5 January: 20 in all
        assert (await TaskPause.get(task_id=task.id)).working_days == 20
        # 8 December + 20 working days: 9..31 December (17), 4, 5, 6 January
        assert resumed.deadline == date(2027, 1, 6)
    finally:
        await forget_year(2027)


PAUSE = """
mutation($input: PauseTaskInput!) {
  pauseTask(input: $input) { task { id paused overdue deadline } errors { code field message } }
}"""
RESUME = """
mutation($input: ResumeTaskInput!) {
  resumeTask(input: $input) { task { id paused overdue deadline } stage { status }
    errors { code field message } }
}"""


async def test_pause_and_resume_through_graphql(gql, clock):
    _, stage = await accepted(gql)
    task = await task_of(db_id(stage["id"]), "energy-review")
    task_id = next(t["id"] for t in stage["tasks"] if db_id(t["id"]) == task.id)
    body = await gql(
        PAUSE,
        {"input": {"taskId": task_id, "reason": "EXPERT_REVIEW", "note": "专家评审"}},
        as_="fgw",
    )
    payload = body["data"]["pauseTask"]
    assert payload["errors"] == [] and payload["task"]["paused"] is True
    clock.now = at("2026-03-16")  # long past the deadline of 9 March, but the clock is stopped
    body = await gql(PAUSE, {"input": {"taskId": task_id, "reason": "HEARING"}}, as_="fgw")
    assert body["data"]["pauseTask"]["errors"][0]["code"] == "INVALID_STATE"
    body = await gql(RESUME, {"input": {"taskId": task_id}}, as_="zrzy")
    assert body["data"]["resumeTask"]["errors"][0]["code"] == "WRONG_DEPARTMENT"
    body = await gql(RESUME, {"input": {"taskId": task_id}}, as_="fgw")
    payload = body["data"]["resumeTask"]
    assert payload["errors"] == []
    # 3..6 and 9..13 March and 16 March stood still: 10 working days
    assert payload["task"] == {
        "id": task_id,
        "paused": False,
        "overdue": False,
        "deadline": "2026-03-23",
    }
    assert payload["stage"]["status"] == "IN_REVIEW"
