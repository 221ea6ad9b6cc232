"""Stored files in GraphQL: photos (evidence of checks) and material files.

Download URLs are made when a field is read, for a viewer who reached the file through
something they may see (a check of a visible inspection, a material of a visible project),
and they are never stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.extensions import SchemaExtension

from approval.core import audit
from approval.files import uploads
from schema.core.context import Context, Info
from storage import models


@strawberry.enum(name="PhotoStatus", description="照片状态")
class PhotoStatus(Enum):
    PENDING = "pending"  # referenced by a check, bytes not confirmed yet: not broken, waiting
    READY = "ready"


PHOTO_STATUS_LABELS = {PhotoStatus.PENDING: "待上传", PhotoStatus.READY: "已上传"}


async def _url(info: Info, key: str, *, file_name: str, content_type: str) -> str | None:
    ctx = info.context
    if ctx.objects is None:
        return None
    ctx.downloads.append(key)
    return await uploads.download_url(
        store=ctx.objects,
        key=key,
        file_name=file_name,
        content_type=content_type,
        rules=ctx.upload_rules,
        now=ctx.now(),
    )


class DownloadAudit(SchemaExtension):
    """One audit record per request that handed out download URLs: who got links to which
    stored objects (the bytes then come straight from the object store, unseen by the server)."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        ctx = self.execution_context.context
        if isinstance(ctx, Context) and ctx.downloads and ctx.viewer is not None:
            keys = sorted(set(ctx.downloads))
            await audit.record(
                actor_id=ctx.viewer.user_id,
                action="file.download",
                entity_type="stored_object",
                entity_id=0,
                after={"count": len(keys), "keys": keys[:100]},
            )


@strawberry.type(name="StoredFile", description="对象存储中的文件(按内容寻址)")
class StoredFileNode:
    sha256: str
    size_bytes: int
    content_type: str = strawberry.field(description="由文件内容识别的类型")
    file_name: str
    key: strawberry.Private[str]

    @strawberry.field(description="短时有效的下载地址(查询时生成, 不保存)")
    async def url(self, info: Info) -> str | None:
        return await _url(info, self.key, file_name=self.file_name, content_type=self.content_type)

    @staticmethod
    def of(row: models.StoredObject, file_name: str) -> StoredFileNode:
        return StoredFileNode(
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            content_type=row.content_type,
            file_name=file_name,
            key=row.key,
        )


@strawberry.type(name="Photo", description="现场照片(检查项的证据)")
class PhotoNode:
    id: str = strawberry.field(description="照片编号: 文件的 SHA-256")
    status: PhotoStatus
    content_type: str | None
    size_bytes: int | None
    taken_at: datetime | None = strawberry.field(description="拍摄时间(EXIF)")
    latitude: float | None = strawberry.field(description="纬度(EXIF GPS)")
    longitude: float | None = strawberry.field(description="经度(EXIF GPS)")
    width: int | None
    height: int | None
    key: strawberry.Private[str]
    thumbnail_key: strawberry.Private[str]

    @strawberry.field
    def status_label(self) -> str:
        return PHOTO_STATUS_LABELS[self.status]

    @strawberry.field(description="短时有效的原图地址; 未上传时为空")
    async def url(self, info: Info) -> str | None:
        if self.status is PhotoStatus.PENDING:
            return None
        return await _url(
            info,
            self.key,
            file_name=self.id + uploads.PHOTO_SUFFIXES.get(self.content_type or "", ""),
            content_type=self.content_type or "",
        )

    @strawberry.field(description="短时有效的缩略图地址; 未上传时为空")
    async def thumbnail_url(self, info: Info) -> str | None:
        if self.status is PhotoStatus.PENDING or not self.thumbnail_key:
            return None
        return await _url(
            info, self.thumbnail_key, file_name=f"{self.id}-thumb.jpg", content_type="image/jpeg"
        )

    @staticmethod
    def of(photo_id: str, row: models.StoredObject | None) -> PhotoNode:
        if row is None:
            return PhotoNode(
                id=photo_id,
                status=PhotoStatus.PENDING,
                content_type=None,
                size_bytes=None,
                taken_at=None,
                latitude=None,
                longitude=None,
                width=None,
                height=None,
                key="",
                thumbnail_key="",
            )
        return PhotoNode(
            id=photo_id,
            status=PhotoStatus.READY,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            taken_at=row.taken_at,
            latitude=row.latitude,
            longitude=row.longitude,
            width=row.width,
            height=row.height,
            key=row.key,
            thumbnail_key=row.thumbnail_key,
        )


async def photos_of(info: Info, inspection_id: int, photo_ids: list[str]) -> list[PhotoNode]:
    """The photos a check of ``inspection_id`` refers to, in its order, READY only when
    uploaded for that inspection; one query per request for all checks."""
    keys = [(inspection_id, photo_id) for photo_id in photo_ids]
    rows = await info.context.loaders.photo_by_id.load_many(keys)
    return [PhotoNode.of(i, row) for i, row in zip(photo_ids, rows, strict=True)]
