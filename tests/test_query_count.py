"""No N+1: the statements a nested projects page costs do not grow with the page size."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from storage.enums import ObjectKind
from storage.models import Material, MaterialVersion, Project, Stage, StoredObject, Task
from tests.helpers import accept, create_project, ready_stage

NESTED = """
query($first: Int!) {
  projects(first: $first) {
    totalCount
    edges { node {
      code name enterprise { name } region { name } agent { displayName }
      stages { code name status leadDepartment { shortName }
        tasks { status deadline department { name } item { name department { code } } } }
      materials { status materialType { name }
        versions { version fileName file { sha256 contentType } } }
    } }
  }
}"""

SQL_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().lstrip()
        # Not counted: the catalog cache's generation lookup, made at most every 0.5 s of real
        # time whatever the request (schema/core/catalog_cache.py): on a loaded machine one
        # request pays it and the next not. Not a cost of what the request reads.
        if message.upper().startswith(SQL_VERBS) and 'FROM "generation"' not in message:
            self.statements.append(message)


@contextmanager
def count_sql() -> Iterator[list[str]]:
    logger = logging.getLogger("tortoise.db_client")
    counter, level = _Counter(), logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        yield counter.statements
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


async def _copy_projects(template_code: str, copies: int) -> None:
    """Clone one worked project many times, straight into the tables (a fast set-up)."""
    template = (await Project.filter(code=template_code).values())[0]
    stages = await Stage.filter(project_id=template["id"]).values()
    tasks = await Task.filter(stage__project_id=template["id"]).values()
    materials = await Material.filter(project_id=template["id"]).values()
    versions = await MaterialVersion.filter(material__project_id=template["id"]).values()

    def clone(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        return {**{k: v for k, v in row.items() if k != "id"}, **changes}

    for n in range(copies):
        code = f"{template_code[:-6]}{900000 + n:06d}"
        project = await Project.create(**clone(template, code=code))
        stage_ids = {}
        for stage in stages:
            stage_ids[stage["id"]] = (await Stage.create(**clone(stage, project_id=project.id))).id
        await Task.bulk_create([Task(**clone(t, stage_id=stage_ids[t["stage_id"]])) for t in tasks])
        for material in materials:
            copy = await Material.create(**clone(material, project_id=project.id))
            await MaterialVersion.bulk_create(
                [
                    MaterialVersion(**clone(v, material_id=copy.id))
                    for v in versions
                    if v["material_id"] == material["id"]
                ]
            )


async def test_statement_count_is_the_same_for_10_and_100_projects(gql):
    project = await create_project(gql)
    await ready_stage(gql, project["id"], "project_approval")
    assert (await accept(gql, project["id"], "project_approval"))["errors"] == []
    # Every version has its file in the object store (one row per content).
    versions = await MaterialVersion.filter(material__project__code=project["code"])
    for n, version in enumerate(versions):
        stored = await StoredObject.create(
            kind=ObjectKind.MATERIAL,
            sha256=f"{n:064x}",
            key=f"materials/00/{n:064x}",
            size_bytes=100 + n,
            content_type="application/pdf",
        )
        await MaterialVersion.filter(id=version.id).update(object_id=stored.id)
    await _copy_projects(project["code"], 109)
    # The first request reads the catalog snapshot the API keeps in memory; measure after it.
    await gql("query { viewer { username } }", as_="supervisor")
    counts = {}
    seen: dict[int, list[str]] = {}
    for first in (10, 100):
        with count_sql() as statements:
            body = await gql(NESTED, {"first": first}, as_="supervisor")
        assert "errors" not in body, body
        edges = body["data"]["projects"]["edges"]
        assert len(edges) == first
        assert all(len(e["node"]["stages"]) == 4 for e in edges)
        assert all(len(e["node"]["stages"][0]["tasks"]) >= 6 for e in edges)
        assert all(len(e["node"]["materials"]) >= 5 for e in edges)
        files = [v["file"] for e in edges for m in e["node"]["materials"] for v in m["versions"]]
        assert files and all(f["contentType"] == "application/pdf" for f in files)
        counts[first] = len(statements)
        seen[first] = [s.split(" WHERE")[0][:90] for s in statements]
    assert counts[10] == counts[100], (
        counts,
        "\n".join(f"{a} | {b}" for a, b in zip(seen[10], seen[100] + [""], strict=False)),
    )
    print(f"SQL statements per nested page: {counts}")
    assert counts[100] <= 12, counts
