"""Steps the field-work tests share: a project at completion acceptance, people, an editor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pycrdt import Doc
from starlette.applications import Starlette
from starlette.routing import Route

from approval.core.access import Viewer
from approval.core.auth import viewer_of
from approval.fieldwork.inspections import FieldRights
from approval.fieldwork.policy import FieldDocuments
from approval.projects.tasks import decide_task
from approval.review.rules import OPEN
from schema.app import graphql_app
from storage.enums import Decision, Role
from storage.models import Department, Stage, Task, User
from tests.helpers import accept, create_project, db_id, ready_stage

STAGES = ("project_approval", "engineering_permit", "construction_permit", "completion_acceptance")


async def person(username: str, role: Role, department_code: str | None = None) -> Viewer:
    department = await Department.get(code=department_code) if department_code else None
    user, _ = await User.get_or_create(
        username=username,
        defaults={
            "display_name": username,
            "password_hash": "-",
            "role": role,
            "department": department,
        },
    )
    return await viewer_of(user)


async def inspector(department_code: str, n: int = 1) -> Viewer:
    return await person(f"验收员{n}-{department_code}", Role.INSPECTOR, department_code)


async def reviewer(department_code: str) -> Viewer:
    return await person(f"reviewer-{department_code}", Role.REVIEWER, department_code)


async def clerk() -> Viewer:
    return await viewer_of(await User.get(username="clerk"))


async def supervisor() -> Viewer:
    return await viewer_of(await User.get(username="supervisor"))


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


async def at_acceptance(gql: Any, clock: Any) -> tuple[dict[str, Any], Stage]:
    """A project with stages 1-3 approved and completion acceptance (stage 4) in review."""
    project = await create_project(gql)
    for code in STAGES:
        await ready_stage(gql, project["id"], code)
        payload = await accept(gql, project["id"], code)
        assert payload["errors"] == [], payload
        if code != STAGES[-1]:
            await approve_open_tasks(db_id(payload["stage"]["id"]), clock())
    stage = await Stage.get(project_id=db_id(project["id"]), definition__code=STAGES[-1])
    return project, stage


async def stage_departments(stage: Stage) -> list[str]:
    """The codes of the departments with a task in the stage's current round."""
    rows = await Task.filter(stage_id=stage.id, round=stage.round).prefetch_related("department")
    return sorted({t.department.code for t in rows})


class MemoryEditor:
    """The sync server's part, in memory: change a copy, validate, merge, materialise."""

    def __init__(self, policy: FieldDocuments) -> None:
        self.policy = policy
        self.docs: dict[str, Doc] = {}

    async def doc(self, doc_name: str) -> Doc:
        if doc_name not in self.docs:
            await self.policy.prepare(doc_name)
            doc: Doc = Doc()
            layout = self.policy.initial_update(doc_name)
            if layout is not None:
                doc.apply_update(layout)
            self.docs[doc_name] = doc
        return self.docs[doc_name]

    async def receive(self, doc_name: str, update: bytes, rights: FieldRights) -> None:
        """An update from a tablet: validated on a scratch copy, then kept and materialised."""
        doc = await self.doc(doc_name)
        after: Doc = Doc()
        after.apply_update(doc.get_update())
        after.apply_update(update)
        self.policy.validate(doc_name=doc_name, before=doc, after=after, access=rights)
        doc.apply_update(update)
        await self.policy.materialise(doc_name=doc_name, doc=doc)

    async def edit(
        self, doc_name: str, change: Callable[[Doc], None], *, rights: FieldRights
    ) -> None:
        doc = await self.doc(doc_name)
        scratch: Doc = Doc()
        scratch.apply_update(doc.get_update())
        change(scratch)
        await self.receive(doc_name, scratch.get_update(doc.get_state()), rights)


def documents_app(clock: Callable[[], datetime], editor: MemoryEditor) -> Starlette:
    """The GraphQL app editing field documents through ``editor`` (the sync server's part)."""
    graphql = graphql_app(token_ttl=timedelta(hours=8), clock=clock, documents=editor)
    return Starlette(routes=[Route("/graphql", graphql)])
