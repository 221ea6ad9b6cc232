"""The company-setup doors asked by the company departments' reviewers, the columns the main
matrix (``tests/test_authorization_matrix.py``) does not have: a reviewer of the department that
holds one of the setup's tasks, the same department in another region, and a company
department without a task in the setup. Same world, same way of telling an open door from a
closed one; every root field about setups needs a row here as well as there."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from approval.core.auth import create_user, issue_token
from schema.app import build_schema
from storage.enums import Decision, Role
from storage.models import Department, LoginThrottle, SetupPermit, SetupTask, SetupTaskRound
from tests import test_authorization_matrix as matrix
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.test_authorization_matrix import CLOSED, OPEN, World, make_world, operation, outcome

pytestmark = pytest.mark.usefixtures("catalog")
served = matrix.served  # the API with field documents and an object store, as the matrix has it

VIEWERS = (
    "task_department",  # reviewer of the department of one of the setup's tasks, its region
    "task_department_region",  # the same department, another region
    "other_department",  # a company department without a task in this setup
)


def setup_row(spec: str, viewers: tuple[str, ...] = VIEWERS) -> dict[str, str]:
    """A row of this table: a letter per viewer above (or of ``viewers``), o open, x closed."""
    meaning = {"o": OPEN, "x": CLOSED}
    return {v: meaning[letter] for v, letter in zip(viewers, spec.split(), strict=True)}


#                                       td tr od
SETUP_MATRIX: dict[str, dict[str, str]] = {
    # --- queries ---
    "setupFlowGroups":        setup_row("o  o  o"),
    "setupPlan":              setup_row("o  o  o"),
    "companySetups":          setup_row("o  o  o"),  # a list narrowed to what each may see
    "companySetup":           setup_row("o  x  x"),
    "setupTasks":             setup_row("o  o  o"),
    "setupFigures":           setup_row("x  x  x"),
    "setupRatings":           setup_row("x  x  x"),
    "setupRatingSummary":     setup_row("x  x  x"),
    # --- mutations, in the SDL's order (a decision made here is seen by the later rows) ---
    "acceptCompanySetup":     setup_row("x  x  x"),
    "decideSetupTask":        setup_row("o  x  x"),
    "stopSetupClock":         setup_row("o  x  x"),
    "resumeSetupClock":       setup_row("o  x  x"),
    "requestSetupSupplement": setup_row("o  x  x"),
    "reacceptCompanySetup":   setup_row("x  x  x"),
    "closeSetupFollowUp":     setup_row("x  x  x"),
    "deliverSetupMaterial":   setup_row("x  x  x"),
    "issueCompanySetup":      setup_row("x  x  x"),
}  # fmt: skip


def _about_setups(name: str) -> bool:
    return "setup" in name.lower()


def test_every_setup_field_has_a_row() -> None:
    schema = build_schema()._schema
    fields = {
        name
        for root in (schema.query_type, schema.mutation_type)
        for name in root.fields  # type: ignore[union-attr]
        if _about_setups(name)
    }
    assert fields == set(SETUP_MATRIX), sorted(fields ^ set(SETUP_MATRIX))


async def _tokens(world: World, clock: Clock) -> dict[str, str]:
    task = await SetupTask.get(id=world.setup_task)
    department = await Department.get(id=task.department_id)
    holding = set(
        await SetupTask.filter(setup_id=task.setup_id).values_list("department__code", flat=True)
    )
    permits = await SetupPermit.all().values_list("department__code", flat=True)
    other = min(code for code in set(permits) - holding)  # e.g. a pharmacy's drug administration

    return {
        "task_department": await _token(clock, "s-td", Role.REVIEWER, department.code, "371402"),
        "task_department_region": await _token(
            clock, "s-tr", Role.REVIEWER, department.code, "371403"
        ),
        "other_department": await _token(clock, "s-od", Role.REVIEWER, other, "371402"),
    }


async def _token(clock: Clock, name: str, role: Role, department: str, region: str) -> str:
    """A new person of ``department`` and ``region``, and a token of theirs."""
    user = await create_user(
        username=name,
        password=PASSWORD,
        display_name=name,
        role=role,
        department_code=department,
        region_code=region,
    )
    made, _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=8))
    return made


async def test_the_company_departments_doors(
    gql: GraphQLClient, served: GraphQLClient, clock: Clock
) -> None:
    world = await make_world(gql, clock)
    tokens = await _tokens(world, clock)
    schema = build_schema()._schema
    found: dict[str, dict[str, str]] = {}
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            if not _about_setups(name):
                continue
            document, variables = operation(kind, name, field, world)
            await LoginThrottle.all().delete()
            found[name] = {}
            for viewer in VIEWERS:
                body = await served(document, variables, token=tokens[viewer])
                found[name][viewer] = outcome(name, body)
    wrong = sorted(
        f"{name} as {viewer}: expected {SETUP_MATRIX[name][viewer]}, got {answer}"
        for name, answers in found.items()
        for viewer, answer in answers.items()
        if SETUP_MATRIX[name][viewer] != answer
    )
    assert not wrong, "\n".join(wrong)


# A task's earlier rounds (SetupTaskInfo.history) are seen exactly where the task is: through
# companySetup (the setup's scope) and a reviewer's setupTasks (its department, its region).
#                        td tr od
HISTORY_DOORS: dict[str, dict[str, str]] = {
    "companySetup": setup_row("o  x  x"),
    "setupTasks":   setup_row("o  x  x"),
}  # fmt: skip
#                                    an ap ag cl rv rd rr in io su so
HISTORY_DOORS_OF_THE_MATRIX: dict[str, dict[str, str]] = {
    "companySetup":          matrix.row("x  x  x  o  x  x  x  x  x  o  x"),
    "setupTasks":            matrix.row("x  x  x  x  x  x  x  x  x  x  x"),
}  # fmt: skip
EARLIER_OPINION = "上一轮: 章程需补正"
HISTORY_DOCUMENTS = {
    "companySetup": "query($code: String!) { companySetup(code: $code) { tasks { taskId "
    "history { round opinion decidedBy returnedMaterials { code } } } } }",
    "setupTasks": "{ setupTasks(openOnly: false) { taskId history { round opinion decidedBy } } }",
}


async def test_a_tasks_earlier_rounds_show_only_where_the_task_does(
    gql: GraphQLClient, served: GraphQLClient, clock: Clock
) -> None:
    world = await make_world(gql, clock)
    tokens = await _tokens(world, clock)
    task = await SetupTask.get(id=world.setup_task)
    await SetupTaskRound.create(
        task_id=task.id,
        round=1,
        decision=Decision.SUPPLEMENT_REQUIRED,
        opinion=EARLIER_OPINION,
        deadline=task.deadline,
        returned_materials=[
            {"code": "articles_of_association", "name": "公司章程", "reason": "缺签章"}
        ],
        reopened_at=clock(),
    )
    viewers = {
        **{v: tokens[v] for v in VIEWERS},
        **{v: world.tokens.get(v) for v in matrix.VIEWERS},
    }
    expected = {
        name: {**HISTORY_DOORS[name], **HISTORY_DOORS_OF_THE_MATRIX[name]} for name in HISTORY_DOORS
    }
    found: dict[str, dict[str, str]] = {}
    for name, document in HISTORY_DOCUMENTS.items():
        found[name] = {}
        for viewer, token in viewers.items():
            body = await served(document, {"code": world.setup_code}, token=token)
            seen = EARLIER_OPINION in json.dumps(body, ensure_ascii=False)
            found[name][viewer] = OPEN if seen else CLOSED
    assert found == expected


# --- a setup's site check: the inspection doors ---------------------------------------------------
# The world's restaurant has a food-business site check (食药监局's permit), an inspection of the
# setup. Who may see it, assign its inspectors, record and conclude it: the food department's
# reviewer of the setup's region (o), nobody else among the company's reviewers, the applicant,
# the agent, or an inspector of another department or region (who at most reads it). Recording
# and concluding are the assigned inspector's (tests/test_setup_site_checks.py syncs the
# document itself).
INSPECTION_VIEWERS = (
    "food_reviewer",  # 食药监局 reviewer, the setup's region
    "food_reviewer_region",  # 食药监局 reviewer, another region
    "other_department",  # a company department without a task in this setup
    "applicant",
    "agent",
    # an inspector of another department with a task in the setup (消防), assigned to nothing
    # here: sees the setup's inspections as a project's departments see its, may do nothing
    "other_inspector",
    "region_inspector",  # a 食药监局 inspector of another region
)


def inspection_row(spec: str) -> dict[str, str]:
    return setup_row(spec, INSPECTION_VIEWERS)


#                                         fr fg od ap ag oi ri
SETUP_INSPECTION_MATRIX: dict[str, dict[str, str]] = {
    "inspection":           inspection_row("o  x  x  x  x  o  x"),
    "assignInspectors":     inspection_row("o  x  x  x  x  x  x"),
    "recordCheck":          inspection_row("x  x  x  x  x  x  x"),
    "fileConclusion":       inspection_row("x  x  x  x  x  x  x"),
    "scheduleReinspection": inspection_row("x  x  x  x  x  x  x"),
}  # fmt: skip

SETUP_INSPECTION_DOORS = {
    "inspection": (
        "query($id: ID!) { inspection(id: $id) { id setup { code } } }",
        lambda gid: {"id": gid},
    ),
    "assignInspectors": (
        "mutation($input: AssignInspectorsInput!) { assignInspectors(input: $input) "
        "{ inspection { id } errors { code } } }",
        lambda gid: {"input": {"inspectionId": gid, "usernames": ["s-food-inspector"]}},
    ),
    "recordCheck": (
        "mutation($input: RecordCheckInput!) { recordCheck(input: $input) "
        "{ inspection { id } errors { code } } }",
        lambda gid: {"input": {"inspectionId": gid, "check": "layout", "result": "PASS"}},
    ),
    "fileConclusion": (
        "mutation($input: FileConclusionInput!) { fileConclusion(input: $input) "
        "{ inspection { id } errors { code } } }",
        lambda gid: {"input": {"inspectionId": gid, "result": "PASS"}},
    ),
    "scheduleReinspection": (
        "mutation($input: ScheduleReinspectionInput!) { scheduleReinspection(input: $input) "
        "{ inspection { id } errors { code } } }",
        lambda gid: {"input": {"inspectionId": gid}},
    ),
}


async def test_the_doors_of_a_setups_site_check(
    gql: GraphQLClient, served: GraphQLClient, clock: Clock
) -> None:
    from strawberry.relay import GlobalID

    from storage.models import Inspection

    world = await make_world(gql, clock)
    food = await Inspection.get(
        setup__code=world.setup_code, setup_task__permit__code="food_business_license"
    )
    gid = str(GlobalID("Inspection", str(food.id)))

    await _token(clock, "s-food-inspector", Role.INSPECTOR, "shiyao", "371402")  # assigned
    tokens = {
        "food_reviewer": await _token(clock, "s-fr", Role.REVIEWER, "shiyao", "371402"),
        "food_reviewer_region": await _token(clock, "s-fg", Role.REVIEWER, "shiyao", "371403"),
        "other_department": await _token(clock, "s-ow", Role.REVIEWER, "wenguang", "371402"),
        "applicant": world.tokens["applicant"],
        "agent": world.tokens["agent"],
        "other_inspector": await _token(clock, "s-oi", Role.INSPECTOR, "xfjy", "371402"),
        "region_inspector": await _token(clock, "s-ri", Role.INSPECTOR, "shiyao", "371403"),
    }
    assert set(SETUP_INSPECTION_MATRIX) == set(SETUP_INSPECTION_DOORS)
    wrong = []
    for name, (document, variables) in SETUP_INSPECTION_DOORS.items():
        for viewer in INSPECTION_VIEWERS:
            await LoginThrottle.all().delete()
            body = await served(document, variables(gid), token=tokens[viewer])
            found = outcome(name, body)
            expected = SETUP_INSPECTION_MATRIX[name][viewer]
            if found != expected:
                wrong.append(f"{name} as {viewer}: expected {expected}, got {found}: {body}")
    assert not wrong, "\n".join(wrong)
