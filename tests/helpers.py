"""Small steps the GraphQL tests share: make a project, ready its materials, accept a stage."""

from __future__ import annotations

from typing import Any

from strawberry.relay import GlobalID

from approval.core.codes import credit_code_with_check
from approval.projects.stages import stage_readiness
from storage.models import Project, Stage

CREDIT_CODE = credit_code_with_check("91371400MA3C12345")

CREATE = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) {
    project { id code name stages { code status } }
    errors { code field message }
  }
}"""

SUBMIT = """
mutation($input: SubmitMaterialInput!) {
  submitMaterial(input: $input) { material { id status version } errors { code field message } }
}"""

ACCEPT = """
mutation($input: AcceptStageInput!) {
  acceptStageApplication(input: $input) {
    stage { id code status round deadline tasks { id deadline department { code } } }
    errors { code field message }
  }
}"""


def project_input(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "德州市第一人民医院门诊楼扩建项目",
        "creditCode": CREDIT_CODE,
        "enterpriseName": "德州康宁医疗投资有限公司",
        "region": "371402",
        "projectType": "APPROVAL",
        "industryCode": "84",
        "landArea": "12000.50",
        "floorArea": "36000",
        "investment": "28000",
        "address": "德城区新湖大街",
        "agent": "agent",
    }
    values.update(overrides)
    return values


async def create_project(gql: Any, **overrides: Any) -> dict[str, Any]:
    body = await gql(CREATE, {"input": project_input(**overrides)}, as_="clerk")
    payload = body["data"]["createProject"]
    assert payload["errors"] == [], payload
    project: dict[str, Any] = payload["project"]
    return project


def db_id(global_id: str) -> int:
    return int(GlobalID.from_id(global_id).node_id)


async def stage_needs(project_id: str, stage_code: str) -> tuple[list[str], list[str]]:
    """The (core, non-core) material type codes still missing for a stage."""
    project = await Project.get(id=db_id(project_id))
    stage = await Stage.get(project=project, definition__code=stage_code).select_related(
        "definition"
    )
    readiness = await stage_readiness(project=project, stage=stage)
    return (
        [t.code for t in readiness.missing_core],
        [t.code for t in readiness.missing_non_core],
    )


async def submit(gql: Any, project_id: str, material_type: str, *, as_: str = "clerk") -> None:
    body = await gql(
        SUBMIT,
        {
            "input": {
                "projectId": project_id,
                "materialType": material_type,
                "fileName": f"{material_type}.pdf",
                "sizeBytes": 1024,
            }
        },
        as_=as_,
    )
    assert body["data"]["submitMaterial"]["errors"] == [], body


async def ready_stage(gql: Any, project_id: str, stage_code: str) -> None:
    core, non_core = await stage_needs(project_id, stage_code)
    for code in core + non_core:
        await submit(gql, project_id, code)


async def accept(gql: Any, project_id: str, stage_code: str, **extra: Any) -> dict[str, Any]:
    body = await gql(
        ACCEPT, {"input": {"projectId": project_id, "stage": stage_code, **extra}}, as_="clerk"
    )
    payload: dict[str, Any] = body["data"]["acceptStageApplication"]
    return payload
