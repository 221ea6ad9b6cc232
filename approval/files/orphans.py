"""Objects nobody needs: staged bytes never confirmed, and stored files nothing refers to.

Only objects older than a grace period count, so an upload on its way, or a photo whose check
is still on a tablet waiting to sync, is never taken. Keys outside OneWindow's own prefixes
are left alone (a bucket may be shared).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.queryset import QuerySet

from storage.enums import ObjectKind, UploadStatus
from storage.models import CheckResult, MaterialVersion, StoredObject, Upload
from storage.objects import ObjectInfo, ObjectStore

PROGRESS_EVERY = 500


@dataclass(frozen=True)
class Orphan:
    key: str
    size: int
    reason: str
    object_id: int | None = None  # the StoredObject row that goes with it


async def _referenced() -> tuple[set[str], set[int]]:
    """Photo ids that checks refer to, and the stored objects material versions keep."""
    photos: set[str] = set()
    for ids in await CheckResult.all().values_list("photo_ids", flat=True):
        photos.update(str(i) for i in (ids or []))
    kept = await MaterialVersion.filter(object_id__isnull=False).values_list("object_id", flat=True)
    return photos, {int(i) for i in kept}  # type: ignore[call-overload]


def _is_needed(row: StoredObject, photos: set[str], materials: set[int]) -> bool:
    if row.kind is ObjectKind.PHOTO:
        return row.sha256 in photos
    return row.id in materials


async def _staging_orphan(info: ObjectInfo, now: datetime, grace: timedelta) -> Orphan | None:
    try:
        upload_id = uuid.UUID(info.key.removeprefix("incoming/"))
    except ValueError:
        return Orphan(info.key, info.size, "staged bytes of no upload")
    upload = await Upload.get_or_none(id=upload_id)
    if upload is None:
        return Orphan(info.key, info.size, "staged bytes of no upload")
    if upload.status is UploadStatus.CONFIRMED:
        return Orphan(info.key, info.size, "staged copy of a confirmed upload")
    if upload.expires_at < now - grace:
        return Orphan(info.key, info.size, "ticket expired and never confirmed")
    return None


async def find_orphans(
    *,
    store: ObjectStore,
    now: datetime,
    grace: timedelta,
    progress: Callable[[int, int], None] | None = None,
) -> list[Orphan]:
    """Every orphan in the store, in key order with thumbnails last; ``progress(scanned,
    found)`` is called every few hundred objects."""
    photos, materials = await _referenced()
    thumbnails_needed: set[str] = set()
    orphans: list[Orphan] = []
    thumbnails: list[ObjectInfo] = []
    scanned = 0
    async for info in store.list(""):
        scanned += 1
        if progress is not None and scanned % PROGRESS_EVERY == 0:
            progress(scanned, len(orphans))
        if info.modified > now - grace:
            if info.key.startswith("thumbnails/"):
                thumbnails_needed.add(info.key)
            continue
        if info.key.startswith("incoming/"):
            found = await _staging_orphan(info, now, grace)
            if found is not None:
                orphans.append(found)
        elif info.key.startswith(("photos/", "materials/")):
            row = await StoredObject.get_or_none(key=info.key)
            if row is None:
                orphans.append(Orphan(info.key, info.size, "never confirmed (no record)"))
            elif row.created_at < now - grace and not _is_needed(row, photos, materials):
                orphans.append(Orphan(info.key, info.size, "no longer referenced", row.id))
            elif row.thumbnail_key:
                thumbnails_needed.add(row.thumbnail_key)
        elif info.key.startswith("thumbnails/"):
            thumbnails.append(info)
    # A thumbnail goes with its photo: kept when the photo is, taken when it is not.
    recorded = set(
        await StoredObject.filter(thumbnail_key__in=[t.key for t in thumbnails]).values_list(
            "thumbnail_key", flat=True
        )
    )
    leaving = {o.object_id for o in orphans if o.object_id is not None}
    leaving_thumbs = set(
        await StoredObject.filter(id__in=list(leaving)).values_list("thumbnail_key", flat=True)
    )
    for info in thumbnails:
        if info.key in thumbnails_needed:
            continue
        if info.key not in recorded:
            orphans.append(Orphan(info.key, info.size, "thumbnail of no stored photo"))
        elif info.key in leaving_thumbs:
            orphans.append(Orphan(info.key, info.size, "thumbnail of an unreferenced photo"))
    if progress is not None:
        progress(scanned, len(orphans))
    return orphans


async def remove_orphans(
    *,
    store: ObjectStore,
    orphans: list[Orphan],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Delete the orphans found by :func:`find_orphans`; a stored file that became referenced
    since is kept. Answers how many objects were deleted."""
    photos, materials = await _referenced()
    removed = 0
    for done, orphan in enumerate(orphans, start=1):
        if orphan.object_id is not None:
            row = await StoredObject.get_or_none(id=orphan.object_id)
            if row is not None and _is_needed(row, photos, materials):
                continue
            if row is not None:
                await Upload.filter(object_id=row.id).delete()
                await row.delete()
        await store.delete(orphan.key)
        removed += 1
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == len(orphans)):
            progress(done, len(orphans))
    return removed


def _expired(now: datetime, grace: timedelta) -> QuerySet[Upload]:
    """Pending uploads whose ticket expired more than ``grace`` ago: rows without a use."""
    return Upload.filter(status=UploadStatus.PENDING, expires_at__lt=now - grace)


async def expired_tickets(*, now: datetime, grace: timedelta) -> int:
    return await _expired(now, grace).count()


async def remove_expired_tickets(*, store: ObjectStore, now: datetime, grace: timedelta) -> int:
    """Delete the expired tickets; the parts of an upload in parts that never completed are
    dropped from the store too (S3 keeps them, unlisted, until aborted)."""
    expired = await _expired(now, grace)
    for upload in expired:
        if upload.multipart_id:
            await store.abort_parts(upload.staging_key, multipart_id=upload.multipart_id)
    return await Upload.filter(id__in=[u.id for u in expired]).delete()
