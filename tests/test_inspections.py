"""Inspections: 现场踏勘 deadlines, 联合验收 rounds, re-inspection, and who may open documents."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from approval.core.auth import issue_token
from approval.core.errors import DomainError, ErrorCode
from approval.fieldwork.documents import agency_doc_name, inspection_doc_name
from approval.fieldwork.inspections import (
    FieldRights,
    assign_inspectors,
    document_access,
    file_conclusion,
    inspection_layout,
    schedule_joint_acceptance,
    schedule_reinspection,
    schedule_site_check,
)
from storage.enums import (
    Conclusion,
    Decision,
    InspectionKind,
    InspectionStatus,
    ProjectStatus,
    Role,
    StageStatus,
    TaskStatus,
)
from storage.models import (
    AuditEvent,
    CheckResult,
    Inspection,
    InspectionAssignment,
    InspectionDepartment,
    Project,
    Stage,
    Task,
    User,
)
from tests.fieldwork_support import (
    approve_open_tasks,
    at_acceptance,
    clerk,
    inspector,
    person,
    reviewer,
    stage_departments,
    supervisor,
)
from tests.helpers import create_project, db_id

CHINA = ZoneInfo("Asia/Shanghai")
THREE = ["zrzy", "zjj", "rfb"]


async def joint_acceptance(gql, clock, departments=None):
    project, stage = await at_acceptance(gql, clock)
    codes = departments or THREE
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=codes,
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    viewers = {code: await inspector(code) for code in codes}
    await assign_inspectors(
        viewer=await clerk(),
        inspection_id=inspection.id,
        usernames=[v.username for v in viewers.values()],
        now=clock(),
    )
    return project, stage, inspection, viewers


async def test_site_check_is_due_three_working_days_after_the_request_across_a_holiday(gql, clock):
    clock.now = datetime(2026, 4, 2, 9, tzinfo=CHINA)  # Thursday before 清明 (4-6 April)
    project = await create_project(gql)
    inspection = await schedule_site_check(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zrzy"],
        now=clock(),
    )
    # Friday 3 April, then Tuesday 7 and Wednesday 8: the holiday Monday does not count.
    assert inspection.due == date(2026, 4, 8)
    assert inspection.kind is InspectionKind.SITE_CHECK and inspection.round == 1
    assert inspection.status is InspectionStatus.SCHEDULED and inspection.stage_id is None
    layout = await inspection_layout(inspection.id)
    assert set(layout.departments) == {"zrzy"}
    assert "setback" in layout.departments["zrzy"] and "boundary" in layout.departments["zrzy"]
    event = await AuditEvent.get(action="inspection.schedule")
    assert event.after is not None and event.after["due"] == "2026-04-08"


async def test_site_check_in_a_year_without_calendar_is_refused(gql, clock):
    clock.now = datetime(2026, 12, 29, 9, tzinfo=CHINA)
    project = await create_project(gql)
    with pytest.raises(DomainError) as refused:
        await schedule_site_check(
            viewer=await clerk(),
            project_id=db_id(project["id"]),
            department_codes=["zrzy"],
            now=clock(),
        )
    assert refused.value.code is ErrorCode.CALENDAR_UNKNOWN and "2027" in refused.value.message
    assert not await Inspection.exists()


async def test_site_check_requests_are_checked(gql, clock):
    project = await create_project(gql)
    pid = db_id(project["id"])
    for codes, message in (
        ([], "at least one"),
        (["zrzy", "zrzy"], "named twice"),
        (["不存在"], "not in the catalog"),
    ):
        with pytest.raises(DomainError, match=message):
            await schedule_site_check(
                viewer=await clerk(), project_id=pid, department_codes=codes, now=clock()
            )
    with pytest.raises(DomainError) as refused:
        await schedule_site_check(
            viewer=await reviewer("fgw"), project_id=pid, department_codes=["zrzy"], now=clock()
        )
    assert refused.value.code in (ErrorCode.WRONG_DEPARTMENT, ErrorCode.NOT_FOUND)
    with pytest.raises(DomainError) as refused:
        await schedule_site_check(
            viewer=await inspector("zrzy"), project_id=pid, department_codes=["zrzy"], now=clock()
        )
    assert refused.value.code is ErrorCode.FORBIDDEN


async def test_joint_acceptance_needs_stage_four_in_review(gql, clock):
    project = await create_project(gql)
    with pytest.raises(DomainError) as refused:
        await schedule_joint_acceptance(
            viewer=await clerk(),
            project_id=db_id(project["id"]),
            department_codes=["zjj"],
            scheduled_for=date(2026, 3, 4),
            now=clock(),
        )
    assert refused.value.code is ErrorCode.INVALID_STATE and "竣工验收" in refused.value.message


async def test_joint_acceptance_takes_each_departments_checklist_and_checks_the_request(gql, clock):
    project, stage = await at_acceptance(gql, clock)
    pid = db_id(project["id"])
    with pytest.raises(DomainError, match="not a working day"):
        await schedule_joint_acceptance(
            viewer=await clerk(),
            project_id=pid,
            department_codes=THREE,
            scheduled_for=date(2026, 3, 7),  # a Saturday
            now=clock(),
        )
    with pytest.raises(DomainError, match="no task in this completion acceptance"):
        await schedule_joint_acceptance(
            viewer=await clerk(),
            project_id=pid,
            department_codes=["fgw"],
            scheduled_for=date(2026, 3, 4),
            now=clock(),
        )
    inspection = await schedule_joint_acceptance(
        viewer=await supervisor(),
        project_id=pid,
        department_codes=THREE,
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    assert inspection.due == date(2026, 3, 4) and inspection.stage_id == stage.id
    rows = await InspectionDepartment.filter(inspection_id=inspection.id).prefetch_related(
        "checklist", "department"
    )
    assert {r.department.code for r in rows} == set(THREE)
    rfb = next(r for r in rows if r.department.code == "rfb")
    assert rfb.checklist is not None and rfb.checklist.name == "人防验收"
    assert (
        await CheckResult.filter(
            inspection_id=inspection.id, department_id=rfb.department_id
        ).count()
        == 7
    )
    # each check with its unit and the allowed range of its measured value, when rules set one
    checks = await gql(
        "query($id: ID!) { inspection(id: $id) { departments { department { code } "
        "checks { code unit measurable minimum maximum } } } }",
        {"id": base64.b64encode(f"Inspection:{inspection.id}".encode()).decode()},
        as_="supervisor",
    )
    by_code = {
        c["code"]: c
        for d in checks["data"]["inspection"]["departments"]
        if d["department"]["code"] == "rfb"
        for c in d["checks"]
    }
    assert by_code["roof-slab"] == {
        "code": "roof-slab",
        "unit": "mm",
        "measurable": True,
        "minimum": 250.0,
        "maximum": None,
    }
    assert by_code["blast-doors"]["minimum"] is None and by_code["blast-doors"]["maximum"] is None
    with pytest.raises(DomainError) as again:
        await schedule_joint_acceptance(
            viewer=await clerk(),
            project_id=pid,
            department_codes=THREE,
            scheduled_for=date(2026, 3, 5),
            now=clock(),
        )
    assert again.value.code is ErrorCode.CONFLICT


async def test_only_inspectors_of_participating_departments_are_assigned(gql, clock):
    _, _, inspection, viewers = await joint_acceptance(gql, clock)
    assert await InspectionAssignment.filter(inspection_id=inspection.id).count() == 3
    outsider = await inspector("xfjy")
    with pytest.raises(DomainError) as refused:
        await assign_inspectors(
            viewer=await clerk(),
            inspection_id=inspection.id,
            usernames=[outsider.username],
            now=clock(),
        )
    assert refused.value.code is ErrorCode.WRONG_DEPARTMENT
    a_reviewer = await reviewer("zjj")
    with pytest.raises(DomainError) as refused:
        await assign_inspectors(
            viewer=await clerk(),
            inspection_id=inspection.id,
            usernames=[a_reviewer.username],
            now=clock(),
        )
    assert refused.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(DomainError) as refused:
        await assign_inspectors(
            viewer=viewers["zjj"], inspection_id=inspection.id, usernames=["clerk"], now=clock()
        )
    assert refused.value.code is ErrorCode.FORBIDDEN
    # Assigning again is harmless.
    await assign_inspectors(
        viewer=await clerk(),
        inspection_id=inspection.id,
        usernames=[viewers["zjj"].username],
        now=clock(),
    )
    assert await InspectionAssignment.filter(inspection_id=inspection.id).count() == 3


async def test_all_departments_pass_completes_stage_four_and_the_project(gql, clock):
    project, stage = await at_acceptance(gql, clock)
    everyone = await stage_departments(stage)
    assert set(THREE) < set(everyone)
    _, _, inspection, viewers = await joint_acceptance_on(project, stage, everyone, clock)
    for i, code in enumerate(everyone):
        done = await file_conclusion(
            viewer=viewers[code],
            inspection_id=inspection.id,
            result=Conclusion.PASS,
            note="验收合格",
            now=clock(),
        )
        last = i == len(everyone) - 1
        assert done.status is (InspectionStatus.PASSED if last else InspectionStatus.IN_PROGRESS)
        if not last:
            assert (await Stage.get(id=stage.id)).status is StageStatus.IN_REVIEW
    finished = await Stage.get(id=stage.id)
    assert finished.status is StageStatus.COMPLETED and finished.outcome is Decision.APPROVED
    assert (await Project.get(id=db_id(project["id"]))).status is ProjectStatus.COMPLETED
    tasks = await Task.filter(stage_id=stage.id, round=stage.round)
    assert all(t.status is TaskStatus.DECIDED and t.decision is Decision.APPROVED for t in tasks)
    assert {t.opinion for t in tasks} == {"联合验收合格(第1轮)"}
    assert await AuditEvent.filter(action="task.inspection_approve").count() == len(tasks)
    assert await AuditEvent.filter(action="stage.complete").count() == 4
    assert await AuditEvent.filter(action="project.complete").count() == 1
    with pytest.raises(DomainError) as closed:
        await file_conclusion(
            viewer=viewers[everyone[0]],
            inspection_id=inspection.id,
            result=Conclusion.FAIL,
            note="复查",
            now=clock(),
        )
    assert closed.value.code is ErrorCode.INVALID_STATE


async def joint_acceptance_on(project, stage, codes, clock):
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=codes,
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    viewers = {code: await inspector(code) for code in codes}
    await assign_inspectors(
        viewer=await clerk(),
        inspection_id=inspection.id,
        usernames=[v.username for v in viewers.values()],
        now=clock(),
    )
    return project, stage, inspection, viewers


async def test_a_failing_department_leads_to_a_reinspection_round(gql, clock):
    project, stage, first, viewers = await joint_acceptance(gql, clock)
    with pytest.raises(DomainError, match="needs a note"):
        await file_conclusion(
            viewer=viewers["zjj"],
            inspection_id=first.id,
            result=Conclusion.FAIL,
            note=" ",
            now=clock(),
        )
    await file_conclusion(
        viewer=viewers["zjj"],
        inspection_id=first.id,
        result=Conclusion.FAIL,
        note="消防车道被占用，喷淋系统联动试验未通过",
        now=clock(),
    )
    with pytest.raises(DomainError) as twice:
        await file_conclusion(
            viewer=viewers["zjj"],
            inspection_id=first.id,
            result=Conclusion.PASS,
            note="",
            now=clock(),
        )
    assert twice.value.code is ErrorCode.ALREADY_DECIDED
    with pytest.raises(DomainError) as early:
        await schedule_reinspection(
            viewer=await clerk(),
            inspection_id=first.id,
            scheduled_for=date(2026, 3, 10),
            now=clock(),
        )
    assert early.value.code is ErrorCode.INVALID_STATE
    for code in ("zrzy", "rfb"):
        await file_conclusion(
            viewer=viewers[code],
            inspection_id=first.id,
            result=Conclusion.PASS,
            note="合格",
            now=clock(),
        )
    first = await Inspection.get(id=first.id)
    assert first.status is InspectionStatus.RECTIFICATION_REQUIRED and first.closed_at
    assert await Task.filter(stage_id=stage.id, status=TaskStatus.DECIDED).count() == 0
    with pytest.raises(DomainError, match="needs a date"):
        await schedule_reinspection(
            viewer=await clerk(), inspection_id=first.id, scheduled_for=None, now=clock()
        )
    second = await schedule_reinspection(
        viewer=await clerk(), inspection_id=first.id, scheduled_for=date(2026, 3, 10), now=clock()
    )
    assert second.round == 2 and second.previous_id == first.id
    assert second.kind is InspectionKind.JOINT_ACCEPTANCE and second.due == date(2026, 3, 10)
    [only] = await InspectionDepartment.filter(inspection_id=second.id).prefetch_related(
        "department"
    )
    assert only.department.code == "zjj"
    [kept] = await InspectionAssignment.filter(inspection_id=second.id)
    assert kept.user_id == viewers["zjj"].user_id
    with pytest.raises(DomainError) as again:
        await schedule_reinspection(
            viewer=await clerk(),
            inspection_id=first.id,
            scheduled_for=date(2026, 3, 11),
            now=clock(),
        )
    assert again.value.code is ErrorCode.CONFLICT
    passed = await file_conclusion(
        viewer=viewers["zjj"],
        inspection_id=second.id,
        result=Conclusion.PASS,
        note="整改完成，复验合格",
        now=clock(),
    )
    assert passed.status is InspectionStatus.PASSED
    decided = await Task.filter(stage_id=stage.id, status=TaskStatus.DECIDED).prefetch_related(
        "department"
    )
    assert {t.department.code for t in decided} == set(THREE)
    assert {t.opinion for t in decided} == {"联合验收合格(第2轮)"}
    assert (await Stage.get(id=stage.id)).status is StageStatus.IN_REVIEW
    await approve_open_tasks(stage.id, clock())
    assert (await Stage.get(id=stage.id)).status is StageStatus.COMPLETED
    assert (await Project.get(id=db_id(project["id"]))).status is ProjectStatus.COMPLETED


async def test_site_check_failure_is_reinspected_within_three_working_days(gql, clock):
    project = await create_project(gql)
    first = await schedule_site_check(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zrzy"],
        now=clock(),
    )
    zrzy = await inspector("zrzy")
    await assign_inspectors(
        viewer=await clerk(), inspection_id=first.id, usernames=[zrzy.username], now=clock()
    )
    await file_conclusion(
        viewer=zrzy,
        inspection_id=first.id,
        result=Conclusion.FAIL,
        note="用地界址不清",
        now=clock(),
    )
    assert (await Inspection.get(id=first.id)).status is InspectionStatus.RECTIFICATION_REQUIRED
    second = await schedule_reinspection(
        viewer=await clerk(), inspection_id=first.id, scheduled_for=None, now=clock()
    )
    assert second.round == 2 and second.due == date(2026, 3, 5)  # Mon 2 March + 3 working days


async def test_document_access_for_each_role(gql, clock):
    project, _, inspection, viewers = await joint_acceptance(gql, clock)
    name = inspection_doc_name(inspection.id)
    zjj = viewers["zjj"]
    assert await document_access(zjj, name) == FieldRights(
        user_id=zjj.user_id,
        username=zjj.username,
        role="inspector",
        department_code="zjj",
        writable=True,
    )
    boss = await supervisor()
    rights = await document_access(boss, name)
    assert rights is not None and not rights.writable and rights.department_code is None
    unassigned = await inspector("zjj", n=2)
    for nobody in (unassigned, await clerk(), await reviewer("zjj")):
        assert await document_access(nobody, name) is None
    agent = await person("agent", Role.AGENT)
    assert await document_access(agent, name) is None
    assert await document_access(zjj, "inspection/999999") is None
    assert await document_access(zjj, "照片/1") is None
    # The agency document: the project's own agent writes, supervisors read.
    agency = agency_doc_name(db_id(project["id"]))
    agent_rights = await document_access(agent, agency)
    assert agent_rights is not None and agent_rights.writable and agent_rights.role == "agent"
    other_agent = await person("代办员-王", Role.AGENT)
    assert await document_access(other_agent, agency) is None
    read_only = await document_access(boss, agency)
    assert read_only is not None and not read_only.writable
    assert await document_access(zjj, agency) is None
    assert await document_access(await clerk(), agency) is None
    # A closed inspection is read-only for its inspectors.
    for v in viewers.values():
        await file_conclusion(
            viewer=v, inspection_id=inspection.id, result=Conclusion.PASS, note="", now=clock()
        )
    closed = await document_access(zjj, name)
    assert closed is not None and not closed.writable


async def test_node_resolves_an_inspection_only_for_those_who_may_see_it(gql, clock):
    project, _, inspection, _ = await joint_acceptance(gql, clock)
    global_id = base64.b64encode(f"Inspection:{inspection.id}".encode()).decode()
    query = "query($id: ID!) { node(id: $id) { ... on Inspection { id round project { id } } } }"
    seen = await gql(query, {"id": global_id}, as_="supervisor")
    assert seen["data"]["node"] == {"id": global_id, "round": 1, "project": {"id": project["id"]}}
    stranger = await person("applicant-elsewhere", Role.APPLICANT)
    token, _ = await issue_token(
        user=await User.get(id=stranger.user_id), now=clock(), ttl=timedelta(hours=1)
    )
    hidden = await gql(query, {"id": global_id}, token=token)
    assert hidden["data"]["node"] is None


async def test_the_supervisor_loop_warns_before_and_after_a_site_checks_due_date(gql, clock):
    from approval.oversight.supervision import SupervisionSettings, supervise

    clock.now = datetime(2026, 4, 2, 9, tzinfo=CHINA)
    project = await create_project(gql)
    inspection = await schedule_site_check(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zrzy"],
        now=clock(),
    )
    settings = SupervisionSettings()
    assert await supervise(now=datetime(2026, 4, 3, 9, tzinfo=CHINA), settings=settings) == []
    [yellow] = await supervise(now=datetime(2026, 4, 7, 9, tzinfo=CHINA), settings=settings)
    assert yellow.key == f"site_check:{inspection.id}:yellow" and yellow.kind == "site_check"
    assert yellow.project_id == inspection.project_id and "2026-04-08" in yellow.message
    [red] = await supervise(now=datetime(2026, 4, 9, 9, tzinfo=CHINA), settings=settings)
    assert red.key == f"site_check:{inspection.id}:red" and red.level.value == "red"
    overdue = await gql("{ overdue { events { key } } }", as_="supervisor")
    assert red.key in [e["key"] for e in overdue["data"]["overdue"]["events"]]
