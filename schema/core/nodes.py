"""The nodes every domain shares: regions, departments, material types, service items,
enterprises and people, as thin views over stored rows (relations through per-request
loaders), and the enums of more than one domain."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay
from tortoise.expressions import Q, Subquery
from tortoise.models import Model

from approval.core.access import Viewer, enterprise_scope, person_scope, project_scope
from approval.core.dates import local_day
from approval.core.inputs import row_id
from approval.core.labels import label
from approval.review.engine import PauseReason
from schema.core.context import Info
from storage import enums, models

DecisionEnum = strawberry.enum(enums.Decision, name="Decision")
MaterialStatusEnum = strawberry.enum(enums.MaterialStatus, name="MaterialStatus")
RoleEnum = strawberry.enum(enums.Role, name="Role")
RegionKindEnum = strawberry.enum(enums.RegionKind, name="RegionKind")
DepartmentLevelEnum = strawberry.enum(enums.DepartmentLevel, name="DepartmentLevel")
PauseReasonEnum = strawberry.enum(
    PauseReason, name="PauseReason", description="计时中止的原因(行政许可法第四十五条)"
)


def _ints(node_ids: Iterable[str]) -> list[int]:
    return [found for i in node_ids if (found := row_id(i)) is not None]


# Rows not under a project, seen only within a scope of their own.
SCOPES: dict[type[Model], Callable[[Viewer], Q]] = {
    models.User: person_scope,
    models.Enterprise: enterprise_scope,
}


async def _visible_rows(
    model: type[Model], viewer: Viewer, ids: list[int], project_path: str | None
) -> dict[int, Any]:
    query = model.filter(id__in=ids)
    if model in SCOPES:
        query = query.filter(SCOPES[model](viewer))
    if project_path is not None:
        visible = models.Project.filter(project_scope(viewer)).values("id")
        query = query.filter(**{f"{project_path}__in": Subquery(visible)})
    return {row.pk: row for row in await query}


class RowNode(relay.Node):
    """A node made from one stored row; `resolve_nodes` applies the viewer's scope."""

    _model: ClassVar[type[Model]]
    _project_path: ClassVar[str | None]

    @classmethod
    def from_row(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        viewer = info.context.query_viewer()
        ids = list(node_ids)
        rows = await _visible_rows(cls._model, viewer, _ints(ids), cls._project_path)
        found = [rows.get(row_id(i) or 0) for i in ids]
        return [cls.from_row(row) if row is not None else None for row in found]


@strawberry.type(name="Region", description="市、区县、开发区或园区")
class RegionNode(RowNode):
    _model = models.Region
    _project_path = None
    id: relay.NodeID[int]
    code: str
    name: str
    kind: RegionKindEnum  # type: ignore[valid-type]
    admin_code: str
    assessments: list[str]
    parent_id: strawberry.Private[int | None]

    @strawberry.field
    def kind_label(self) -> str:
        return label(self.kind)

    @strawberry.field
    def parent(self, info: Info) -> RegionNode | None:
        if self.parent_id is None:
            return None
        return RegionNode.from_row(info.context.catalog.regions[self.parent_id])

    @classmethod
    def from_row(cls, row: models.Region) -> RegionNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            kind=row.kind,
            admin_code=row.admin_code,
            assessments=list(row.assessments),
            parent_id=row.parent_id,
        )


@strawberry.type(name="Department", description="审批部门")
class DepartmentNode(RowNode):
    _model = models.Department
    _project_path = None
    id: relay.NodeID[int]
    code: str
    name: str
    short_name: str
    level: DepartmentLevelEnum  # type: ignore[valid-type]
    region_id: strawberry.Private[int]

    @strawberry.field
    def region(self, info: Info) -> RegionNode:
        return RegionNode.from_row(info.context.catalog.regions[self.region_id])

    @classmethod
    def from_row(cls, row: models.Department) -> DepartmentNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            short_name=row.short_name,
            level=row.level,
            region_id=row.region_id,
        )


def department_node(info: Info, department_id: int) -> DepartmentNode:
    return DepartmentNode.from_row(info.context.catalog.departments[department_id])


def material_type_node(info: Info, material_type_id: int) -> MaterialTypeNode:
    return MaterialTypeNode.from_row(info.context.catalog.material_types[material_type_id])


@strawberry.type(name="MaterialType", description="材料类型")
class MaterialTypeNode(RowNode):
    _model = models.MaterialType
    _project_path = None
    id: relay.NodeID[int]
    code: str
    name: str
    description: str

    @classmethod
    def from_row(cls, row: models.MaterialType) -> MaterialTypeNode:
        return cls(id=row.id, code=row.code, name=row.name, description=row.description)


@strawberry.type(name="ServiceItem", description="审批事项")
class ServiceItemNode(RowNode):
    _model = models.ServiceItem
    _project_path = None
    id: relay.NodeID[int]
    code: str
    name: str
    statutory_days: int
    promised_days: int
    site_check: bool
    department_id: strawberry.Private[int]

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode:
        return department_node(info, self.department_id)

    @classmethod
    def from_row(cls, row: models.ServiceItem) -> ServiceItemNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            statutory_days=row.statutory_days,
            promised_days=row.promised_days,
            site_check=row.site_check,
            department_id=row.department_id,
        )


@strawberry.type(name="Enterprise", description="申请企业")
class EnterpriseNode(RowNode):
    _model = models.Enterprise
    _project_path = None
    id: relay.NodeID[int]
    credit_code: str
    name: str

    @classmethod
    def from_row(cls, row: models.Enterprise) -> EnterpriseNode:
        return cls(id=row.id, credit_code=row.credit_code, name=row.name)


@strawberry.type(name="Person", description="系统用户")
class PersonNode(RowNode):
    _model = models.User
    _project_path = None
    id: relay.NodeID[int]
    username: str
    display_name: str
    role: RoleEnum  # type: ignore[valid-type]
    department_id: strawberry.Private[int | None]

    @strawberry.field
    def role_label(self) -> str:
        return label(self.role)

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode | None:
        if self.department_id is None:
            return None
        return department_node(info, self.department_id)

    @classmethod
    def from_row(cls, row: models.User) -> PersonNode:
        return cls(
            id=row.id,
            username=row.username,
            display_name=row.display_name,
            role=row.role,
            department_id=row.department_id,
        )


async def person_of(info: Info, user_id: int | None) -> PersonNode | None:
    if user_id is None:
        return None
    row = await info.context.loaders.user.load(user_id)
    return PersonNode.from_row(row) if row else None


@strawberry.type(description="一次评价的内容与差评回访; 建设项目阶段和企业设立共用")
class RatingAnswer:
    score: int | None = strawberry.field(description="1-5 分; 未评价为空")
    comment: str
    rated_at: datetime | None
    follow_up_due: date | None = strawberry.field(description="差评回访期限(15个工作日)")
    follow_up_done_at: datetime | None
    follow_up_note: str

    @strawberry.field(description="差评回访尚未办结")
    def follow_up_open(self) -> bool:
        return self.follow_up_due is not None and self.follow_up_done_at is None

    @strawberry.field(description="差评回访已过期限仍未办结")
    def follow_up_overdue(self, info: Info) -> bool:
        today = local_day(info.context.now())
        return (
            self.follow_up_open() and self.follow_up_due is not None and self.follow_up_due < today
        )
