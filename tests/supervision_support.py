"""Steps the supervision, lease and clock-stop tests share."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from approval.core.access import Viewer
from approval.projects.tasks import decide_task
from approval.review.rules import OPEN
from storage.enums import Decision, Role
from storage.models import CalendarDay, CalendarYear, Department, Stage, Task, User
from tests.helpers import accept, create_project, db_id, ready_stage

CHINA = ZoneInfo("Asia/Shanghai")

# An admin's holiday file for 2027 (the chinese-calendar package stops at 2026).
HOLIDAYS_2027 = """year,2027
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-13,holiday,春节
2027-02-20,workday,春节调休
"""


def at(day: str, hour: int = 9) -> datetime:
    """A moment in Dezhou on ``day`` (YYYY-MM-DD)."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CHINA).replace(hour=hour)


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


async def accepted(gql: Any, stage_code: str = "project_approval") -> tuple[dict, dict]:
    """A new project with the first stage accepted at the clock's time."""
    project = await create_project(gql)
    await ready_stage(gql, project["id"], stage_code)
    payload = await accept(gql, project["id"], stage_code)
    assert payload["errors"] == [], payload
    return project, payload["stage"]


async def approve_open_tasks(stage_id: int, now: datetime) -> None:
    for task in await Task.filter(stage_id=stage_id, status__in=OPEN).prefetch_related(
        "department"
    ):
        await decide_task(
            viewer=await reviewer(task.department.code),
            task_id=task.id,
            decision=Decision.APPROVED,
            opinion="",
            now=now,
        )


async def advance_to(gql: Any, clock: Any, stage_code: str) -> tuple[dict, dict]:
    """A project whose earlier stages are approved and ``stage_code`` is accepted now."""
    project = await create_project(gql)
    order = ["project_approval", "engineering_permit", "construction_permit"]
    for code in order[: order.index(stage_code) + 1]:
        await ready_stage(gql, project["id"], code)
        payload = await accept(gql, project["id"], code)
        assert payload["errors"] == [], payload
        if code != stage_code:
            await approve_open_tasks(db_id(payload["stage"]["id"]), clock())
    stage = await Stage.get(project_id=db_id(project["id"]), definition__code=stage_code)
    return project, {"id": payload["stage"]["id"], "db_id": stage.id}


async def task_of(stage_id: int, item_code: str) -> Task:
    return await Task.get(stage_id=stage_id, item__code=item_code).prefetch_related("department")


async def forget_year(year: int) -> None:
    """Remove an admin-loaded year again, so other tests see it unknown."""
    await CalendarDay.filter(day__gte=date(year, 1, 1), day__lte=date(year, 12, 31)).delete()
    await CalendarYear.filter(year=year).delete()
