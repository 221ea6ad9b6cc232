"""Upload tickets and their confirmation in GraphQL (README, the third data flow)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.labels import label
from approval.files import uploads
from schema.core.context import Context, Info
from schema.core.errors import UserError
from schema.core.payloads import attempt, decode_id
from schema.files.stored import PhotoNode, StoredFileNode
from storage import enums, models
from storage.objects import ObjectStore

UploadKindEnum = strawberry.enum(enums.ObjectKind, name="UploadKind")
UploadStatusEnum = strawberry.enum(enums.UploadStatus, name="UploadStatus")

NO_STORE = DomainError(
    ErrorCode.STORAGE_UNAVAILABLE,
    "this server has no object store configured, so files cannot be delivered through it; "
    "start it with `onewindow serve` (local folder) or set ONEWINDOW_MINIO_ENDPOINT",
)


def _store(ctx: Context) -> ObjectStore:
    if ctx.objects is None:
        raise NO_STORE
    return ctx.objects


@strawberry.type(name="HttpHeader")
class HttpHeader:
    name: str
    value: str


@strawberry.type(
    name="UploadPart", description="分片上传的一片: 把文件自 offset 起的 size 字节 PUT 到 url"
)
class UploadPartNode:
    number: int
    url: str
    offset: int
    size: int


@strawberry.type(name="UploadTicket", description="上传凭证: 把文件字节直接 PUT 到此地址")
class UploadTicketNode:
    url: str | None = strawberry.field(
        description="整个文件的 PUT 地址; 以 / 开头时相对于本服务器(本地存储); 分片上传时为空"
    )
    method: str
    headers: list[HttpHeader]
    expires_at: datetime
    parts: list[UploadPartNode] = strawberry.field(
        description="大文件分片上传(S3/MinIO): 每片 PUT 到自己的地址, 全部到达后再确认"
    )


@strawberry.type(name="Upload", description="一次文件上传")
class UploadNode:
    id: strawberry.ID
    kind: UploadKindEnum  # type: ignore[valid-type]
    status: UploadStatusEnum  # type: ignore[valid-type]
    sha256: str
    size_bytes: int
    file_name: str
    declared_content_type: str
    requested_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    object_id: strawberry.Private[int | None]

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field(description="确认后保存的文件")
    async def file(self, info: Info) -> StoredFileNode | None:
        if self.object_id is None:
            return None
        row = await info.context.loaders.stored_object.load(self.object_id)
        return StoredFileNode.of(row, self.file_name) if row else None

    @strawberry.field(description="确认后的照片(仅照片)")
    async def photo(self, info: Info) -> PhotoNode | None:
        if self.object_id is None or self.kind is not enums.ObjectKind.PHOTO:
            return None
        row = await info.context.loaders.stored_object.load(self.object_id)
        return PhotoNode.of(row.sha256, row) if row else None

    @staticmethod
    def of(row: models.Upload) -> UploadNode:
        return UploadNode(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            status=row.status,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            file_name=row.file_name,
            declared_content_type=row.declared_type,
            requested_at=row.requested_at,
            expires_at=row.expires_at,
            confirmed_at=row.confirmed_at,
            object_id=row.object_id,
        )


@strawberry.input(description="照片所证明的检查项")
class CheckTargetInput:
    inspection_id: relay.GlobalID
    department: str = strawberry.field(description="部门代码")
    check_code: str


@strawberry.input(description="材料文件所属的项目材料")
class MaterialTargetInput:
    project_id: relay.GlobalID
    material_type: str = strawberry.field(description="材料类型代码")


@strawberry.input(description="申请上传凭证; 文件的 SHA-256 由客户端先行计算")
class RequestUploadInput:
    kind: UploadKindEnum  # type: ignore[valid-type]
    sha256: str
    size_bytes: int
    content_type: str
    file_name: str
    check: CheckTargetInput | None = None
    material: MaterialTargetInput | None = None


@strawberry.type
class RequestUploadPayload:
    upload: UploadNode | None = None
    ticket: UploadTicketNode | None = strawberry.field(
        default=None, description="为空且 upload 已确认: 相同文件已保存, 无需再传"
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ConfirmUploadPayload:
    upload: UploadNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _target(input: RequestUploadInput) -> uploads.Target:
    if (input.check is None) == (input.material is None):
        raise invalid(
            "give exactly one target: check (for a photo) or material (for a material file)",
            field="check",
        )
    if input.check is not None:
        return uploads.CheckTarget(
            inspection_id=decode_id(input.check.inspection_id, "Inspection", "inspectionId"),
            department_code=input.check.department,
            check_code=input.check.check_code,
        )
    assert input.material is not None
    return uploads.MaterialTarget(
        project_id=decode_id(input.material.project_id, "Project", "projectId"),
        material_type_code=input.material.material_type,
    )


@strawberry.type
class UploadMutation:
    @strawberry.mutation(description="申请上传凭证(照片或材料文件)")
    async def request_upload(self, info: Info, input: RequestUploadInput) -> RequestUploadPayload:
        ctx = info.context

        async def run() -> uploads.Requested:
            return await uploads.request_upload(
                viewer=ctx.require_viewer(),
                kind=input.kind,
                facts=uploads.FileFacts(
                    sha256=input.sha256,
                    size_bytes=input.size_bytes,
                    content_type=input.content_type,
                    file_name=input.file_name,
                ),
                target=_target(input),
                store=_store(ctx),
                rules=ctx.upload_rules,
                now=ctx.now(),
            )

        answer, errors = await attempt(run)
        if answer is None:
            return RequestUploadPayload(errors=errors)
        ticket = answer.ticket
        return RequestUploadPayload(
            upload=UploadNode.of(answer.upload),
            ticket=None
            if ticket is None
            else UploadTicketNode(
                url=ticket.url or None,
                method=ticket.method,
                headers=[HttpHeader(name=k, value=v) for k, v in ticket.headers.items()],
                expires_at=ticket.expires_at,
                parts=[
                    UploadPartNode(number=p.number, url=p.url, offset=p.offset, size=p.size)
                    for p in ticket.parts
                ],
            ),
        )

    @strawberry.mutation(description="确认上传: 核对大小、类型(按内容识别)与 SHA-256")
    async def confirm_upload(self, info: Info, upload_id: strawberry.ID) -> ConfirmUploadPayload:
        ctx = info.context

        async def run() -> models.Upload:
            return await uploads.confirm_upload(
                viewer=ctx.require_viewer(),
                upload_id=uploads.parse_upload_id(str(upload_id)),
                store=_store(ctx),
                now=ctx.now(),
            )

        row, errors = await attempt(run)
        return ConfirmUploadPayload(upload=UploadNode.of(row) if row else None, errors=errors)
