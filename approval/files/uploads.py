"""Photos and material files: an upload ticket, the bytes straight to the object store, a
confirmation that checks them, one stored object per content.

The flow (README, the third data flow): the client hashes its file and asks for a ticket with
:func:`request_upload`. When the same bytes are stored already the upload is confirmed at once
(no ticket). Otherwise the ticket is a presigned PUT (MinIO) or the server's own upload URL
(local store) to a staging key of this upload alone. :func:`confirm_upload` then checks what
arrived: size, the type sniffed from the bytes (never the client's word) and the SHA-256, reads
a photo's EXIF and makes its thumbnail, and only then moves the bytes to their
content-addressed key. Clients never write a content-addressed key, so a stored object cannot
be overwritten by a late or hostile PUT; a retry of any step is harmless.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import anyio.to_thread
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, project_scope, require_role, visible_project
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.fieldwork.documents import inspection_doc_name
from approval.fieldwork.inspections import document_access
from approval.files.evidence import EvidenceError, PhotoEvidence, make_thumbnail, read_evidence
from approval.files.sniff import HEAD_SIZE, TYPE_LABELS, sniff
from storage.enums import ObjectKind, Role, UploadStatus
from storage.models import (
    CheckResult,
    Department,
    Inspection,
    MaterialType,
    Project,
    StoredObject,
    Upload,
)
from storage.objects import ObjectInfo, ObjectStore, ObjectStoreError, PutTicket

T = TypeVar("T")

MB = 1 << 20
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Control characters, path separators and characters Windows refuses in names.
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')

PHOTO_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
PHOTO_TYPES = frozenset(PHOTO_SUFFIXES)
MATERIAL_TYPES = frozenset(
    {
        "application/pdf",
        "application/ofd",
        "image/jpeg",
        "image/png",
        "image/tiff",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)
ALLOWED_TYPES: Mapping[ObjectKind, frozenset[str]] = {
    ObjectKind.PHOTO: PHOTO_TYPES,
    ObjectKind.MATERIAL: MATERIAL_TYPES,
}


@dataclass(frozen=True)
class UploadRules:
    """The limits of uploads; built from the server's settings."""

    max_bytes: Mapping[ObjectKind, int]
    ticket_ttl: timedelta = timedelta(minutes=15)
    url_ttl: timedelta = timedelta(minutes=5)
    # Files above this go in parts of this size where the store takes parts (S3, MinIO).
    part_size: int = 16 * MB

    @classmethod
    def default(cls) -> UploadRules:
        return cls(max_bytes={ObjectKind.PHOTO: 25 * MB, ObjectKind.MATERIAL: 200 * MB})


@dataclass(frozen=True)
class FileFacts:
    """What the client says of its file; every word of it is checked at confirmation."""

    sha256: str
    size_bytes: int
    content_type: str
    file_name: str


@dataclass(frozen=True)
class CheckTarget:
    """A photo proves one check of one department in one inspection."""

    inspection_id: int
    department_code: str
    check_code: str


@dataclass(frozen=True)
class MaterialTarget:
    """A material file is one version of one material type of a project."""

    project_id: int
    material_type_code: str


Target = CheckTarget | MaterialTarget


@dataclass(frozen=True)
class Requested:
    """The answer to a ticket request: ``ticket`` is None when the bytes are stored already."""

    upload: Upload
    ticket: PutTicket | None


def object_key(kind: ObjectKind, sha256: str) -> str:
    return f"{kind.value}s/{sha256[:2]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    return f"thumbnails/{sha256[:2]}/{sha256}.jpg"


def staging_key(upload_id: uuid.UUID) -> str:
    return f"incoming/{upload_id}"


def _types_text(kind: ObjectKind) -> str:
    return ", ".join(f"{TYPE_LABELS.get(t, t)} ({t})" for t in sorted(ALLOWED_TYPES[kind]))


def check_file_name(name: str) -> str:
    """The file name as given, or INVALID_INPUT: a name, never a path."""
    cleaned = name.strip()
    if (
        not cleaned
        or len(cleaned) > 255
        or _BAD_NAME_CHARS.search(cleaned)
        or cleaned.startswith(".")
        or ".." in cleaned
    ):
        raise invalid(
            f"file name {name[:80]!r} is not a plain file name; give 1-255 characters without "
            "path separators, '..', a leading '.', control characters or any of : * ? \" < > |",
            field="fileName",
        )
    return cleaned


def _check_facts(kind: ObjectKind, facts: FileFacts, rules: UploadRules) -> FileFacts:
    sha = facts.sha256.strip().lower()
    if not SHA256_HEX.match(sha):
        raise invalid(
            "sha256 must be the 64 hexadecimal characters of the file's SHA-256", field="sha256"
        )
    limit = rules.max_bytes[kind]
    if facts.size_bytes <= 0:
        raise invalid("the file is empty; sizeBytes must be positive", field="sizeBytes")
    if facts.size_bytes > limit:
        raise DomainError(
            ErrorCode.TOO_LARGE,
            f"the file has {facts.size_bytes} bytes; a {kind.value} may have at most "
            f"{limit} bytes ({limit // MB} MB)",
            field="sizeBytes",
        )
    content_type = facts.content_type.strip().lower().split(";", 1)[0].strip()
    if content_type not in ALLOWED_TYPES[kind]:
        raise DomainError(
            ErrorCode.TYPE_NOT_ALLOWED,
            f"{content_type or 'no content type'} is not accepted for a {kind.value}; "
            f"send one of: {_types_text(kind)}",
            field="contentType",
        )
    return FileFacts(
        sha256=sha,
        size_bytes=facts.size_bytes,
        content_type=content_type,
        file_name=check_file_name(facts.file_name),
    )


async def _photo_target(viewer: Viewer, target: CheckTarget) -> tuple[Inspection, Department]:
    """The inspection and department a photo is for: only an inspector assigned to it for
    that department may deliver it, also after the inspection closed (photos taken offline
    arrive late)."""
    rights = await document_access(viewer, inspection_doc_name(target.inspection_id))
    inspection = await Inspection.get_or_none(id=target.inspection_id)
    if rights is None or inspection is None or rights.department_code is None:
        raise not_found("inspection", target.inspection_id, field="inspectionId")
    if rights.department_code != target.department_code:
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            f"you inspect for {rights.department_code}; photos for {target.department_code!r} "
            "come from its own inspectors",
            field="department",
        )
    department = await Department.get(code=target.department_code)
    if not await CheckResult.exists(
        inspection_id=inspection.id, department_id=department.id, check_code=target.check_code
    ):
        raise invalid(
            f"check {target.check_code!r} is not in the checklist of {target.department_code} "
            "for this inspection",
            field="checkCode",
        )
    return inspection, department


async def _held(viewer: Viewer, stored: StoredObject) -> bool:
    """Whether the viewer already holds these bytes where they may see them: an upload of
    their own, or one for a project in their scope. Only then is knowing a file's hash and
    size enough to skip sending it (hashes show in material versions and audit trails)."""
    return await Upload.filter(
        Q(requested_by_id=viewer.user_id)
        | Q(project_id__in=Subquery(Project.filter(project_scope(viewer)).values("id"))),
        object_id=stored.id,
        status=UploadStatus.CONFIRMED,
    ).exists()


async def request_upload(
    *,
    viewer: Viewer,
    kind: ObjectKind,
    facts: FileFacts,
    target: Target,
    store: ObjectStore,
    rules: UploadRules,
    now: datetime,
) -> Requested:
    """A ticket to deliver one file for ``target``, or a confirmed upload when its bytes are
    stored already and the viewer holds them (``_held``). Nothing reaches the store here."""
    facts = _check_facts(kind, facts, rules)
    fields: dict[str, Any]
    if kind is ObjectKind.PHOTO:
        if not isinstance(target, CheckTarget):
            raise invalid("a photo is delivered for a check; give the check", field="check")
        require_role(viewer, Role.INSPECTOR)
        inspection, department = await _photo_target(viewer, target)
        fields = {
            "project_id": inspection.project_id,
            "inspection_id": inspection.id,
            "department_id": department.id,
            "check_code": target.check_code,
        }
    else:
        if not isinstance(target, MaterialTarget):
            raise invalid(
                "a material file is delivered for a material of a project; give the material",
                field="material",
            )
        require_role(viewer, Role.WINDOW_CLERK, Role.APPLICANT, Role.AGENT)
        project = await visible_project(viewer, target.project_id)
        material_type = await MaterialType.get_or_none(code=target.material_type_code)
        if material_type is None:
            raise invalid(
                f"material type {target.material_type_code!r} is not in the catalog",
                field="materialType",
            )
        fields = {"project_id": project.id, "material_type_id": material_type.id}
    upload_id = uuid.uuid4()
    stored = await StoredObject.get_or_none(kind=kind, sha256=facts.sha256)
    if stored is not None and stored.size_bytes != facts.size_bytes:
        stored = None  # not the same file: the bytes will tell at confirmation
    if stored is not None and await _store_call(store.stat(stored.key)) is None:
        stored = None  # the row outlived its bytes (restored backup): deliver them again
    if stored is not None and not await _held(viewer, stored):
        stored = None  # stored for someone else: send the bytes (they are kept once)
    upload = await Upload.create(
        id=upload_id,
        kind=kind,
        status=UploadStatus.PENDING,
        sha256=facts.sha256,
        size_bytes=facts.size_bytes,
        declared_type=facts.content_type,
        file_name=facts.file_name,
        requested_by_id=viewer.user_id,
        staging_key=staging_key(upload_id),
        requested_at=now,
        expires_at=now + rules.ticket_ttl,
        **fields,
    )
    if stored is not None:  # confirmed at once: the same bytes are stored already
        return Requested(upload=await _link(upload, stored, viewer=viewer, now=now), ticket=None)
    ticket = await _store_call(
        store.put_ticket(
            upload.staging_key,
            content_type=facts.content_type,
            max_size=facts.size_bytes,
            now=now,
            expires=rules.ticket_ttl,
            part_size=rules.part_size,
        )
    )
    if ticket.parts:
        upload.multipart_id = ticket.multipart_id
        upload.part_count = len(ticket.parts)
        await upload.save(update_fields=["multipart_id", "part_count"])
    return Requested(upload=upload, ticket=ticket)


async def _store_call(call: Awaitable[T]) -> T:
    """Await a store call; its failure becomes STORAGE_UNAVAILABLE with the store's reason."""
    try:
        return await call
    except ObjectStoreError as error:
        raise DomainError(ErrorCode.STORAGE_UNAVAILABLE, str(error)) from None


@dataclass
class _Received:
    sha256: str
    head: bytes
    data: bytes | None  # the whole file, for photos only


async def _read(store: ObjectStore, key: str, *, keep: bool) -> _Received:
    """Hash the staged bytes as they stream; keep the first bytes for sniffing, and all of
    them when ``keep`` (a photo, at most the photo limit, read for EXIF and thumbnail)."""
    digest = hashlib.sha256()
    head = bytearray()
    whole = bytearray() if keep else None
    async for chunk in store.read(key):
        # hashlib lets go of the GIL on large buffers: other requests run meanwhile.
        await anyio.to_thread.run_sync(digest.update, chunk)
        if len(head) < HEAD_SIZE:
            head += chunk[: HEAD_SIZE - len(head)]
        if whole is not None:
            whole += chunk
    return _Received(
        sha256=digest.hexdigest(),
        head=bytes(head),
        data=bytes(whole) if whole is not None else None,
    )


async def _refuse(
    store: ObjectStore, upload: Upload, code: ErrorCode, message: str, *, now: datetime
) -> NoReturn:
    """Drop what was staged (a whole-file ticket stays valid for another PUT) and say why.
    A ticket in parts is used up once its parts are joined: it ends here."""
    await _store_call(store.delete(upload.staging_key))
    if upload.multipart_id:
        await Upload.filter(id=upload.id).update(expires_at=now)
        message += "; this ticket was in parts and its parts are used up: ask for a new ticket"
    raise DomainError(code, message, field="uploadId")


async def _join_parts(store: ObjectStore, upload: Upload) -> ObjectInfo | None:
    """The staged object once the parts of an upload in parts are joined; UPLOAD_NOT_RECEIVED
    naming the parts that have not arrived."""
    missing = await _store_call(
        store.complete_parts(
            upload.staging_key, multipart_id=upload.multipart_id, part_count=upload.part_count
        )
    )
    if missing:
        shown = ", ".join(str(n) for n in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise DomainError(
            ErrorCode.UPLOAD_NOT_RECEIVED,
            f"part(s) {shown} of {upload.part_count} have not arrived; PUT each part to its URL "
            f"and confirm again (the ticket is valid until {upload.expires_at.isoformat()})",
            field="uploadId",
        )
    return await _store_call(store.stat(upload.staging_key))


def parse_upload_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise invalid(
            f"{raw[:60]!r} is not an upload id; use the id requestUpload answered",
            field="uploadId",
        ) from None


async def confirm_upload(
    *,
    viewer: Viewer,
    upload_id: uuid.UUID,
    store: ObjectStore,
    now: datetime,
) -> Upload:
    """Check the bytes staged for an upload and keep them as a stored object.

    Idempotent: a confirmed upload is answered as it is. Every refusal drops the staged bytes
    and leaves every stored object as it was."""
    upload = await Upload.get_or_none(id=upload_id, requested_by_id=viewer.user_id)
    if upload is None:
        raise not_found("upload", str(upload_id), field="uploadId")
    if upload.status is UploadStatus.CONFIRMED:
        return upload
    info = await _store_call(store.stat(upload.staging_key))
    if info is None:
        existing = await StoredObject.get_or_none(kind=upload.kind, sha256=upload.sha256)
        if existing is not None and await _held(viewer, existing):
            return await _link(upload, existing, viewer=viewer, now=now)  # a retry, or a twin
    if now >= upload.expires_at:
        await _store_call(store.delete(upload.staging_key))
        if upload.multipart_id:
            await _store_call(
                store.abort_parts(upload.staging_key, multipart_id=upload.multipart_id)
            )
        raise DomainError(
            ErrorCode.UPLOAD_EXPIRED,
            f"the ticket expired at {upload.expires_at.isoformat()}; ask for a new one with "
            "requestUpload and upload the file again",
            field="uploadId",
        )
    if info is None and upload.multipart_id:
        info = await _join_parts(store, upload)
    if info is None:
        raise DomainError(
            ErrorCode.UPLOAD_NOT_RECEIVED,
            "no bytes arrived for this upload; PUT the file to the ticket's URL first, then "
            f"confirm (the ticket is valid until {upload.expires_at.isoformat()})",
            field="uploadId",
        )
    if info.size != upload.size_bytes:
        await _refuse(
            store,
            upload,
            ErrorCode.SIZE_MISMATCH,
            f"{info.size} bytes arrived but the ticket is for {upload.size_bytes}; PUT the "
            "whole file again to the same URL and confirm",
            now=now,
        )
    kind = upload.kind
    received = await _store_call(_read(store, upload.staging_key, keep=kind is ObjectKind.PHOTO))
    sniffed = sniff(received.head)
    if sniffed is None or sniffed.content_type not in ALLOWED_TYPES[kind]:
        what = f"{sniffed.description} ({sniffed.content_type})" if sniffed else "of no known type"
        await _refuse(
            store,
            upload,
            ErrorCode.TYPE_NOT_ALLOWED,
            f"the bytes of {upload.file_name!r} are {what}; a {kind.value} must be one of: "
            f"{_types_text(kind)}",
            now=now,
        )
    if received.sha256 != upload.sha256:
        await _refuse(
            store,
            upload,
            ErrorCode.HASH_MISMATCH,
            f"the bytes have SHA-256 {received.sha256}, the ticket says {upload.sha256}; the "
            "file changed or was damaged on the way: hash it again and ask for a new ticket",
            now=now,
        )
    evidence: PhotoEvidence | None = None
    thumbnail: bytes | None = None
    if received.data is not None:
        try:
            evidence, thumbnail = await anyio.to_thread.run_sync(_photo_facts, received.data)
        except EvidenceError as error:
            await _refuse(store, upload, ErrorCode.TYPE_NOT_ALLOWED, str(error), now=now)
    key = object_key(kind, upload.sha256)
    if thumbnail is not None:
        await _store_call(
            store.write(thumbnail_key(upload.sha256), thumbnail, content_type="image/jpeg")
        )
    await _store_call(store.promote(upload.staging_key, key))
    defaults: dict[str, object] = {
        "key": key,
        "size_bytes": info.size,
        "content_type": sniffed.content_type,
    }
    if evidence is not None:
        defaults |= {
            "taken_at": evidence.taken_at,
            "latitude": evidence.latitude,
            "longitude": evidence.longitude,
            "width": evidence.width,
            "height": evidence.height,
            "thumbnail_key": thumbnail_key(upload.sha256),
        }
    try:
        stored, _ = await StoredObject.get_or_create(
            kind=kind, sha256=upload.sha256, defaults=defaults
        )
    except IntegrityError:  # the same bytes confirmed by another upload at the same moment
        stored = await StoredObject.get(kind=kind, sha256=upload.sha256)
    return await _link(upload, stored, viewer=viewer, now=now)


def _photo_facts(data: bytes) -> tuple[PhotoEvidence, bytes]:
    return read_evidence(data), make_thumbnail(data)


async def _link(upload: Upload, stored: StoredObject, *, viewer: Viewer, now: datetime) -> Upload:
    async with in_transaction():
        updated = await Upload.filter(id=upload.id, status=UploadStatus.PENDING).update(
            status=UploadStatus.CONFIRMED, object_id=stored.id, confirmed_at=now
        )
        if updated:
            await audit.record(
                actor_id=viewer.user_id,
                action="upload.confirm",
                entity_type="project",
                entity_id=upload.project_id,
                project_id=upload.project_id,
                before={"status": UploadStatus.PENDING.value},
                after={
                    "upload": str(upload.id),
                    "kind": upload.kind.value,
                    "sha256": upload.sha256,
                    "sizeBytes": stored.size_bytes,
                    "contentType": stored.content_type,
                    "fileName": upload.file_name,
                    "checkCode": upload.check_code or None,
                },
            )
    return await Upload.get(id=upload.id)


async def download_url(
    *,
    store: ObjectStore,
    key: str,
    file_name: str,
    content_type: str,
    rules: UploadRules,
    now: datetime,
) -> str:
    """A short-lived URL to read an object; made at query time, never stored."""
    return await _store_call(
        store.get_url(
            key, now=now, expires=rules.url_ttl, file_name=file_name, content_type=content_type
        )
    )
