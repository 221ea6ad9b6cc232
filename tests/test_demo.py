"""Demo seeding: every role gets a user, projects stand in many states, the audit trail exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from approval.catalog.load import load_catalog
from approval.catalog.parse import load_default_catalog
from approval.core.auth import Hashing, login
from approval.core.codes import validate_credit_code
from approval.core.dates import CHINA
from approval.core.errors import DomainError, ErrorCode
from approval.demo import DEMO_PASSWORD, PROJECTS, SETUPS, DemoReport, SetupState, seed_demo
from storage import models
from storage.enums import MaterialStatus, ProjectStatus, Role, StageStatus, TaskStatus
from tests.conftest import CATALOG_MODELS, clear_tables

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=CHINA)

# The work tables, children before parents.
WORK_MODELS = (
    models.AuditEvent,
    models.AccessToken,
    models.MaterialVersion,
    models.SupplementRequest,
    models.Material,
    models.Task,
    models.Stage,
    models.SetupMaterial,
    models.SetupTask,
    models.CompanySetup,
    models.Project,
    models.CodeSequence,
    models.User,
    models.Enterprise,
)


@pytest.fixture(scope="module")
async def seeded(database: str) -> AsyncIterator[DemoReport]:
    """The demo seeded once on a loaded catalog; work tables are emptied before and after."""
    from approval.core.calendar import load_package_calendar

    await clear_tables(*WORK_MODELS)
    await load_catalog(load_default_catalog())
    await load_company_catalog(load_default_company_catalog())
    await load_package_calendar()
    lines: list[str] = []
    report = await seed_demo(now=NOW, progress=lines.append)
    assert any(line.startswith("project ") for line in lines)
    yield report
    await clear_tables(*WORK_MODELS)


async def test_every_role_has_a_user_who_can_log_in(seeded: DemoReport) -> None:
    roles = set(await models.User.all().values_list("role", flat=True))
    assert roles == set(Role)
    assert {u.role for u in seeded.users} == set(Role)
    _, _, user = await login(
        username="window",
        password=DEMO_PASSWORD,
        now=NOW,
        ttl=timedelta(hours=1),
        hashing=Hashing.bounded(),
    )
    assert user.role is Role.WINDOW_CLERK


async def test_reviewers_cover_every_department_with_items(seeded: DemoReport) -> None:
    with_items = set(
        await models.ServiceItem.filter(active=True).values_list("department__code", flat=True)
    )
    reviewers = set(
        await models.User.filter(role=Role.REVIEWER).values_list("department__code", flat=True)
    )
    assert with_items <= reviewers
    assert {"fgw", "zrzy", "zjj", "sthj"} <= {u.username for u in seeded.users}


async def test_the_readme_names_demo_users_that_exist(seeded: DemoReport) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    sentence = readme[readme.index("demo users:") : readme.index("`approval/demo.py` makes them")]
    named = re.findall(r"`([a-z][a-z0-9-]*)`(?:\s\(([^)]+)\))?", sentence)
    assert len(named) >= 10
    users = {u.username: u for u in await models.User.all().select_related("department")}
    for username, note in named:
        assert username in users, f"README names demo user {username!r}, the demo has none"
        department = users[username].department
        if users[username].role is Role.REVIEWER and department is not None:
            assert note == department.short_name, (username, note, department.short_name)


async def test_company_setups_stand_in_every_state(seeded: DemoReport) -> None:
    assert [state for _, _, state in seeded.setups] == [s.state for s in SETUPS]
    stored = dict(await models.CompanySetup.all().values_list("code", "status"))
    by_state = {state: stored[code] for code, _, state in seeded.setups}
    assert by_state[SetupState.READY] == "ready" and by_state[SetupState.ISSUED] == "issued"
    assert by_state[SetupState.REFUSED] == "refused"
    waiting = await models.SetupTask.get(
        setup__code=dict((state, code) for code, _, state in seeded.setups)[SetupState.SUPPLEMENT],
        department__code="shiyao",
    )
    assert waiting.status == "supplement_requested" and waiting.pause_reason == "supplement"
    assert by_state[SetupState.SUPPLEMENT] == "in_review"
    # 待补正 as a whole: the fan-in said 需补正, the layout returned, the rest approved.
    code = dict((state, code) for code, _, state in seeded.setups)[SetupState.SUPPLEMENT_REQUIRED]
    assert by_state[SetupState.SUPPLEMENT_REQUIRED] == "supplement_required"
    whole = await models.CompanySetup.get(code=code)
    assert whole.outcome == "supplement_required" and whole.completed_at is not None
    decided = dict(
        await models.SetupTask.filter(setup_id=whole.id).values_list("department__code", "decision")
    )
    assert decided.pop("shiyao") == "supplement_required"
    assert decided and set(decided.values()) == {"approved"}
    returned = await models.SetupMaterial.filter(setup_id=whole.id, status="rejected").values_list(
        "material_type__code", flat=True
    )
    assert list(returned) == ["premises_layout"]
    factory = await models.CompanySetup.get(business_type__code="foreign-factory")
    assert factory.project_id is not None  # linked to a construction project
    reviewers = set(await models.User.filter(role=Role.REVIEWER).values_list("username", flat=True))
    assert {"gongshang", "zhijian", "guoshui", "dishui", "shiyao"} <= reviewers


async def test_setup_site_checks_are_inspections_with_the_departments_inspectors(
    seeded: DemoReport,
) -> None:
    """Every demo setup's site check is an inspection of it assigned to the department's demo
    inspector (``shiyao-inspector`` for the food checks): open for the setup in review (the
    field app lists it under make run), passed and the task's check done for the others."""
    states = {code: state for code, _, state in seeded.setups}
    checked = await models.SetupTask.filter(site_check_due__isnull=False).select_related(
        "setup", "department"
    )
    assert checked
    for task in checked:
        [inspection] = await models.Inspection.filter(setup_task_id=task.id)
        assert inspection.setup_id == task.setup_id and inspection.project_id is None
        assigned = await models.InspectionAssignment.filter(
            inspection_id=inspection.id
        ).values_list("user__username", flat=True)
        assert list(assigned) == [f"{task.department.code}-inspector"]
        if states[task.setup.code] is SetupState.IN_REVIEW:
            assert inspection.status.value == "scheduled" and task.site_check_done_at is None
        else:
            assert inspection.status.value == "passed" and task.site_check_done_at is not None
    food = [t for t in checked if t.department.code == "shiyao"]
    assert any(states[t.setup.code] is SetupState.IN_REVIEW for t in food)


async def test_enterprises_have_valid_credit_codes(seeded: DemoReport) -> None:
    codes = await models.Enterprise.all().values_list("credit_code", flat=True)
    assert 3 <= len(codes) == seeded.enterprises <= 4
    for code in codes:
        assert validate_credit_code(str(code)) == code
        assert str(code).startswith("91371400")


async def test_projects_stand_in_several_stage_states(seeded: DemoReport) -> None:
    assert len(seeded.projects) == len(PROJECTS) == await models.Project.all().count()
    first = await models.Stage.filter(definition__code="project_approval").values_list(
        "status", flat=True
    )
    assert set(first) == {StageStatus.NOT_STARTED, StageStatus.IN_REVIEW, StageStatus.COMPLETED}
    second = await models.Stage.filter(
        definition__code="engineering_permit", status=StageStatus.COMPLETED
    ).count()
    assert second == 1
    assert await models.Project.filter(status=ProjectStatus.ACTIVE).count() == len(PROJECTS)


async def test_tasks_materials_and_commitments(seeded: DemoReport) -> None:
    statuses = set(await models.Task.all().values_list("status", flat=True))
    assert statuses == set(TaskStatus)
    assert await models.SupplementRequest.all().count() == seeded.supplements == 1
    committed = await models.Material.filter(status=MaterialStatus.COMMITTED).count()
    assert committed == seeded.commitments == 1
    assert await models.MaterialVersion.all().count() == seeded.materials
    overdue = await models.Task.filter(decided_at__isnull=True, deadline__lt=NOW.date()).count()
    assert overdue > 0


async def test_audit_events_record_the_work(seeded: DemoReport) -> None:
    actions = set(await models.AuditEvent.all().values_list("action", flat=True))
    assert {
        "user.create",
        "project.create",
        "material.submit",
        "material.review",
        "stage.accept",
        "task.decide",
        "task.request_supplement",
        "stage.complete",
    } <= actions
    assert 400 < seeded.audit_events <= await models.AuditEvent.all().count()


async def test_seeding_twice_is_refused(seeded: DemoReport) -> None:
    with pytest.raises(DomainError) as caught:
        await seed_demo(now=NOW)
    assert caught.value.code is ErrorCode.CONFLICT
    assert "--if-empty" in caught.value.message


async def test_seeding_without_catalog_says_what_to_run(seeded: DemoReport) -> None:
    await clear_tables(*WORK_MODELS, *CATALOG_MODELS)
    try:
        with pytest.raises(DomainError) as caught:
            await seed_demo(now=NOW)
        assert "onewindow load-catalog" in caught.value.message
    finally:
        await load_catalog(load_default_catalog())
