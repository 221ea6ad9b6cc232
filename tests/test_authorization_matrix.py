"""Every root field and mutation of the SDL asked by every kind of viewer: whether the door
opens (an answer, or a failure that is not about who is asking) or stays closed (an error of
authentication or authorization, or the object hidden). The expected answers are one table,
``MATRIX``; a new root field without a row fails the test.

Arguments come from the SDL: ids of one world (a project in 德城区 with stage 1 accepted, an
inspection of it with one inspector assigned, ...), other values schema-valid placeholders.
Where a placeholder would be refused for its input before the viewer mattered (a project to
create, a material, a meeting, a company setup, ...), ``VALID_INPUTS`` gives the variables of a
valid call, so that the row proves who may call it. So a row says who gets past the checks of
who is asking; what each door then does is tested where the door is.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
)

from approval.catalog.company import load_default_company_catalog
from approval.catalog.company_load import load_company_catalog
from approval.core.auth import create_user, issue_token
from approval.fieldwork.inspections import assign_inspectors, schedule_site_check
from approval.fieldwork.policy import FieldDocuments
from approval.oversight.notifications import collect
from schema.app import build_schema
from storage.enums import Role
from storage.local_store import LocalObjectStore
from storage.models import Enterprise, LoginThrottle, Material, Rating, SetupTask, Task
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.fieldwork_support import MemoryEditor, clerk, documents_app
from tests.helpers import accept, create_project, db_id, project_input, ready_stage
from tests.test_notifications import accepted_project, complete
from tests.upload_support import REQUEST, with_state

pytestmark = pytest.mark.usefixtures("catalog")

# The viewers, in the order of the table's columns.
VIEWERS = (
    "anonymous",
    "applicant",  # of the project's enterprise
    "agent",  # the project's agent
    "clerk",  # window clerk, city-wide
    "reviewer",  # fgw, 德城区: the project's department and region
    "reviewer_dept",  # rfb: a department without a task in the project
    "reviewer_region",  # fgw, 陵城区: the department, another region
    "inspector",  # zjj, assigned to the project's inspection
    "inspector_other",  # zjj, not assigned
    "supervisor",  # 德城区
    "supervisor_other",  # 陵城区
)
OPEN, CLOSED, INPUT = "open", "closed", "input"


def row(spec: str) -> dict[str, str]:
    """One row: a letter per viewer, in the order of VIEWERS: o open, x closed, i refused for
    its input before the viewer mattered (such a row proves nothing about authorization: give
    the field valid variables in VALID_INPUTS instead; no row has one today)."""
    letters = spec.replace(" ", "")
    assert len(letters) == len(VIEWERS), spec
    meaning = {"o": OPEN, "x": CLOSED, "i": INPUT}
    return {viewer: meaning[letter] for viewer, letter in zip(VIEWERS, letters, strict=True)}


#                             an ap ag cl rv rd rr in io su so
MATRIX: dict[str, dict[str, str]] = {
    # --- queries ---
    "node":                   row("x  o  o  o  o  x  x  x  x  o  x"),
    "viewer":                 row("x  o  o  o  o  o  o  o  o  o  o"),
    "projects":               row("x  o  o  o  o  o  o  o  o  o  o"),
    "project":                row("x  o  o  o  o  x  x  x  x  o  x"),
    "tasks":                  row("x  o  o  o  o  o  o  o  o  o  o"),
    "regions":                row("x  o  o  o  o  o  o  o  o  o  o"),
    "departments":            row("x  o  o  o  o  o  o  o  o  o  o"),
    "materialTypes":          row("x  o  o  o  o  o  o  o  o  o  o"),
    "serviceItems":           row("x  o  o  o  o  o  o  o  o  o  o"),
    "jointNotice":            row("x  o  o  o  o  x  x  x  x  o  x"),
    "jointNoticeFor":         row("x  o  o  o  o  o  o  o  o  o  o"),
    "meetings":               row("x  o  o  o  o  x  x  x  x  o  x"),
    "warnings":               row("x  x  o  x  x  x  x  x  x  o  o"),
    "overdue":                row("x  x  o  x  x  x  x  x  x  o  o"),
    "departmentFigures":      row("x  x  x  x  x  x  x  x  x  o  o"),
    "stageDurations":         row("x  x  x  x  x  x  x  x  x  o  o"),
    "notifications":          row("x  x  x  x  x  x  x  x  x  o  o"),
    "ratings":                row("x  x  x  x  x  x  x  x  x  o  o"),
    "followUps":              row("x  x  x  x  x  x  x  x  x  o  o"),
    "myRatings":              row("x  o  x  x  x  x  x  x  x  x  x"),
    "supervisionEvents":      row("x  x  x  x  o  o  o  x  x  o  o"),
    "inspections":            row("x  o  o  o  o  x  x  x  x  o  x"),
    "agencyEntries":          row("x  x  o  o  x  x  x  x  x  o  x"),
    "inspection":             row("x  o  o  o  o  x  x  o  x  o  x"),
    "myInspections":          row("x  o  o  o  o  o  o  o  o  o  o"),
    "wallChart":              row("x  x  x  o  x  x  x  x  x  o  o"),
    "reviewQueue":            row("x  x  x  o  o  x  o  x  x  o  o"),
    "stageApplication":       row("x  o  o  o  o  x  x  x  x  o  x"),
    "setupFigures":           row("x  x  x  x  x  x  x  x  x  o  o"),
    "setupFlowGroups":        row("x  o  o  o  o  o  o  o  o  o  o"),
    "setupPlan":              row("x  o  o  o  o  o  o  o  o  o  o"),
    "companySetups":          row("x  o  o  o  o  o  o  o  o  o  o"),
    "companySetup":           row("x  x  x  o  x  x  x  x  x  o  x"),
    "setupTasks":             row("x  o  o  o  o  o  o  o  o  o  o"),
    "setupRatings":           row("x  x  x  x  x  x  x  x  x  o  o"),
    "setupRatingSummary":     row("x  x  x  x  x  x  x  x  x  o  o"),
    # --- mutations ---
    "login":                  row("o  o  o  x  x  x  x  x  x  x  x"),
    "reassignAgent":          row("x  x  x  o  x  x  x  x  x  o  x"),
    "createProject":          row("x  o  x  o  x  x  x  x  x  x  x"),
    "acceptStageApplication": row("x  x  x  o  x  x  x  x  x  x  x"),
    "submitMaterial":         row("x  o  x  o  x  x  x  x  x  x  x"),
    "reviewMaterial":         row("x  x  x  o  x  x  x  x  x  x  x"),
    "decideTask":             row("x  x  x  x  o  x  x  x  x  x  x"),
    "requestSupplement":      row("x  x  x  x  o  x  x  x  x  x  x"),
    "pageTicket":             row("x  o  o  o  o  o  o  o  o  o  o"),
    "logout":                 row("x  o  o  o  o  o  o  o  o  o  o"),
    "changePassword":         row("x  o  o  o  o  o  o  o  o  o  o"),
    "revokeUserTokens":       row("x  x  x  x  x  x  x  x  x  o  x"),
    "unlockLogin":            row("x  x  x  x  x  x  x  x  x  o  x"),
    "scheduleMeeting":        row("x  x  x  o  x  x  x  x  x  o  x"),
    "recordMeetingOpinion":   row("x  x  x  o  o  x  x  x  x  x  x"),
    "closeMeeting":           row("x  x  x  o  x  x  x  x  x  o  x"),
    "rateService":            row("o  o  o  o  o  o  o  o  o  o  o"),  # the SMS code is the key
    "rateMyService":          row("x  o  x  x  x  x  x  x  x  x  x"),
    "closeFollowUp":          row("x  x  x  x  x  x  x  x  x  o  x"),
    "pauseTask":              row("x  x  x  x  o  x  x  x  x  x  x"),
    "resumeTask":             row("x  x  x  x  o  x  x  x  x  x  x"),
    "fileFormalOpinion":      row("x  x  x  x  o  x  x  x  x  x  x"),
    "scheduleSiteCheck":      row("x  x  x  o  x  x  x  x  x  o  x"),
    "scheduleJointAcceptance": row("x  x  x  o  x  x  x  x  x  o  x"),
    "assignInspectors":       row("x  x  x  o  x  x  x  x  x  o  x"),
    "scheduleReinspection":   row("x  x  x  o  x  x  x  x  x  o  x"),
    "recordCheck":            row("x  x  x  x  x  x  x  o  x  x  x"),
    "fileConclusion":         row("x  x  x  x  x  x  x  o  x  x  x"),
    "requestUpload":          row("x  o  x  o  x  x  x  x  x  x  x"),
    "confirmUpload":          row("x  x  x  o  x  x  x  x  x  x  x"),
    "acceptCompanySetup":     row("x  x  x  o  x  x  x  x  x  x  x"),
    "decideSetupTask":        row("x  x  x  x  x  x  x  x  x  x  x"),
    "stopSetupClock":         row("x  x  x  x  x  x  x  x  x  x  x"),
    "resumeSetupClock":       row("x  x  x  x  x  x  x  x  x  x  x"),
    "requestSetupSupplement": row("x  x  x  x  x  x  x  x  x  x  x"),
    "reacceptCompanySetup":   row("x  x  x  o  x  x  x  x  x  x  x"),
    "closeSetupFollowUp":     row("x  x  x  x  x  x  x  x  x  x  x"),
    "deliverSetupMaterial":   row("x  x  x  o  x  x  x  x  x  x  x"),
    "issueCompanySetup":      row("x  x  x  o  x  x  x  x  x  x  x"),
}  # fmt: skip

# Failures that say who is asking may not: the door stays closed.
CLOSED_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "TOKEN_EXPIRED",
        "FORBIDDEN",
        "WRONG_DEPARTMENT",
        "NOT_FOUND",
        "NOT_INVITED",
        "TOO_MANY_ATTEMPTS",
    }
)
# Failures about the placeholder input: the door was not reached.
INPUT_CODES = frozenset(
    {"INVALID_INPUT", "INVALID_CREDIT_CODE", "SYNC_UNAVAILABLE", "STORAGE_UNAVAILABLE"}
)  # the last two: the services ``served`` runs with are missing
# Lookups of one object: null means hidden.
LOOKUPS = frozenset(
    {"node", "project", "inspection", "companySetup", "stageApplication", "jointNotice"}
)


@dataclass
class World:
    tokens: dict[str, str]
    ids: dict[str, str]  # argument name -> value
    project_code: str
    material_type: str  # one the project holds
    setup_materials: list[str]  # every material of a restaurant's company setup
    setup_code: str = ""  # a restaurant's company setup, accepted by the clerk
    setup_task: int = 0  # one of its departments' tasks
    rating_code: str = ""  # of a completed stage of the enterprise's other project


def gid(type_name: str, number: object) -> str:
    return base64.b64encode(f"{type_name}:{number}".encode()).decode()


async def make_world(gql: GraphQLClient, clock: Clock) -> World:
    project = await create_project(gql, region="371402")
    await ready_stage(gql, project["id"], "project_approval")
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    stage_id = db_id(payload["stage"]["id"])
    task = await Task.filter(stage_id=stage_id, department__code="fgw").first()
    assert task is not None
    assert not await Task.filter(stage_id=stage_id, department__code="rfb").exists()
    window = await clerk()
    inspection = await schedule_site_check(
        viewer=window, project_id=db_id(project["id"]), department_codes=["zjj"], now=clock()
    )
    await assign_inspectors(
        viewer=window, inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    enterprise = await Enterprise.get(projects__id=db_id(project["id"]))

    async def token(name: str, role: Role, **where: Any) -> str:
        user = await create_user(
            username=f"m-{name}", password=PASSWORD, display_name=name, role=role, **where
        )
        made, _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=8))
        return made

    tokens = {
        "applicant": await token("applicant", Role.APPLICANT, enterprise_id=enterprise.id),
        "agent": gql.tokens["agent"],
        "clerk": gql.tokens["clerk"],
        "reviewer": await token(
            "fgw-dc", Role.REVIEWER, department_code="fgw", region_code="371402"
        ),
        "reviewer_dept": await token("rfb", Role.REVIEWER, department_code="rfb"),
        "reviewer_region": await token(
            "fgw-lc", Role.REVIEWER, department_code="fgw", region_code="371403"
        ),
        "inspector": gql.tokens["inspector"],
        "inspector_other": await token("zjj-2", Role.INSPECTOR, department_code="zjj"),
        "supervisor": await token("sup-dc", Role.SUPERVISOR, region_code="371402"),
        "supervisor_other": await token("sup-lc", Role.SUPERVISOR, region_code="371403"),
    }
    ids = {
        "projectId": project["id"],
        "taskId": gid("Task", task.id),
        "inspectionId": gid("Inspection", inspection.id),
        "id": project["id"],
        "meetingId": gid("ReviewMeeting", 2_000_000),
        "ratingId": gid("Rating", 2_000_000),
        "materialId": gid("Material", 2_000_000),
        "uploadId": "00000000-0000-4000-8000-000000000000",
        "code": project["code"],
        "stage": "project_approval",
        "username": "agent",
        "region": "371402",
        "path": f"/projects/{project['code']}/notice",
        "department": "zjj",
        "reviewerDepartment": "fgw",
        "businessType": "x",
    }
    await load_company_catalog(load_default_company_catalog())
    plan = await gql(
        'query { setupPlan(businessType: "restaurant") { materials { code } } }', as_="clerk"
    )
    material = await Material.filter(project_id=db_id(project["id"])).first()
    assert material is not None
    held = await material.material_type
    ids["materialId"] = gid("Material", material.id)
    world = World(
        tokens=tokens,
        ids=ids,
        project_code=project["code"],
        material_type=held.code,
        setup_materials=[m["code"] for m in plan["data"]["setupPlan"]["materials"]],
    )
    # Objects of their own for the doors that act on one: a meeting fgw is invited to, a
    # company setup, a person in 德城区 whom no viewer is.
    meeting = await gql(
        "mutation($input: ScheduleMeetingInput!) { scheduleMeeting(input: $input) "
        "{ meeting { id } errors { code } } }",
        VALID_INPUTS["scheduleMeeting"](world),
        as_="clerk",
    )
    ids["meetingId"] = meeting["data"]["scheduleMeeting"]["meeting"]["id"]
    setup = await gql(
        "mutation($input: AcceptCompanySetupInput!) { acceptCompanySetup(input: $input) "
        "{ setup { code } errors { code } } }",
        VALID_INPUTS["acceptCompanySetup"](world),
        as_="clerk",
    )
    world.setup_code = setup["data"]["acceptCompanySetup"]["setup"]["code"]
    setup_task = await SetupTask.filter(setup__code=world.setup_code).first()
    assert setup_task is not None
    world.setup_task = setup_task.id
    await create_user(
        username=BYSTANDER,
        password=PASSWORD,
        display_name="bystander",
        role=Role.REVIEWER,
        department_code="fgw",
        region_code="371402",
    )
    # A completed stage of another project of the enterprise, with its rating code (SMS).
    _, rated_stage = await accepted_project(gql)
    await complete(rated_stage, clock())
    await collect(now=clock())
    rating = await Rating.get(stage_id=rated_stage.id)
    world.rating_code = rating.code
    ids["ratingId"] = gid("Rating", rating.id)
    return world


BYSTANDER = "m-bystander"  # a reviewer in 德城区, for the doors that act on a person


# Fields whose placeholders would be refused for their input, or name no object, before the
# viewer mattered: the variables of a valid call on the world's objects, so that their rows say
# who may call them. (The company setup's task doors stay closed to all eleven viewers: its
# tasks belong to the company departments, whose reviewers are the columns of
# tests/test_authorization_setups.py.)
VALID_INPUTS: dict[str, Callable[[World], dict[str, Any]]] = {
    "setupPlan": lambda world: {"businessType": "restaurant"},
    "createProject": lambda world: {"input": project_input(name="矩阵测试项目")},
    "submitMaterial": lambda world: {
        "input": {
            "projectId": world.ids["projectId"],
            "materialType": world.material_type,
            "fileName": "again.pdf",
            "sizeBytes": 1024,
        }
    },
    "scheduleMeeting": lambda world: {
        "input": {
            "projectId": world.ids["projectId"],
            "stage": "project_approval",
            "at": "2026-03-10T09:00:00+08:00",
            "place": "三楼联审会议室",
            "departments": ["fgw"],
        }
    },
    "scheduleSiteCheck": lambda world: {
        "input": {"projectId": world.ids["projectId"], "departments": ["zjj"]}
    },
    "assignInspectors": lambda world: {
        "input": {"inspectionId": world.ids["inspectionId"], "usernames": ["inspector"]}
    },
    "recordCheck": lambda world: {
        "input": {
            "inspectionId": world.ids["inspectionId"],
            "check": "hydrant-pressure",
            "result": "PASS",
            "photoIds": [],
        }
    },
    "requestUpload": lambda world: {"input": upload_request(world)},
    "recordMeetingOpinion": lambda world: {
        "input": {
            "meetingId": world.ids["meetingId"],
            "department": "fgw",
            "agrees": True,
            "opinion": "同意",
        }
    },
    "rateService": lambda world: {"code": world.rating_code, "score": 2, "comment": "多次往返"},
    "rateMyService": lambda world: {
        "ratingId": world.ids["ratingId"],
        "score": 2,
        "comment": "多次往返",
    },
    "closeFollowUp": lambda world: {"ratingId": world.ids["ratingId"], "note": "已电话回访"},
    "companySetup": lambda world: {"code": world.setup_code},
    "issueCompanySetup": lambda world: {"code": world.setup_code},
    "reacceptCompanySetup": lambda world: {
        "code": world.setup_code,
        "materials": [world.setup_materials[0]],
    },
    "deliverSetupMaterial": lambda world: {
        "code": world.setup_code,
        "materialType": world.setup_materials[0],
    },
    "decideSetupTask": lambda world: {
        "input": {"taskId": world.setup_task, "decision": "APPROVED", "opinion": "同意"}
    },
    "stopSetupClock": lambda world: {
        "taskId": world.setup_task,
        "reason": "EXPERT_REVIEW",
        "note": "专家评审",
    },
    "resumeSetupClock": lambda world: {"taskId": world.setup_task},
    "requestSetupSupplement": lambda world: {"taskId": world.setup_task, "reason": "补充材料"},
    "revokeUserTokens": lambda world: {"username": BYSTANDER},
    "unlockLogin": lambda world: {"username": BYSTANDER},
    "acceptCompanySetup": lambda world: {
        "input": {
            "companyName": "德州市矩阵餐饮有限公司",
            "businessType": "restaurant",
            "region": "371402",
            "contactName": "赵敏",
            "contactPhone": "13800000001",
            "materials": world.setup_materials,
        }
    },
}


UPLOADED = "矩阵测试的材料".encode()


def upload_request(world: World) -> dict[str, Any]:
    """A material's upload for the world's project, of bytes never stored before."""
    return {
        "kind": "MATERIAL",
        "sha256": hashlib.sha256(UPLOADED).hexdigest(),
        "sizeBytes": len(UPLOADED),
        "contentType": "application/pdf",
        "fileName": "matrix.pdf",
        "material": {"projectId": world.ids["projectId"], "materialType": world.material_type},
    }


@pytest.fixture
async def served(gql: GraphQLClient, clock: Clock, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    """The API with the services a server runs with: field documents (an in-memory editor in
    place of the sync server) and an object store (a folder), so that no door is refused for
    a missing service before the viewer matters."""
    store = LocalObjectStore(tmp_path / "objects", secret=b"matrix-test-secret-32-bytes-long")
    app = documents_app(clock, MemoryEditor(FieldDocuments(clock=clock)))
    transport = httpx.ASGITransport(app=with_state(app, object_store=store))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http=http, tokens=gql.tokens)


# Arguments named alike that mean another object in one field.
FIELD_IDS = {
    ("inspection", "id"): "inspectionId",
    ("node", "id"): "projectId",
    ("reviewQueue", "department"): "reviewerDepartment",
}


def placeholder(name: str, kind: GraphQLInputType, world: World, depth: int = 0) -> Any:
    """A schema-valid value for a required argument or input field."""
    nullable = not isinstance(kind, GraphQLNonNull)
    inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if nullable and depth > 0:
        return None
    if isinstance(inner, GraphQLList):
        return [placeholder(name, inner.of_type, world, depth + 1)]
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        return {
            field_name: placeholder(field_name, field.type, world, depth + 1)
            for field_name, field in inner.fields.items()
            if isinstance(field.type, GraphQLNonNull) or field_name in world.ids
        }
    assert isinstance(inner, GraphQLScalarType)
    if name in world.ids and inner.name in ("ID", "String"):
        return world.ids[name]
    return {
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "Decimal": "1",
        "Date": "2026-03-10",
        "DateTime": "2026-03-10T09:00:00+08:00",
        "JSON": {},
    }.get(inner.name, "placeholder-text")


def selection(field: GraphQLField) -> str:
    named = get_named_type(field.type)
    if isinstance(named, GraphQLObjectType) and "errors" in named.fields:
        return "{ __typename errors { code } }"
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
        return "{ __typename }"
    return ""


def outcome(name: str, body: dict[str, Any]) -> str:
    codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}
    data = (body.get("data") or {}).get(name)
    if isinstance(data, dict):
        codes |= {e["code"] for e in data.get("errors") or []}
    if codes & CLOSED_CODES:
        return CLOSED
    if name in LOOKUPS and data is None:
        return CLOSED
    if codes & INPUT_CODES:
        return INPUT
    unexplained = {c for c in codes if c is None}
    assert not unexplained, body  # every failure must carry its code
    return OPEN


def operation(
    kind: str, name: str, field: GraphQLField, world: World
) -> tuple[str, dict[str, Any]]:
    variables: dict[str, Any] = {}
    declared, passed = [], []
    for arg_name, arg in field.args.items():
        if not isinstance(arg.type, GraphQLNonNull) and arg_name not in world.ids:
            continue
        variables[arg_name] = placeholder(
            FIELD_IDS.get((name, arg_name), arg_name), arg.type, world
        )
        declared.append(f"${arg_name}: {arg.type}")
        passed.append(f"{arg_name}: ${arg_name}")
    if name in VALID_INPUTS:
        variables = VALID_INPUTS[name](world)
    head = f"{kind}({', '.join(declared)})" if declared else kind
    args = f"({', '.join(passed)})" if passed else ""
    return f"{head} {{ {name}{args} {selection(field)} }}", variables


def test_every_root_field_has_a_row() -> None:
    schema = build_schema()._schema
    fields = {
        *schema.query_type.fields,  # type: ignore[union-attr]
        *schema.mutation_type.fields,  # type: ignore[union-attr]
    }
    missing = sorted(fields - set(MATRIX))
    assert not missing, f"add a row to MATRIX for each new root field: {missing}"
    assert not set(MATRIX) - fields, sorted(set(MATRIX) - fields)


async def test_the_authorization_matrix(
    gql: GraphQLClient, served: GraphQLClient, clock: Clock
) -> None:
    world = await make_world(gql, clock)
    # An upload the clerk asked for (the bytes not sent yet): confirmUpload's object.
    asked = await served(REQUEST, {"input": upload_request(world)}, as_="clerk")
    assert asked["data"]["requestUpload"]["errors"] == [], asked
    world.ids["uploadId"] = asked["data"]["requestUpload"]["upload"]["id"]
    schema = build_schema()._schema
    found: dict[str, dict[str, str]] = {}
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            if name in ("logout", "changePassword", "revokeUserTokens"):
                continue  # asked last: they end sessions
            document, variables = operation(kind, name, field, world)
            found[name] = {}
            await LoginThrottle.all().delete()  # throttling is tested on its own
            for viewer in VIEWERS:
                token = world.tokens.get(viewer)
                body = await served(document, variables, token=token)
                found[name][viewer] = outcome(name, body)
    for name in ("changePassword", "revokeUserTokens", "logout"):
        root = schema.mutation_type
        assert root is not None
        document, variables = operation("mutation", name, root.fields[name], world)
        found[name] = {}
        for viewer in VIEWERS:
            body = await served(document, variables, token=world.tokens.get(viewer))
            found[name][viewer] = outcome(name, body)
    wrong = {
        (name, viewer): (MATRIX[name][viewer], answer)
        for name, answers in found.items()
        for viewer, answer in answers.items()
        if MATRIX[name][viewer] != answer
    }
    assert not wrong, "\n".join(
        f"{name} as {viewer}: expected {expected}, got {got}"
        for (name, viewer), (expected, got) in sorted(wrong.items())
    )
