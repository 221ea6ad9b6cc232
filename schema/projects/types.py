"""The construction side's GraphQL types: projects, their stages, tasks and materials, as thin
views over stored rows (relations through per-request loaders)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode
from approval.core.labels import label
from schema.core.context import Info
from schema.core.errors import as_graphql_error
from schema.core.nodes import (
    DecisionEnum,
    DepartmentNode,
    EnterpriseNode,
    MaterialStatusEnum,
    MaterialTypeNode,
    PersonNode,
    RegionNode,
    RowNode,
    ServiceItemNode,
    department_node,
    material_type_node,
    person_of,
)
from schema.files.stored import StoredFileNode
from storage import enums, models

ProjectTypeEnum = strawberry.enum(enums.ProjectType, name="ProjectType")
ProjectStatusEnum = strawberry.enum(enums.ProjectStatus, name="ProjectStatus")
StageStatusEnum = strawberry.enum(enums.StageStatus, name="StageStatus")
TaskStatusEnum = strawberry.enum(enums.TaskStatus, name="TaskStatus")


def _today(info: Info) -> date:
    return local_day(info.context.now())


@strawberry.type(name="MaterialVersion", description="材料版本")
class MaterialVersionNode:
    version: int
    file_name: str
    size_bytes: int | None
    sha256: str | None
    note: str
    submitted_at: datetime
    object_id: strawberry.Private[int | None]

    @strawberry.field(description="上传的文件(纸质材料为空)")
    async def file(self, info: Info) -> StoredFileNode | None:
        if self.object_id is None:
            return None
        row = await info.context.loaders.stored_object.load(self.object_id)
        return StoredFileNode.of(row, self.file_name) if row else None


@strawberry.type(name="Material", description="项目材料库中的一种材料")
class MaterialNode(RowNode):
    _model = models.Material
    _project_path = "project_id"
    id: relay.NodeID[int]
    status: MaterialStatusEnum  # type: ignore[valid-type]
    version: int
    rejection_reason: str
    commitment_due: date | None
    commitment_signed_by: str
    updated_at: datetime
    material_type_id: strawberry.Private[int]

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field
    def material_type(self, info: Info) -> MaterialTypeNode:
        return material_type_node(info, self.material_type_id)

    @strawberry.field
    async def versions(self, info: Info) -> list[MaterialVersionNode]:
        rows = await info.context.loaders.versions_by_material.load(self.id)
        return [
            MaterialVersionNode(
                version=v.version,
                file_name=v.file_name,
                size_bytes=v.size_bytes,
                sha256=v.sha256,
                note=v.note,
                submitted_at=v.submitted_at,
                object_id=v.object_id,
            )
            for v in rows
        ]

    @classmethod
    def from_row(cls, row: models.Material) -> MaterialNode:
        return cls(
            id=row.id,
            status=row.status,
            version=row.current_version,
            rejection_reason=row.rejection_reason,
            commitment_due=row.commitment_due,
            commitment_signed_by=row.commitment_signed_by,
            updated_at=row.updated_at,
            material_type_id=row.material_type_id,
        )


@strawberry.type(name="SupplementRequest", description="补正要求")
class SupplementRequestNode:
    reason: str
    requested_at: datetime
    resolved_at: datetime | None
    material_type_id: strawberry.Private[int | None]

    @strawberry.field
    def material_type(self, info: Info) -> MaterialTypeNode | None:
        if self.material_type_id is None:
            return None
        return material_type_node(info, self.material_type_id)


@strawberry.type(name="Task", description="部门审批任务")
class TaskNode(RowNode):
    _model = models.Task
    _project_path = "stage__project_id"
    id: relay.NodeID[int]
    status: TaskStatusEnum  # type: ignore[valid-type]
    decision: DecisionEnum | None  # type: ignore[valid-type]
    opinion: str
    deadline: date
    decided_at: datetime | None
    round: int
    paused: bool = strawberry.field(description="计时已中止(专家评审、听证、检验检测、补正等)")
    default_approved: bool = strawberry.field(description="超时默认通过")
    formal_opinion_due: date | None = strawberry.field(
        description="超时默认通过后, 部门补交正式意见的期限"
    )
    formal_opinion_at: datetime | None = strawberry.field(description="正式意见补交时间")
    item_id: strawberry.Private[int]
    department_id: strawberry.Private[int]
    decided_by_id: strawberry.Private[int | None]

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field
    def decision_label(self) -> str | None:
        return label(self.decision) if self.decision else None

    @strawberry.field(description="未决且已过期限(计时中止期间不算)")
    def overdue(self, info: Info) -> bool:
        return self.decided_at is None and not self.paused and self.deadline < _today(info)

    @strawberry.field
    def item(self, info: Info) -> ServiceItemNode:
        return ServiceItemNode.from_row(info.context.catalog.service_items[self.item_id])

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode:
        return department_node(info, self.department_id)

    @strawberry.field
    async def decided_by(self, info: Info) -> PersonNode | None:
        return await person_of(info, self.decided_by_id)

    @strawberry.field
    async def supplements(self, info: Info) -> list[SupplementRequestNode]:
        rows = await info.context.loaders.supplements_by_task.load(self.id)
        return [
            SupplementRequestNode(
                reason=r.reason,
                requested_at=r.requested_at,
                resolved_at=r.resolved_at,
                material_type_id=r.material_type_id,
            )
            for r in rows
        ]

    @classmethod
    def from_row(cls, row: models.Task) -> TaskNode:
        return cls(
            id=row.id,
            status=row.status,
            decision=row.decision,
            opinion=row.opinion,
            deadline=row.deadline,
            decided_at=row.decided_at,
            round=row.round,
            paused=row.paused_at is not None,
            default_approved=row.default_approved,
            formal_opinion_due=row.formal_opinion_due,
            formal_opinion_at=row.formal_opinion_at,
            item_id=row.item_id,
            department_id=row.department_id,
            decided_by_id=row.decided_by_id,
        )


@strawberry.type(name="Stage", description="审批阶段")
class StageNode(RowNode):
    _model = models.Stage
    _project_path = "project_id"
    id: relay.NodeID[int]
    status: StageStatusEnum  # type: ignore[valid-type]
    outcome: DecisionEnum | None  # type: ignore[valid-type]
    round: int
    accepted_at: datetime | None
    deadline: date | None
    completed_at: datetime | None
    definition_id: strawberry.Private[int]

    def _definition(self, info: Info) -> models.StageDefinition:
        return info.context.catalog.stage_definitions[self.definition_id]

    @strawberry.field(description="阶段代码, 如 project_approval")
    def code(self, info: Info) -> str:
        return self._definition(info).code

    @strawberry.field(description="阶段名称, 如 立项用地规划许可")
    def name(self, info: Info) -> str:
        return self._definition(info).name

    @strawberry.field
    def order(self, info: Info) -> int:
        return self._definition(info).order

    @strawberry.field
    def lead_department(self, info: Info) -> DepartmentNode:
        return department_node(info, self._definition(info).lead_department_id)

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field
    def outcome_label(self) -> str | None:
        return label(self.outcome) if self.outcome else None

    @strawberry.field(description="审批中且已过阶段期限")
    def overdue(self, info: Info) -> bool:
        return (
            self.status is enums.StageStatus.IN_REVIEW
            and self.deadline is not None
            and self.deadline < _today(info)
        )

    @strawberry.field(description="本轮受理的部门任务")
    async def tasks(self, info: Info) -> list[TaskNode]:
        rows = await info.context.loaders.tasks_by_stage_round.load((self.id, self.round))
        return [TaskNode.from_row(r) for r in rows]

    @classmethod
    def from_row(cls, row: models.Stage) -> StageNode:
        return cls(
            id=row.id,
            status=row.status,
            outcome=row.outcome,
            round=row.round,
            accepted_at=row.accepted_at,
            deadline=row.deadline,
            completed_at=row.completed_at,
            definition_id=row.definition_id,
        )


@strawberry.type(name="AuditEvent", description="审计记录: 谁、何时、做了什么、前后状态")
class AuditEventNode:
    action: str
    at: datetime
    entity_type: str
    before: dict[str, Any] | None = strawberry.field(graphql_type=JSON | None)
    after: dict[str, Any] | None = strawberry.field(graphql_type=JSON | None)
    actor_id: strawberry.Private[int | None]

    @strawberry.field
    async def actor(self, info: Info) -> PersonNode | None:
        return await person_of(info, self.actor_id)


@strawberry.type(name="Project", description="建设项目(一号制)")
class ProjectNode(RowNode):
    _model = models.Project
    _project_path = "id"
    id: relay.NodeID[int]
    code: str
    name: str
    project_type: ProjectTypeEnum  # type: ignore[valid-type]
    industry_code: str
    land_area: Decimal
    floor_area: Decimal
    investment: Decimal = strawberry.field(description="总投资(万元)")
    address: str
    status: ProjectStatusEnum  # type: ignore[valid-type]
    created_at: datetime
    enterprise_id: strawberry.Private[int]
    region_id: strawberry.Private[int]
    agent_id: strawberry.Private[int | None]
    # Reached from an inspection by someone outside the project's scope (an assigned
    # inspector): what the site visit needs (name, code, address, figures), not the rest.
    limited: strawberry.Private[bool] = False

    def _full(self) -> None:
        if self.limited:
            raise as_graphql_error(
                DomainError(
                    ErrorCode.FORBIDDEN,
                    "through an inspection you see the project's name, code and address; its "
                    "enterprise, agent, stages, materials and audit trail need access to the "
                    "project itself",
                )
            )

    @strawberry.field
    def project_type_label(self) -> str:
        return label(self.project_type)

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field
    async def enterprise(self, info: Info) -> EnterpriseNode:
        self._full()
        row = await info.context.loaders.enterprise.load(self.enterprise_id)
        assert row is not None
        return EnterpriseNode.from_row(row)

    @strawberry.field
    def region(self, info: Info) -> RegionNode:
        return RegionNode.from_row(info.context.catalog.regions[self.region_id])

    @strawberry.field(description="代办员")
    async def agent(self, info: Info) -> PersonNode | None:
        self._full()
        return await person_of(info, self.agent_id)

    @strawberry.field(description="四个阶段, 按顺序")
    async def stages(self, info: Info) -> list[StageNode]:
        self._full()
        rows = await info.context.loaders.stages_by_project.load(self.id)
        return [StageNode.from_row(r) for r in rows]

    @strawberry.field(description="项目材料库")
    async def materials(self, info: Info) -> list[MaterialNode]:
        self._full()
        rows = await info.context.loaders.materials_by_project.load(self.id)
        return [MaterialNode.from_row(r) for r in rows]

    @strawberry.field(description="审计记录, 按时间顺序")
    async def audit_trail(self, info: Info) -> list[AuditEventNode]:
        self._full()
        rows = await info.context.loaders.audit_by_project.load(self.id)
        return [
            AuditEventNode(
                action=e.action,
                at=e.at,
                entity_type=e.entity_type,
                before=e.before,
                after=e.after,
                actor_id=e.actor_id,
            )
            for e in rows
        ]

    @classmethod
    def from_row(cls, row: models.Project, *, limited: bool = False) -> ProjectNode:
        return cls(
            limited=limited,
            id=row.id,
            code=row.code,
            name=row.name,
            project_type=row.project_type,
            industry_code=row.industry_code,
            land_area=row.land_area_m2,
            floor_area=row.floor_area_m2,
            investment=row.investment_10k_yuan,
            address=row.address,
            status=row.status,
            created_at=row.created_at,
            enterprise_id=row.enterprise_id,
            region_id=row.region_id,
            agent_id=row.agent_id,
        )


@strawberry.type(name="Viewer", description="当前登录用户")
class ViewerNode:
    person: PersonNode


NODE_TYPES: dict[str, type[RowNode]] = {
    cls.__name__.removesuffix("Node"): cls
    for cls in (
        RegionNode,
        DepartmentNode,
        MaterialTypeNode,
        ServiceItemNode,
        EnterpriseNode,
        PersonNode,
        MaterialNode,
        TaskNode,
        StageNode,
        ProjectNode,
    )
}
