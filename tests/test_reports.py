"""Supervisor views: warnings and overdue, department figures, stage durations, the ledger."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from starlette.applications import Starlette

from approval.core.access import Viewer
from approval.core.auth import viewer_of
from approval.core.errors import DomainError, ErrorCode
from approval.oversight.reports import (
    FORMULA_STARTS,
    LEDGER_HEADERS,
    LedgerRow,
    department_figures,
    ledger_rows,
    ledger_xlsx,
    overdue,
    stage_durations,
    warnings,
)
from approval.projects.tasks import decide_task
from server.pages import page_routes
from storage.enums import Decision, StageStatus, TaskStatus, WarningLevel
from storage.models import AuditEvent, Department, Stage, SupervisionEvent, Task, User
from tests.conftest import Clock, GraphQLClient
from tests.helpers import accept, create_project, db_id, ready_stage
from tests.test_stages_api import reviewer

CHINA = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=CHINA)


async def supervisor() -> Viewer:
    return await viewer_of(await User.get(username="supervisor"))


async def accepted_project(gql: GraphQLClient) -> dict:
    """A project whose first stage the window accepted on Monday 2 March 2026."""
    project = await create_project(gql)
    await ready_stage(gql, project["id"], "project_approval")
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    return project


async def task_of(project: dict, item_code: str) -> Task:
    return await Task.get(stage__project_id=db_id(project["id"]), item__code=item_code)


# --- warnings and overdue ----------------------------------------------------------------------

ALERTS = """
query($days: Int!) {
  warnings(withinDays: $days) { tasks { itemCode workingDaysLeft level levelLabel }
                                events { key levelLabel message } }
  overdue { tasks { itemCode } events { key } }
}"""


async def test_warnings_and_overdue_from_tasks_and_stored_events(gql, clock: Clock) -> None:
    project = await accepted_project(gql)
    tasks = await Task.filter(stage__project_id=db_id(project["id"])).select_related("item")
    # Friday 6 March: promised 5 working days → due Monday 9 March, one working day away;
    # promised 7 → Wednesday 11 March, three away; promised 1 → Tuesday 3 March, overdue by 3.
    clock.now = at(6)
    due_soon = {t.item.code for t in tasks if t.item.promised_days == 5}
    assert len(due_soon) == 6
    result = await warnings(viewer=await supervisor(), now=clock(), within_days=1)
    assert {a.item_code for a in result.tasks} == due_soon
    energy = next(a for a in result.tasks if a.item_code == "energy-review")
    assert energy.working_days_left == 1 and energy.level is WarningLevel.YELLOW
    assert energy.level_label == "黄色预警" and energy.deadline.isoformat() == "2026-03-09"
    wider = await warnings(viewer=await supervisor(), now=clock(), within_days=3)
    assert {a.item_code for a in wider.tasks} == due_soon | {
        "government-project-proposal",
        "government-feasibility-study",
    }
    [tax] = (await overdue(viewer=await supervisor(), now=clock())).tasks
    assert (tax.item_code, tax.working_days_left) == ("land-tax-declaration", -3)

    # decided and paused tasks neither warn nor run late
    await decide_task(
        viewer=await reviewer("fgw"),
        task_id=(await task_of(project, "energy-review")).id,
        decision=Decision.APPROVED,
        opinion="",
        now=at(6, 11),
    )
    await Task.filter(id=(await task_of(project, "seismic-safety-evaluation")).id).update(
        paused_at=at(6, 11)
    )
    clock.now = at(11)  # Wednesday: 9 March passed two working days ago
    late = await overdue(viewer=await supervisor(), now=clock())
    expected = due_soon - {"energy-review", "seismic-safety-evaluation"}
    days_left = {a.item_code: a.working_days_left for a in late.tasks}
    assert days_left == {"land-tax-declaration": -6, **dict.fromkeys(expected, -2)}
    assert all(a.level is WarningLevel.RED for a in late.tasks)
    expected.add("land-tax-declaration")

    project_id = db_id(project["id"])
    fgw = await Department.get(code="fgw")
    await SupervisionEvent.create(
        key="test:yellow", kind="task", level=WarningLevel.YELLOW, entity_type="task",
        entity_id=1, project_id=project_id, department_id=fgw.id, message="将于明日到期",
        at=at(10),
    )  # fmt: skip
    await SupervisionEvent.create(
        key="test:red", kind="task", level=WarningLevel.RED, entity_type="task",
        entity_id=1, project_id=project_id, department_id=fgw.id, message="已超期", at=at(11),
    )  # fmt: skip
    body = await gql(ALERTS, {"days": 1}, as_="supervisor")
    assert "errors" not in body, body
    data = body["data"]
    assert [e["key"] for e in data["warnings"]["events"]] == ["test:yellow"]
    assert data["warnings"]["events"][0]["levelLabel"] == "黄色预警"
    assert [e["key"] for e in data["overdue"]["events"]] == ["test:red"]
    assert {t["itemCode"] for t in data["overdue"]["tasks"]} == expected

    body = await gql(ALERTS, {"days": 1}, as_="fgw")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- department figures --------------------------------------------------------------------------


async def decided_set(gql: GraphQLClient) -> dict:
    """Accepted Mon 2 March; hand-computed working days (no holiday in March 2026):

    fgw  government-project-proposal  deadline 11 Mar, decided Wed 4 Mar   2 days  on time
    fgw  energy-review                deadline  9 Mar, decided Tue 10 Mar  6 days  late
    fgw  government-feasibility-study deadline 11 Mar, 超时默认 Thu 12 Mar 8 days  not on time
    zrzy land-preexamination-...      decided Tue 3 Mar                    1 day   on time
    """
    project = await accepted_project(gql)
    fgw = await reviewer("fgw")
    for item, when in (("government-project-proposal", at(4)), ("energy-review", at(10))):
        task = await task_of(project, item)
        await decide_task(
            viewer=fgw, task_id=task.id, decision=Decision.APPROVED, opinion="", now=when
        )
    feasibility = await task_of(project, "government-feasibility-study")
    assert feasibility.deadline.isoformat() == "2026-03-11"
    await Task.filter(id=feasibility.id).update(
        status=TaskStatus.DECIDED,
        decision=Decision.APPROVED,
        default_approved=True,
        decided_at=at(12, 0),
    )
    land = await task_of(project, "land-preexamination-site-selection")
    await decide_task(
        viewer=await reviewer("zrzy"),
        task_id=land.id,
        decision=Decision.APPROVED_WITH_CONDITIONS,
        opinion="按红线图核定",
        now=at(3),
    )
    return project


async def test_department_figures_equal_hand_computed_values(gql, clock: Clock) -> None:
    project = await decided_set(gql)
    figures = {
        f.department_code: f
        for f in await department_figures(viewer=await supervisor(), now=at(20))
    }
    fgw = figures["fgw"]
    assert (fgw.decided, fgw.on_time, fgw.default_approved) == (3, 1, 1)
    assert fgw.on_time_rate == pytest.approx(1 / 3)
    assert fgw.average_working_days == pytest.approx(round((2 + 6 + 8) / 3, 2))
    assert (fgw.open_now, fgw.overdue_now) == (0, 0)
    zrzy = figures["zrzy"]
    assert (zrzy.decided, zrzy.on_time, zrzy.default_approved) == (1, 1, 0)
    assert zrzy.on_time_rate == 1.0 and zrzy.average_working_days == 1.0
    open_zrzy = await Task.filter(
        stage__project_id=db_id(project["id"]), department__code="zrzy", decided_at__isnull=True
    )
    assert zrzy.open_now == len(open_zrzy) >= 1
    assert zrzy.overdue_now == sum(1 for t in open_zrzy if t.deadline.isoformat() < "2026-03-20")
    # departments with only open tasks are listed with nothing decided
    sthj = figures["sthj"]
    assert sthj.decided == 0 and sthj.on_time_rate is None and sthj.average_working_days is None

    april = {
        f.department_code: f
        for f in await department_figures(viewer=await supervisor(), now=at(20), month="2026-04")
    }
    assert "fgw" not in april  # nothing decided in April, nothing open
    assert april["zrzy"].decided == 0 and april["zrzy"].open_now == zrzy.open_now
    body = await gql(
        """query { departmentFigures(month: "2026-03") {
             departmentCode decided onTime onTimeRate defaultApproved averageWorkingDays } }""",
        as_="supervisor",
    )
    row = next(r for r in body["data"]["departmentFigures"] if r["departmentCode"] == "fgw")
    assert row == {
        "departmentCode": "fgw",
        "decided": 3,
        "onTime": 1,
        "onTimeRate": pytest.approx(1 / 3),
        "defaultApproved": 1,
        "averageWorkingDays": 5.33,
    }
    with pytest.raises(DomainError) as caught:
        await department_figures(viewer=await supervisor(), now=at(20), month="2026-3")
    assert caught.value.code is ErrorCode.INVALID_INPUT and caught.value.field == "month"


# --- stage durations -----------------------------------------------------------------------------


async def test_stage_durations_across_projects(gql, clock: Clock) -> None:
    first, second, third = [await create_project(gql, name=f"德州测试项目{n}") for n in range(3)]
    spans = {
        first["id"]: (at(2), at(13, 16)),  # 9 working days
        second["id"]: (at(9), at(11, 17)),  # 2 working days
    }
    for project_id, (accepted, completed) in spans.items():
        await Stage.filter(
            project_id=db_id(project_id), definition__code="project_approval"
        ).update(
            status=StageStatus.COMPLETED,
            outcome=Decision.APPROVED,
            accepted_at=accepted,
            completed_at=completed,
            round=1,
        )
    await Stage.filter(project_id=db_id(third["id"]), definition__code="project_approval").update(
        status=StageStatus.IN_REVIEW, accepted_at=at(16), round=1, deadline=at(18).date()
    )
    rows = {r.stage_code: r for r in await stage_durations(viewer=await supervisor(), now=at(20))}
    approval = rows["project_approval"]
    assert (approval.completed, approval.max_working_days) == (2, 9)
    assert approval.average_working_days == 5.5
    assert (approval.open_now, approval.overdue_now) == (1, 1)
    assert approval.time_limit_days == 20
    planning = rows["engineering_permit"]
    assert (planning.completed, planning.average_working_days, planning.open_now) == (0, None, 0)

    april = await stage_durations(viewer=await supervisor(), now=at(20), month="2026-04")
    assert april[0].completed == 0 and april[0].open_now == 1
    body = await gql(
        """query { stageDurations(month: "2026-03") {
             stageCode completed averageWorkingDays maxWorkingDays openNow } }""",
        as_="supervisor",
    )
    assert body["data"]["stageDurations"][0] == {
        "stageCode": "project_approval",
        "completed": 2,
        "averageWorkingDays": 5.5,
        "maxWorkingDays": 9,
        "openNow": 1,
    }


# --- the ledger ----------------------------------------------------------------------------------


@pytest.fixture
async def pages(gql: GraphQLClient, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=page_routes(clock=clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def read_xlsx(data: bytes) -> list[tuple]:
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook["台账"]
    return list(sheet.iter_rows(values_only=True))


async def test_ledger_rows_and_excel(gql, clock: Clock) -> None:
    project = await decided_set(gql)
    idle = await create_project(gql, name="尚未受理的项目")
    rows = await ledger_rows(viewer=await supervisor(), now=at(20))
    tasks = await Task.filter(stage__project_id=db_id(project["id"])).count()
    # the accepted project: one row per task, plus one per stage without tasks; the idle one: 4
    assert len(rows) == tasks + 3 + 4
    proposal = next(r for r in rows if r.item_name == "政府投资项目建议书审批")
    assert proposal.project_code == project["code"]
    assert (proposal.working_days, proposal.on_time, proposal.default_approved) == (2, "是", "否")
    feasibility = next(r for r in rows if r.default_approved == "是")
    assert (feasibility.working_days, feasibility.on_time) == (8, "否")
    assert {r.stage_status for r in rows if r.project_code == idle["code"]} == {"未受理"}

    table = read_xlsx(ledger_xlsx(rows))
    assert table[0] == LEDGER_HEADERS
    assert len(table) == len(rows) + 1
    assert {row[0] for row in table[1:]} == {project["code"], idle["code"]}

    march = await ledger_rows(viewer=await supervisor(), now=at(20), month="2026-03")
    assert {r.project_code for r in march} == {project["code"]}
    assert len(march) == tasks


HOSTILE = (
    '=HYPERLINK("http://evil.example","点击")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
)


@pytest.mark.parametrize("text", HOSTILE)
async def test_no_text_in_the_ledger_becomes_a_formula(gql, text: str) -> None:
    """Every text cell (names come from applicants) stays text, whatever it starts with."""
    await create_project(gql, name=text, enterpriseName=text, address=text)
    rows = await ledger_rows(viewer=await supervisor(), now=at(20))
    hostile = LedgerRow(
        **{
            name: (text if isinstance(value, str) else value)
            for name, value in vars(rows[0]).items()
        }
    )
    workbook = load_workbook(io.BytesIO(ledger_xlsx([*rows, hostile])))
    cells = [cell for row in workbook["台账"].iter_rows(min_row=2) for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    # XML keeps a CR as a line feed; either way the cell is text that starts with an apostrophe
    texts = [str(cell.value).replace("\n", "\r") for cell in cells if cell.data_type == "s"]
    assert "'" + text in texts
    assert all(not str(value).startswith(FORMULA_STARTS) for value in texts)
    assert texts.count("'" + text) >= sum(value == text for value in vars(hostile).values())


async def test_ledger_download_is_for_supervisors(gql, pages: httpx.AsyncClient) -> None:
    project = await decided_set(gql)
    response = await pages.get(
        "/ledger.xlsx",
        params={"month": "2026-03"},
        headers={"Authorization": f"Bearer {gql.tokens['supervisor']}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "ledger-2026-03.xlsx" in response.headers["content-disposition"]
    table = read_xlsx(response.content)
    assert table[0] == LEDGER_HEADERS and table[1][0] == project["code"]
    [export] = await AuditEvent.filter(action="ledger.export")
    assert export.actor_id == (await User.get(username="supervisor")).id
    assert export.after == {"month": "2026-03", "rows": len(table) - 1, "by": "supervisor"}

    forbidden = await pages.get(
        "/ledger.xlsx", headers={"Authorization": f"Bearer {gql.tokens['clerk']}"}
    )
    assert forbidden.status_code == 403
    bad = await pages.get(
        "/ledger.xlsx",
        params={"month": "March"},
        headers={"Authorization": f"Bearer {gql.tokens['supervisor']}"},
    )
    assert bad.status_code == 400 and "YYYY-MM" in bad.text
    assert (await pages.get("/ledger.xlsx")).status_code == 401


async def test_export_ledger_command(gql, database: str, tmp_path: Path) -> None:
    project = await decided_set(gql)
    out = tmp_path / "台账.xlsx"
    result = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-m", "server.cli", "export-ledger", str(out), "--month", "2026-03"],
        capture_output=True,
        text=True,
        env={**os.environ, "ONEWINDOW_DATABASE_URL": database},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ledger: month 2026-03"
    assert any(line.strip().startswith("read 1 project(s)") for line in lines)
    assert lines[-1].startswith("export-ledger: ") and str(out) in lines[-1]
    table = read_xlsx(out.read_bytes())
    assert table[0] == LEDGER_HEADERS and {row[0] for row in table[1:]} == {project["code"]}

    bad = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-m", "server.cli", "export-ledger", str(out), "--month", "3/2026"],
        capture_output=True,
        text=True,
        env={**os.environ, "ONEWINDOW_DATABASE_URL": database},
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: month '3/2026' is not YYYY-MM")
