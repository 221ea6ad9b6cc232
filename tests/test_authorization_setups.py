"""The company-setup doors asked by the company departments' reviewers, the columns the main
matrix (``tests/test_authorization_matrix.py``) does not have: a reviewer of the department that
holds one of the setup's tasks, the same department in another region, and a company
department without a task in the setup. Same world, same way of telling an open door from a
closed one; every root field about setups needs a row here as well as there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from approval.core.auth import create_user, issue_token
from schema.app import build_schema
from storage.enums import Role
from storage.models import Department, LoginThrottle, SetupPermit, SetupTask
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


def setup_row(spec: str) -> dict[str, str]:
    """A row of this table: a letter per viewer above, o open, x closed."""
    meaning = {"o": OPEN, "x": CLOSED}
    return {v: meaning[letter] for v, letter in zip(VIEWERS, spec.split(), strict=True)}


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
    # --- mutations, in the SDL's order (a decision made here is seen by the later rows) ---
    "acceptCompanySetup":     setup_row("x  x  x"),
    "decideSetupTask":        setup_row("o  x  x"),
    "recordSetupSiteCheck":   setup_row("o  x  x"),
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

    async def token(name: str, **where: Any) -> str:
        user = await create_user(
            username=f"s-{name}", password=PASSWORD, display_name=name, role=Role.REVIEWER, **where
        )
        made, _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=8))
        return made

    return {
        "task_department": await token("td", department_code=department.code, region_code="371402"),
        "task_department_region": await token(
            "tr", department_code=department.code, region_code="371403"
        ),
        "other_department": await token("od", department_code=other, region_code="371402"),
    }


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
