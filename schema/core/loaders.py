"""One DataLoader per relation, built per request: nested fields cost one query per level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from storage.enums import ObjectKind, UploadStatus
from storage.models import (
    AuditEvent,
    Enterprise,
    Inspection,
    Material,
    MaterialVersion,
    SetupTaskRound,
    Stage,
    StoredObject,
    SupplementRequest,
    Task,
    Upload,
    User,
)

M = TypeVar("M", bound=Model)


def _by_id(model: type[M]) -> DataLoader[int, M | None]:
    async def load(ids: Sequence[int]) -> list[M | None]:
        rows = {row.pk: row for row in await model.filter(id__in=list(ids))}
        return [rows.get(i) for i in ids]

    return DataLoader(load_fn=load)


def _grouped(
    fetch: Callable[[list[int]], Awaitable[list[M]]], key: Callable[[M], int]
) -> DataLoader[int, list[M]]:
    async def load(ids: Sequence[int]) -> list[list[M]]:
        groups: dict[int, list[M]] = defaultdict(list)
        for row in await fetch(list(ids)):
            groups[key(row)].append(row)
        return [groups[i] for i in ids]

    return DataLoader(load_fn=load)


async def _current_tasks(keys: Sequence[tuple[int, int]]) -> list[list[Task]]:
    """Tasks of each (stage id, round): only the stage's current round is shown."""
    wanted = set(keys)
    groups: dict[tuple[int, int], list[Task]] = defaultdict(list)
    rows = await Task.filter(stage_id__in=[s for s, _ in wanted]).order_by("id")
    for task in rows:
        key = (task.stage_id, task.round)
        if key in wanted:
            groups[key].append(task)
    return [groups[k] for k in keys]


async def _photos(keys: Sequence[tuple[int, str]]) -> list[StoredObject | None]:
    """Stored photos by (inspection, photo id: the SHA-256 of the bytes), counted only where
    a confirmed upload delivered them for that inspection; None: not uploaded for it (yet).
    Knowing another inspection's photo id shows nothing."""
    uploads = await Upload.filter(
        kind=ObjectKind.PHOTO,
        status=UploadStatus.CONFIRMED,
        inspection_id__in={inspection for inspection, _ in keys},
        sha256__in={photo for _, photo in keys},
        object_id__not_isnull=True,
    ).select_related("object")
    rows = {(u.inspection_id, u.sha256): u.object for u in uploads}
    return [rows.get(key) for key in keys]


@dataclass(frozen=True)
class Loaders:
    enterprise: DataLoader[int, Enterprise | None]
    user: DataLoader[int, User | None]
    stages_by_project: DataLoader[int, list[Stage]]
    tasks_by_stage_round: DataLoader[tuple[int, int], list[Task]]
    materials_by_project: DataLoader[int, list[Material]]
    versions_by_material: DataLoader[int, list[MaterialVersion]]
    supplements_by_task: DataLoader[int, list[SupplementRequest]]
    rounds_by_setup_task: DataLoader[int, list[SetupTaskRound]]
    # a setup task's site-check inspections, oldest first (the last is the current round's)
    inspections_by_setup_task: DataLoader[int, list[Inspection]]
    audit_by_project: DataLoader[int, list[AuditEvent]]
    photo_by_id: DataLoader[tuple[int, str], StoredObject | None]
    stored_object: DataLoader[int, StoredObject | None]


def build_loaders() -> Loaders:
    return Loaders(
        enterprise=_by_id(Enterprise),
        user=_by_id(User),
        stages_by_project=_grouped(
            lambda ids: Stage.filter(project_id__in=ids).order_by("definition_id"),
            lambda s: s.project_id,
        ),
        tasks_by_stage_round=DataLoader(load_fn=_current_tasks),
        materials_by_project=_grouped(
            lambda ids: Material.filter(project_id__in=ids).order_by("material_type_id"),
            lambda m: m.project_id,
        ),
        versions_by_material=_grouped(
            lambda ids: MaterialVersion.filter(material_id__in=ids).order_by("version"),
            lambda v: v.material_id,
        ),
        supplements_by_task=_grouped(
            lambda ids: SupplementRequest.filter(task_id__in=ids).order_by("id"),
            lambda r: r.task_id,
        ),
        rounds_by_setup_task=_grouped(
            lambda ids: SetupTaskRound.filter(task_id__in=ids).order_by("round"),
            lambda r: r.task_id,
        ),
        inspections_by_setup_task=_grouped(
            lambda ids: Inspection.filter(setup_task_id__in=ids).order_by("id"),
            lambda i: i.setup_task_id or 0,
        ),
        audit_by_project=_grouped(
            lambda ids: AuditEvent.filter(project_id__in=ids).order_by("id"),
            lambda e: e.project_id or 0,
        ),
        photo_by_id=DataLoader(load_fn=_photos),
        stored_object=_by_id(StoredObject),
    )
