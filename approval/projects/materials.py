"""The project's material library (一套材料、一次收取): one material type, delivered once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, visible_project
from approval.core.calendar import working_calendar
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.projects.tasks import (
    STAGE_SUSPENDED,
    PauseReason,
    calendar_error,
    restart_clocks,
)
from storage.enums import MaterialStatus, ObjectKind, Role, StageStatus, TaskStatus, UploadStatus
from storage.models import (
    Material,
    MaterialType,
    MaterialVersion,
    Stage,
    SupplementRequest,
    Task,
    Upload,
)

SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class MaterialFile:
    """What is known of a delivered file; the bytes themselves live in object storage."""

    file_name: str
    size_bytes: int | None = None
    sha256: str | None = None
    note: str = ""


def _check_file(file: MaterialFile) -> MaterialFile:
    name = file.file_name.strip()
    if not name or len(name) > 255 or "/" in name or "\\" in name or name in (".", ".."):
        raise invalid(
            "file name must be 1-255 characters without path separators", field="fileName"
        )
    if file.size_bytes is not None and file.size_bytes <= 0:
        raise invalid("file size must be positive", field="sizeBytes")
    sha = file.sha256.lower() if file.sha256 else None
    if sha is not None and (len(sha) != 64 or not set(sha) <= SHA256_HEX):
        raise invalid("sha256 must be 64 hexadecimal characters", field="sha256")
    return MaterialFile(file_name=name, size_bytes=file.size_bytes, sha256=sha, note=file.note)


async def submit_material(
    *,
    viewer: Viewer,
    project_id: int,
    material_type_code: str,
    file: MaterialFile | None = None,
    upload_id: UUID | None = None,
    now: datetime,
) -> Material:
    """A new version of a material; it fulfils a commitment and answers supplement requests.

    The file is either described (``file``: paper delivered at the window) or delivered
    through a confirmed upload (``upload_id``): one version, one stored object. Submitting the
    same upload again answers the material as it is."""
    require_role(viewer, Role.WINDOW_CLERK, Role.APPLICANT, Role.AGENT)
    project = await visible_project(viewer, project_id)
    material_type = await MaterialType.get_or_none(code=material_type_code)
    if material_type is None:
        raise invalid(
            f"material type {material_type_code!r} is not in the catalog", field="materialType"
        )
    upload: Upload | None = None
    if upload_id is not None:
        upload = await _delivered_upload(
            viewer=viewer,
            upload_id=upload_id,
            project_id=project.id,
            material_type_id=material_type.id,
        )
        done = await MaterialVersion.get_or_none(upload_id=upload.id)
        if done is not None:
            return await Material.get(id=done.material_id)
        file = MaterialFile(
            file_name=upload.file_name,
            size_bytes=upload.size_bytes,
            sha256=upload.sha256,
            note=file.note if file else "",
        )
    if file is None:
        raise invalid("give the file: an uploadId, or its name for paper", field="uploadId")
    file = _check_file(file)
    calendar = await _calendar_if_needed(project_id=project.id, material_type_id=material_type.id)
    async with in_transaction():
        material, _ = await Material.get_or_create(
            project_id=project.id,
            material_type_id=material_type.id,
            defaults={"status": MaterialStatus.SUBMITTED},
        )
        material = await Material.select_for_update().get(id=material.id)
        before = {"status": material.status.value, "version": material.current_version}
        material.current_version += 1
        material.status = MaterialStatus.SUBMITTED
        material.rejection_reason = ""
        material.commitment_due = None
        await material.save()
        await MaterialVersion.create(
            material_id=material.id,
            version=material.current_version,
            file_name=file.file_name,
            size_bytes=file.size_bytes,
            sha256=file.sha256,
            note=file.note,
            submitted_by_id=viewer.user_id,
            upload_id=upload.id if upload else None,
            object_id=upload.object_id if upload else None,
        )
        open_requests = SupplementRequest.filter(
            material_type_id=material_type.id,
            resolved_at__isnull=True,
            task__stage__project_id=project.id,
        )
        task_ids = await open_requests.values_list("task_id", flat=True)
        await SupplementRequest.filter(
            id__in=await open_requests.values_list("id", flat=True)
        ).update(resolved_at=now)
        # The same lock order as approval.projects.tasks: the stages first (by id), then
        # their tasks.
        suspended = await Stage.filter(project_id=project.id, status=StageStatus.SUSPENDED)
        answered_stages = await Task.filter(id__in=list(task_ids)).values_list(
            "stage_id", flat=True
        )
        stage_ids = {int(i) for i in answered_stages} | {s.id for s in suspended}  # type: ignore[call-overload]
        for stage_id in sorted(stage_ids):
            await Stage.select_for_update().get(id=stage_id)
        answered = await Task.select_for_update().filter(
            id__in=list(task_ids), status=TaskStatus.SUPPLEMENT_REQUESTED
        )
        for task in answered:
            task.status = TaskStatus.PENDING
            await task.save(update_fields=["status"])
        try:
            restarted = await restart_clocks(
                tasks=answered,
                reasons=(PauseReason.SUPPLEMENT.value,),
                now=now,
                calendar=calendar,
                actor_id=viewer.user_id,
                project_id=project.id,
            )
            resumed_stages = await _resume_suspended_stages(
                project_id=project.id, now=now, calendar=calendar, actor_id=viewer.user_id
            )
        except CalendarUnknownError as exc:  # nothing is stored: the transaction rolls back
            raise calendar_error(exc, field="materialType") from None
        await audit.record(
            actor_id=viewer.user_id,
            action="material.submit",
            entity_type="material",
            entity_id=material.id,
            project_id=project.id,
            before=before,
            after={
                "status": material.status.value,
                "version": material.current_version,
                "fileName": file.file_name,
                "sha256": file.sha256,
                "upload": str(upload.id) if upload else None,
                "resumedTasks": sorted(t.id for t in answered),
                "restartedClocks": sorted(restarted),
                "resumedStages": resumed_stages,
            },
        )
    return material


async def _calendar_if_needed(*, project_id: int, material_type_id: int) -> WorkingCalendar:
    """The stored calendar, read only when a stopped clock may restart."""
    waiting = await SupplementRequest.filter(
        material_type_id=material_type_id,
        resolved_at__isnull=True,
        task__stage__project_id=project_id,
        task__paused_at__isnull=False,
    ).exists()
    suspended = await Stage.filter(project_id=project_id, status=StageStatus.SUSPENDED).exists()
    if not (waiting or suspended):
        return WorkingCalendar(known_years=(), holidays=(), workdays=())
    return await working_calendar()


async def _resume_suspended_stages(
    *, project_id: int, now: datetime, calendar: WorkingCalendar, actor_id: int
) -> list[int]:
    """A stage suspended (中止) for an overdue 容缺 commitment goes back to review once no
    commitment of the project is overdue; the clocks the suspension stopped restart."""
    today = local_day(now)
    if await Material.filter(
        project_id=project_id, status=MaterialStatus.COMMITTED, commitment_due__lt=today
    ).exists():
        return []
    resumed: list[int] = []
    for stage in await Stage.filter(project_id=project_id, status=StageStatus.SUSPENDED):
        updated = await Stage.filter(id=stage.id, status=StageStatus.SUSPENDED).update(
            status=StageStatus.IN_REVIEW
        )
        if not updated:
            continue
        stopped = await Task.select_for_update().filter(
            stage_id=stage.id, round=stage.round, paused_at__isnull=False
        )
        restarted = await restart_clocks(
            tasks=list(stopped),
            reasons=(STAGE_SUSPENDED,),
            now=now,
            calendar=calendar,
            actor_id=actor_id,
            project_id=project_id,
        )
        await audit.record(
            actor_id=actor_id,
            action="stage.resume",
            entity_type="stage",
            entity_id=stage.id,
            project_id=project_id,
            before={"status": StageStatus.SUSPENDED.value},
            after={"status": StageStatus.IN_REVIEW.value, "restartedClocks": sorted(restarted)},
        )
        resumed.append(stage.id)
    return resumed


async def review_material(
    *, viewer: Viewer, material_id: int, accept: bool, reason: str, now: datetime
) -> Material:
    """The window checks a delivered material: accepted, or rejected with the reason."""
    require_role(viewer, Role.WINDOW_CLERK)
    material = await Material.get_or_none(id=material_id)
    if material is None:
        raise not_found("material", material_id, field="materialId")
    await visible_project(viewer, material.project_id)
    if material.status is not MaterialStatus.SUBMITTED:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"material {material_id} is "
            f"{material.status.value}; only a submitted one can be reviewed",
            field="materialId",
        )
    if not accept and not reason.strip():
        raise invalid("a rejection needs a reason the applicant can act on", field="reason")
    before = {"status": material.status.value}
    material.status = MaterialStatus.ACCEPTED if accept else MaterialStatus.REJECTED
    material.rejection_reason = "" if accept else reason.strip()
    await material.save(update_fields=["status", "rejection_reason", "updated_at"])
    await audit.record(
        actor_id=viewer.user_id,
        action="material.review",
        entity_type="material",
        entity_id=material.id,
        project_id=material.project_id,
        before=before,
        after={"status": material.status.value, "reason": material.rejection_reason},
    )
    return material


async def _delivered_upload(
    *, viewer: Viewer, upload_id: UUID, project_id: int, material_type_id: int
) -> Upload:
    """A confirmed material upload of this project and material type, made by the viewer."""
    upload = await Upload.get_or_none(id=upload_id, requested_by_id=viewer.user_id)
    if upload is None or upload.kind is not ObjectKind.MATERIAL:
        raise not_found("material upload", str(upload_id), field="uploadId")
    if upload.project_id != project_id or upload.material_type_id != material_type_id:
        raise invalid(
            "this upload was asked for another project or material type; ask for a ticket "
            "for this material",
            field="uploadId",
        )
    if upload.status is not UploadStatus.CONFIRMED:
        raise DomainError(
            ErrorCode.UPLOAD_NOT_RECEIVED,
            "this upload is not confirmed yet; PUT the file and call confirmUpload first",
            field="uploadId",
        )
    return upload
