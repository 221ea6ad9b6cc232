"""Field documents on the server: the policy a sync room is given, and changes from GraphQL.

:class:`FieldDocuments` implements the sync room's ``DocumentPolicy`` structurally (approval does
not import sync): it makes each document's layout once, validates every incoming update against the
layout and the writer's rights, and materialises the merged document into the rows GraphQL reads.
The server adapts two types: :class:`~approval.fieldwork.inspections.FieldRights` into the room's
``Access``, and :class:`~approval.fieldwork.documents.LayoutError` into ``UpdateRefused``.

A GraphQL mutation that records something the field records (a check, a conclusion) does not
write rows: it hands a change to a :class:`DocumentEditor`, which applies it to the document
like any other update, so the document stays the one source of truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pycrdt import Array, Doc, Map
from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer
from approval.core.dates import CHINA
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.fieldwork.documents import (
    DOCUMENT_ROOTS,
    MAX_NAME,
    MAX_TEXT,
    AgencyLayout,
    ChangeEvent,
    LayoutError,
    added_photos,
    check_container,
    conclusion_container,
    inspection_doc_name,
    parse_doc_name,
    read_agency,
    read_inspection,
    validate_agency,
    validate_inspection,
)
from approval.fieldwork.documents import (
    initial_update as layout_update,
)
from approval.fieldwork.inspections import (
    OPEN_STATUSES,
    FieldRights,
    document_access,
    inspection_layout,
    mark_in_progress,
    record_conclusion,
)
from storage.enums import CheckOutcome, Conclusion, ObjectKind
from storage.models import (
    AgencyEntry,
    CheckResult,
    Inspection,
    InspectionDepartment,
    Project,
    Rectification,
    Upload,
    User,
)

Change = Callable[[Doc], None]


class FieldAccess(Protocol):
    """What validation needs of a connection's rights (the sync room's ``Access`` has it)."""

    @property
    def department_code(self) -> str | None: ...

    @property
    def role(self) -> str: ...

    @property
    def writable(self) -> bool: ...


class DocumentEditor(Protocol):
    """Applies a change to a field document as if a client had sent it.

    ``edit`` runs ``change`` on a copy of the document, validates the result with the document's
    policy for ``rights`` (raising :class:`~approval.fieldwork.documents.LayoutError`, or a
    DomainError, when it is refused), keeps and broadcasts the update, and returns only after the
    document has been materialised, so the caller reads the new rows.
    """

    async def edit(self, doc_name: str, change: Change, *, rights: FieldRights) -> None: ...


def _aware(moment: datetime | None) -> datetime | None:
    """Times written without an offset are Beijing time."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=CHINA)


SHA256_CHARS = 64  # Upload.sha256: hex digits


class FieldDocuments:
    """The DocumentPolicy of ``inspection/{id}`` and ``agency/{project id}`` documents.

    Before a room of an inspection document opens, the server awaits :meth:`prepare`, which
    reads the inspection's frozen layout; :meth:`initial_update` is synchronous (it is called
    by the room) and answers from what ``prepare`` read.
    """

    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._layouts: dict[str, bytes | None] = {}

    async def prepare(self, doc_name: str) -> None:
        kind, key = parse_doc_name(doc_name)
        if doc_name in self._layouts:
            return
        if kind == "inspection":
            self._layouts[doc_name] = layout_update(await inspection_layout(key))
        else:
            self._layouts[doc_name] = None  # the root map of entries needs no container

    def initial_update(self, doc_name: str) -> bytes | None:
        kind, _ = parse_doc_name(doc_name)
        if kind == "agency":
            return None
        if doc_name not in self._layouts:
            raise RuntimeError(f"await FieldDocuments.prepare({doc_name!r}) before opening it")
        return self._layouts[doc_name]

    def observed_roots(self, doc_name: str) -> tuple[str, ...]:
        """The root map whose deep events the room collects while it applies an update."""
        kind, _ = parse_doc_name(doc_name)
        return (DOCUMENT_ROOTS[kind],)

    def validate(
        self,
        *,
        doc_name: str,
        before: Doc,
        after: Doc,
        access: FieldAccess,
        changes: Sequence[ChangeEvent] | None = None,
    ) -> None:
        """Judged by ``changes`` (what the update changed) when the room gives them."""
        kind, _ = parse_doc_name(doc_name)
        if kind == "inspection":
            validate_inspection(
                before,
                after,
                department_code=access.department_code,
                role=access.role,
                writable=access.writable,
                changes=changes,
            )
        else:
            validate_agency(
                before, after, role=access.role, writable=access.writable, changes=changes
            )

    async def admit(
        self, *, doc_name: str, changes: Sequence[ChangeEvent], access: FieldAccess
    ) -> None:
        """What validation cannot see: a photo id added to a check must not be the upload of
        another inspection or project (an id not uploaded yet is fine: tablets sync the
        document before they upload, and GraphQL shows it as pending)."""
        kind, key = parse_doc_name(doc_name)
        added = added_photos(changes) if kind == "inspection" else {}
        if not added:
            return
        # An id longer than a SHA-256 (the document allows 128 characters) names no upload:
        # asking for it would fail the column's length check, not find an owner.
        hashes = sorted(photo for photo in added if len(photo) <= SHA256_CHARS)
        targets: dict[str, set[int | None]] = {}
        for sha256, inspection_id in await Upload.filter(
            sha256__in=hashes, kind=ObjectKind.PHOTO
        ).values_list("sha256", "inspection_id"):
            targets.setdefault(str(sha256), set()).add(inspection_id)
        for photo, where in sorted(added.items()):
            owners = targets.get(photo)
            if owners and key not in owners:
                raise LayoutError(
                    f"{where}: photo {photo[:12]}... was uploaded for another inspection or "
                    "project; attach a photo taken for this check (its upload names this "
                    "inspection)"
                )

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        kind, key = parse_doc_name(doc_name)
        if kind == "inspection":
            await materialise_inspection(inspection_id=key, doc=doc, now=self.clock())
        else:
            await materialise_agency(project_id=key, doc=doc)


def agency_initial_update() -> bytes:
    return layout_update(AgencyLayout())


# --- materialisation ---------------------------------------------------------------------------


async def materialise_inspection(*, inspection_id: int, doc: Doc, now: datetime) -> None:
    """Rows from the merged inspection document; running it twice changes nothing."""
    inspection = await Inspection.get_or_none(id=inspection_id)
    if inspection is None:
        return
    sections = read_inspection(doc)
    departments = {
        row.department.code: row
        for row in await InspectionDepartment.filter(inspection_id=inspection.id).select_related(
            "department"
        )
    }
    changed_checks, added, removed = 0, 0, 0
    recorded = False
    async with in_transaction():
        results = {
            (r.department_id, r.check_code): r
            for r in await CheckResult.filter(inspection_id=inspection.id)
        }
        rectifications = {
            r.uuid: r for r in await Rectification.filter(inspection_id=inspection.id)
        }
        seen: set[str] = set()
        for code, section in sections.items():
            department = departments.get(code)
            if department is None:
                continue
            for check in section.checks.values():
                recorded = recorded or check.result is not None
                wanted: dict[str, Any] = {
                    "outcome": check.result,
                    "note": check.note,
                    "measured": dict(check.measured),
                    "photo_ids": list(check.photos),
                    "recorded_by": check.by,
                    "recorded_at": _aware(check.at),
                    "position": dataclasses.asdict(check.position) if check.position else None,
                }
                row = results.get((department.department_id, check.code))
                if row is None:
                    await CheckResult.create(
                        inspection_id=inspection.id,
                        department_id=department.department_id,
                        check_code=check.code,
                        **wanted,
                    )
                    changed_checks += 1
                elif any(getattr(row, k) != v for k, v in wanted.items()):
                    for k, v in wanted.items():
                        setattr(row, k, v)
                    await row.save(update_fields=list(wanted))
                    changed_checks += 1
            for item in section.rectifications.values():
                seen.add(item.uuid)
                values: dict[str, Any] = {
                    "description": item.description,
                    "due": item.due,
                    "done": item.done,
                    "department_id": department.department_id,
                }
                existing = rectifications.get(item.uuid)
                if existing is None:
                    if await Rectification.exists(uuid=item.uuid):
                        continue  # a UUID of another inspection: never moved between them
                    await Rectification.create(
                        uuid=item.uuid, inspection_id=inspection.id, **values
                    )
                    added += 1
                elif any(getattr(existing, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(existing, k, v)
                    await existing.save(update_fields=list(values))
                    added += 1
        stale = sorted(set(rectifications) - seen)
        if stale:
            removed = await Rectification.filter(
                inspection_id=inspection.id, uuid__in=stale
            ).delete()
        if changed_checks or added or removed:
            await audit.record(
                actor_id=None,
                action="inspection.materialise",
                entity_type="inspection",
                entity_id=inspection.id,
                project_id=inspection.project_id,
                after={"checks": changed_checks, "rectifications": added, "removed": removed},
            )
    if recorded:
        await mark_in_progress(inspection.id)
    for code, section in sorted(sections.items()):
        department = departments.get(code)
        conclusion = section.conclusion
        if department is None or conclusion.result is None or department.conclusion is not None:
            continue
        if inspection.status not in OPEN_STATUSES:
            continue
        signer = (
            await User.get_or_none(username=conclusion.signed_by) if conclusion.signed_by else None
        )
        try:
            await record_conclusion(
                inspection_id=inspection.id,
                department_id=department.department_id,
                result=conclusion.result,
                note=conclusion.note,
                signed_by=conclusion.signed_by,
                signed_at=_aware(conclusion.signed_at) or now,
                actor_id=signer.id if signer else None,
                now=now,
            )
        except DomainError as error:
            if error.code not in (ErrorCode.ALREADY_DECIDED, ErrorCode.INVALID_STATE):
                raise  # filed meanwhile through GraphQL, or the round closed: the rows stand
        inspection = await Inspection.get(id=inspection.id)


async def materialise_agency(*, project_id: int, doc: Doc) -> None:
    """AgencyEntry rows from the merged agency document; idempotent."""
    if not await Project.exists(id=project_id):
        return
    entries = read_agency(doc)
    changed = 0
    async with in_transaction():
        rows = {r.uuid: r for r in await AgencyEntry.filter(project_id=project_id)}
        for entry in entries.values():
            values: dict[str, Any] = {
                "kind": entry.kind,
                "text": entry.text,
                "at": _aware(entry.at),
                "due": entry.due,
                "done": entry.done,
            }
            row = rows.get(entry.uuid)
            if row is None:
                if await AgencyEntry.exists(uuid=entry.uuid):
                    continue
                await AgencyEntry.create(uuid=entry.uuid, project_id=project_id, **values)
                changed += 1
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                await row.save(update_fields=list(values))
                changed += 1
        stale = sorted(set(rows) - set(entries))
        if stale:
            changed += await AgencyEntry.filter(project_id=project_id, uuid__in=stale).delete()
        if changed:
            await audit.record(
                actor_id=None,
                action="agency.materialise",
                entity_type="project",
                entity_id=project_id,
                project_id=project_id,
                after={"changed": changed, "entries": len(entries)},
            )


# --- changes from GraphQL ----------------------------------------------------------------------


def record_check_change(
    *,
    department_code: str,
    check_code: str,
    result: CheckOutcome,
    note: str | None,
    measured: Mapping[str, float] | None,
    photo_ids: Sequence[str],
    by: str,
    at: datetime,
) -> Change:
    """The change that records one check in the document.

    ``note`` None keeps the note; ``measured`` None keeps the measurements, otherwise they
    become exactly ``measured``; photo ids are added to those already there.
    """

    def change(doc: Doc) -> None:
        check = check_container(doc, department_code, check_code)
        with doc.transaction():
            check["result"] = result.value
            if note is not None:
                check["note"] = note
            if measured is not None:
                values = check["measured"]
                assert isinstance(values, Map)
                for name in [n for n in sorted(values.keys()) if n not in measured]:
                    del values[name]
                for name, value in measured.items():
                    if values.get(name) != float(value):
                        values[name] = float(value)
            photos = check["photos"]
            assert isinstance(photos, Array)
            held = set(photos)
            for photo in photo_ids:
                if photo not in held:
                    photos.append(photo)
                    held.add(photo)
            check["by"] = by
            check["at"] = at.isoformat()

    return change


def conclusion_change(
    *, department_code: str, result: Conclusion, note: str, signed_by: str, signed_at: datetime
) -> Change:
    """The change that signs a department's conclusion in the document."""

    def change(doc: Doc) -> None:
        conclusion = conclusion_container(doc, department_code)
        with doc.transaction():
            conclusion["result"] = result.value
            conclusion["note"] = note
            conclusion["signed_by"] = signed_by
            conclusion["signed_at"] = signed_at.isoformat()

    return change


async def _writable_rights(viewer: Viewer, inspection_id: int) -> tuple[FieldRights, Inspection]:
    doc_name = inspection_doc_name(inspection_id)
    rights = await document_access(viewer, doc_name)
    inspection = await Inspection.get_or_none(id=inspection_id)
    if rights is None or inspection is None:
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"you are not assigned to inspection {inspection_id}; only its inspectors record "
            "checks",
            field="inspectionId",
        )
    if rights.department_code is None:  # a supervisor reads the document, never writes it
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"inspection {inspection_id} is read-only for you; only its assigned inspectors "
            "record in it",
            field="inspectionId",
        )
    if not rights.writable:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"inspection {inspection_id} is closed ({inspection.status.value}); nothing can be "
            "recorded in it",
            field="inspectionId",
        )
    return rights, inspection


async def _edit(
    documents: DocumentEditor, doc_name: str, change: Change, rights: FieldRights
) -> None:
    try:
        await documents.edit(doc_name, change, rights=rights)
    except LayoutError as error:
        raise DomainError(ErrorCode.DOCUMENT_REFUSED, error.reason) from None


async def record_check(
    *,
    viewer: Viewer,
    inspection_id: int,
    check_code: str,
    result: CheckOutcome,
    note: str | None,
    measured: Mapping[str, float] | None,
    photo_ids: Sequence[str],
    documents: DocumentEditor,
    now: datetime,
) -> Inspection:
    """An assigned inspector records one check of their department, through the document."""
    rights, inspection = await _writable_rights(viewer, inspection_id)
    department = await InspectionDepartment.get(
        inspection_id=inspection.id, department__code=rights.department_code
    )
    if not await CheckResult.exists(
        inspection_id=inspection.id, department_id=department.department_id, check_code=check_code
    ):
        raise invalid(
            f"check {check_code!r} is not in the checklist of {rights.department_code} for "
            "this inspection",
            field="check",
        )
    if note is not None and len(note) > MAX_TEXT:
        raise invalid(f"the note has {len(note)} characters; at most {MAX_TEXT}", field="note")
    for name in measured or {}:
        if not name.strip() or len(name) > MAX_NAME:
            raise invalid(
                f"a measurement needs a name of 1 to {MAX_NAME} characters", field="measured"
            )
    change = record_check_change(
        department_code=rights.department_code or "",
        check_code=check_code,
        result=result,
        note=note,
        measured=measured,
        photo_ids=photo_ids,
        by=viewer.username,
        at=now,
    )
    await _edit(documents, inspection_doc_name(inspection.id), change, rights)
    return await Inspection.get(id=inspection.id)


async def sign_conclusion(
    *,
    viewer: Viewer,
    inspection_id: int,
    result: Conclusion,
    note: str,
    documents: DocumentEditor,
    now: datetime,
) -> Inspection:
    """An assigned inspector signs their department's conclusion, through the document."""
    rights, inspection = await _writable_rights(viewer, inspection_id)
    if result is Conclusion.FAIL and not note.strip():
        raise invalid(
            "a failing conclusion needs a note saying what must be put right", field="note"
        )
    department = await InspectionDepartment.get(
        inspection_id=inspection.id, department__code=rights.department_code
    )
    if department.conclusion is not None:
        raise DomainError(
            ErrorCode.ALREADY_DECIDED,
            f"the conclusion of {rights.department_code} was already signed by "
            f"{department.signed_by} ({department.conclusion.value})",
            field="inspectionId",
        )
    change = conclusion_change(
        department_code=rights.department_code or "",
        result=result,
        note=note.strip(),
        signed_by=viewer.username,
        signed_at=now,
    )
    await _edit(documents, inspection_doc_name(inspection.id), change, rights)
    return await Inspection.get(id=inspection.id)


__all__ = [
    "DocumentEditor",
    "FieldAccess",
    "FieldDocuments",
    "FieldRights",
    "conclusion_change",
    "materialise_agency",
    "materialise_inspection",
    "record_check",
    "record_check_change",
    "sign_conclusion",
]
