"""Field inspections in GraphQL: 现场踏勘 and 联合验收 rounds, their checks and conclusions.

Reads come from the materialised rows; a recorded check goes through the inspection document
(``Context.documents``), the one source of truth for what the field records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from approval.core.access import Viewer, project_scope
from approval.core.errors import DomainError, ErrorCode
from approval.core.inputs import row_id
from approval.core.labels import label
from approval.fieldwork import inspections
from approval.fieldwork import policy as fieldwork
from approval.fieldwork.documents import (
    CHECK_RESULT_LABELS,
    CONCLUSION_LABELS,
    ENTRY_KIND_LABELS,
    inspection_doc_name,
)
from schema.company.setups import CompanySetupInfo, setup_info
from schema.core.context import Info, query_error
from schema.core.errors import UserError
from schema.core.nodes import DepartmentNode, PersonNode, department_node
from schema.core.payloads import attempt, decode_id
from schema.files.stored import PhotoNode, photos_of
from schema.projects.types import ProjectNode
from storage import enums, models

CheckOutcomeEnum = strawberry.enum(enums.CheckOutcome, name="CheckOutcome")
ConclusionEnum = strawberry.enum(enums.Conclusion, name="InspectionConclusion")
InspectionKindEnum = strawberry.enum(enums.InspectionKind, name="InspectionKind")
InspectionStatusEnum = strawberry.enum(enums.InspectionStatus, name="InspectionStatus")

SYNC_OFF = DomainError(
    ErrorCode.SYNC_UNAVAILABLE,
    "field documents are not served by this server (sync is not configured), so checks "
    "cannot be recorded through GraphQL; record them on a tablet connected to the sync server",
)


@strawberry.type(name="CheckResult", description="检查项及其结果(来自现场文档)")
class CheckResultNode:
    code: str
    label: str = strawberry.field(description="检查项名称")
    unit: str | None = strawberry.field(description="实测单位")
    measurable: bool = strawberry.field(description="需实测数据")
    minimum: float | None = strawberry.field(description="允许的最小实测值(规范要求); 无要求时为空")
    maximum: float | None = strawberry.field(description="允许的最大实测值(规范要求); 无要求时为空")
    outcome: CheckOutcomeEnum | None  # type: ignore[valid-type]
    note: str
    measured: dict[str, Any] = strawberry.field(graphql_type=JSON, description="实测值")
    photo_ids: list[str]
    inspection_id: strawberry.Private[int]
    recorded_by: str
    recorded_at: datetime | None
    position: CheckPositionNode | None = strawberry.field(
        description="记录时的位置; 平板未能定位时为空"
    )

    @strawberry.field(description="证据照片; 尚未上传的显示为待上传")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await photos_of(info, self.inspection_id, self.photo_ids)

    @strawberry.field(description="合格/不合格/不适用/需整改")
    def outcome_label(self) -> str | None:
        return CHECK_RESULT_LABELS[self.outcome] if self.outcome else None


@strawberry.type(name="CheckPosition", description="记录检查项时平板所在位置 (WGS 84)")
class CheckPositionNode:
    latitude: float = strawberry.field(description="纬度")
    longitude: float = strawberry.field(description="经度")
    accuracy: float | None = strawberry.field(description="定位精度 (米); 未知时为空")


@strawberry.type(name="Rectification", description="整改事项")
class RectificationNode:
    uuid: str
    description: str
    due: date | None
    done: bool
    department_id: strawberry.Private[int | None]

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode | None:
        return department_node(info, self.department_id) if self.department_id else None


@strawberry.type(name="AgencyEntry", description="代办员的走访、电话或待办")
class AgencyEntryNode:
    uuid: str
    kind: str = strawberry.field(description="visit | call | todo")
    text: str
    at: datetime | None
    due: date | None
    done: bool

    @strawberry.field(description="走访/电话/待办")
    def kind_label(self) -> str:
        return ENTRY_KIND_LABELS.get(self.kind, self.kind)


@strawberry.type(name="InspectionDepartment", description="参加踏勘/验收的部门及其结论")
class InspectionDepartmentNode:
    conclusion: ConclusionEnum | None  # type: ignore[valid-type]
    conclusion_note: str
    signed_by: str
    signed_at: datetime | None
    checks: list[CheckResultNode]
    rectifications: list[RectificationNode]
    department_id: strawberry.Private[int]

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode:
        return department_node(info, self.department_id)

    @strawberry.field
    def conclusion_label(self) -> str | None:
        return CONCLUSION_LABELS[self.conclusion] if self.conclusion else None


@strawberry.type(name="InspectionAssignment", description="指派的踏勘/验收人员")
class InspectionAssignmentNode:
    user_id: strawberry.Private[int]
    department_id: strawberry.Private[int]

    @strawberry.field
    async def person(self, info: Info) -> PersonNode:
        row = await info.context.loaders.user.load(self.user_id)
        assert row is not None
        return PersonNode.from_row(row)

    @strawberry.field
    def department(self, info: Info) -> DepartmentNode:
        return department_node(info, self.department_id)


@strawberry.type(name="Inspection", description="现场踏勘或一轮联合验收")
class InspectionNode(relay.Node):
    id: relay.NodeID[int]
    kind: InspectionKindEnum  # type: ignore[valid-type]
    round: int = strawberry.field(description="第几轮(复验递增)")
    status: InspectionStatusEnum  # type: ignore[valid-type]
    requested_at: datetime
    due: date = strawberry.field(description="应完成日期(工作日计算)")
    scheduled_for: date | None
    closed_at: datetime | None
    document_name: str = strawberry.field(description="现场文档名, 同步服务使用")
    project: ProjectNode | None = strawberry.field(
        description="建设项目(企业设立的现场踏勘则为空, 见 setup)"
    )
    setup: CompanySetupInfo | None = strawberry.field(
        description="企业设立(其许可需要现场踏勘); 建设项目的踏勘/验收则为空"
    )
    previous_id: relay.GlobalID | None = strawberry.field(description="上一轮")
    departments: list[InspectionDepartmentNode]
    assignments: list[InspectionAssignmentNode]

    @strawberry.field
    def kind_label(self) -> str:
        return label(self.kind)

    @strawberry.field
    def status_label(self) -> str:
        return label(self.status)

    @strawberry.field(description="各部门的整改事项")
    def rectifications(self) -> list[RectificationNode]:
        return [r for d in self.departments for r in d.rectifications]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[InspectionNode | None]:
        viewer = info.context.query_viewer()
        found: list[InspectionNode | None] = []
        for node_id in node_ids:
            number = row_id(node_id)
            row = await _visible(viewer, number) if number is not None else None
            found.append(None if row is None else await _node(row, viewer))
        return found


async def _visible(viewer: Viewer, inspection_id: int) -> models.Inspection | None:
    try:
        return await inspections.visible_inspection(viewer=viewer, inspection_id=inspection_id)
    except DomainError:
        return None


def _bound(value: object) -> float | None:
    """A bound of a check's allowed range as kept in its template (absent: none)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


async def build_nodes(rows: list[models.Inspection], viewer: Viewer) -> list[InspectionNode]:
    """Nodes for many inspections in a fixed number of statements; the project of each is
    limited to what the visit needs where the viewer does not see the project itself."""
    ids = [r.id for r in rows]
    departments = await models.InspectionDepartment.filter(inspection_id__in=ids).order_by("id")
    checks = await models.CheckResult.filter(inspection_id__in=ids).order_by("id")
    rectifications = await models.Rectification.filter(inspection_id__in=ids).order_by("id")
    assignments = await models.InspectionAssignment.filter(inspection_id__in=ids).order_by("id")
    project_ids = {r.project_id for r in rows if r.project_id is not None}
    projects = {p.id: p for p in await models.Project.filter(id__in=project_ids)}
    in_scope = set(
        await models.Project.filter(project_scope(viewer), id__in=project_ids).values_list(
            "id", flat=True
        )
    )
    # The rows are the viewer's already (in scope or assigned): a setup's inspector sees the
    # company name, business type and code they visit.
    setup_ids = {r.setup_id for r in rows if r.setup_id is not None}
    setups = {
        s.id: await setup_info(s)
        for s in (await models.CompanySetup.filter(id__in=setup_ids) if setup_ids else [])
    }
    templates = await models.ChecklistTemplate.filter(
        department_id__in={d.department_id for d in departments}
    ).order_by("code")
    catalog: dict[tuple[int, str], dict[str, Any]] = {}
    for template in templates:
        for check in template.checks:
            catalog.setdefault((template.department_id, str(check["code"])), check)
    checks_of: dict[tuple[int, int], list[CheckResultNode]] = defaultdict(list)
    for c in checks:
        spec = catalog.get((c.department_id, c.check_code), {})
        checks_of[(c.inspection_id, c.department_id)].append(
            CheckResultNode(
                code=c.check_code,
                label=str(spec.get("label", c.check_code)),
                unit=spec.get("unit"),
                measurable=bool(spec.get("measured", False)),
                minimum=_bound(spec.get("min")),
                maximum=_bound(spec.get("max")),
                outcome=c.outcome,
                note=c.note,
                measured=dict(c.measured),
                photo_ids=list(c.photo_ids),
                inspection_id=c.inspection_id,
                recorded_by=c.recorded_by,
                recorded_at=c.recorded_at,
                position=CheckPositionNode(**c.position) if c.position else None,
            )
        )
    rects_of: dict[tuple[int, int | None], list[RectificationNode]] = defaultdict(list)
    for r in rectifications:
        rects_of[(r.inspection_id, r.department_id)].append(
            RectificationNode(
                uuid=r.uuid,
                description=r.description,
                due=r.due,
                done=r.done,
                department_id=r.department_id,
            )
        )
    departments_of: dict[int, list[InspectionDepartmentNode]] = defaultdict(list)
    for d in departments:
        departments_of[d.inspection_id].append(
            InspectionDepartmentNode(
                conclusion=d.conclusion,
                conclusion_note=d.conclusion_note,
                signed_by=d.signed_by,
                signed_at=d.signed_at,
                checks=checks_of[(d.inspection_id, d.department_id)],
                rectifications=rects_of[(d.inspection_id, d.department_id)],
                department_id=d.department_id,
            )
        )
    assignments_of: dict[int, list[InspectionAssignmentNode]] = defaultdict(list)
    for a in assignments:
        assignments_of[a.inspection_id].append(
            InspectionAssignmentNode(user_id=a.user_id, department_id=a.department_id)
        )
    return [
        InspectionNode(
            id=r.id,
            kind=r.kind,
            round=r.round,
            status=r.status,
            requested_at=r.requested_at,
            due=r.due,
            scheduled_for=r.scheduled_for,
            closed_at=r.closed_at,
            document_name=inspection_doc_name(r.id),
            project=ProjectNode.from_row(
                projects[r.project_id], limited=r.project_id not in in_scope
            )
            if r.project_id is not None
            else None,
            setup=setups[r.setup_id] if r.setup_id is not None else None,
            previous_id=relay.GlobalID("Inspection", str(r.previous_id)) if r.previous_id else None,
            departments=departments_of[r.id],
            assignments=assignments_of[r.id],
        )
        for r in rows
    ]


async def _node(row: models.Inspection, viewer: Viewer) -> InspectionNode:
    [node] = await build_nodes([row], viewer)
    return node


@strawberry.type
class InspectionQuery:
    @strawberry.field(description="项目的现场踏勘和联合验收, 按时间顺序")
    async def inspections(self, info: Info, project_id: relay.GlobalID) -> list[InspectionNode]:
        viewer = info.context.query_viewer()
        try:
            rows = await inspections.project_inspections(
                viewer=viewer, project_id=decode_id(project_id, "Project", "projectId")
            )
        except DomainError as error:
            raise query_error(error) from None
        return await build_nodes(rows, viewer)

    @strawberry.field(description="代办员的走访、电话和待办(来自代办文档)")
    async def agency_entries(self, info: Info, project_id: relay.GlobalID) -> list[AgencyEntryNode]:
        viewer = info.context.query_viewer()
        try:
            rows = await inspections.project_agency_entries(
                viewer=viewer, project_id=decode_id(project_id, "Project", "projectId")
            )
        except DomainError as error:
            raise query_error(error) from None
        return [
            AgencyEntryNode(uuid=r.uuid, kind=r.kind, text=r.text, at=r.at, due=r.due, done=r.done)
            for r in rows
        ]

    @strawberry.field(description="一次踏勘/验收")
    async def inspection(self, info: Info, id: relay.GlobalID) -> InspectionNode | None:
        viewer = info.context.query_viewer()
        try:
            inspection_id = decode_id(id, "Inspection", "id")
        except DomainError as error:
            raise query_error(error) from None
        row = await _visible(viewer, inspection_id)
        return await _node(row, viewer) if row else None

    @strawberry.field(description="指派给我的踏勘/验收, 按期限先后")
    async def my_inspections(self, info: Info, open_only: bool = True) -> list[InspectionNode]:
        viewer = info.context.query_viewer()
        rows = await inspections.assigned_inspections(viewer=viewer, open_only=open_only)
        return await build_nodes(rows, viewer)


@strawberry.input
class ScheduleSiteCheckInput:
    project_id: relay.GlobalID
    departments: list[str] = strawberry.field(description="参加踏勘的部门代码")


@strawberry.input
class ScheduleJointAcceptanceInput:
    project_id: relay.GlobalID
    departments: list[str] = strawberry.field(description="参加联合验收的部门代码")
    scheduled_for: date = strawberry.field(description="验收日期(工作日)")


@strawberry.input
class AssignInspectorsInput:
    inspection_id: relay.GlobalID
    usernames: list[str]


@strawberry.input
class ScheduleReinspectionInput:
    inspection_id: relay.GlobalID = strawberry.field(description="需整改的上一轮")
    scheduled_for: date | None = strawberry.field(default=None, description="复验日期")


@strawberry.input(description="一项实测值")
class MeasurementInput:
    name: str
    value: float


@strawberry.input(description="记录一个检查项(写入现场文档)")
class RecordCheckInput:
    inspection_id: relay.GlobalID
    check: str = strawberry.field(description="检查项代码")
    result: CheckOutcomeEnum  # type: ignore[valid-type]
    note: str | None = strawberry.field(default=None, description="不填则保留原备注")
    measured: list[MeasurementInput] | None = strawberry.field(
        default=None, description="不填则保留原实测值"
    )
    photo_ids: list[str] = strawberry.field(default_factory=list, description="追加的照片")


@strawberry.input(description="本部门验收结论")
class FileConclusionInput:
    inspection_id: relay.GlobalID
    result: ConclusionEnum  # type: ignore[valid-type]
    note: str = ""


@strawberry.type
class InspectionPayload:
    inspection: InspectionNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _payload(info: Info, run: Any) -> InspectionPayload:
    async def action() -> InspectionNode:
        row = await run()
        return await _node(row, info.context.require_viewer())

    node, errors = await attempt(action)
    return InspectionPayload(inspection=node, errors=errors)


@strawberry.type
class InspectionMutation:
    @strawberry.mutation(description="安排现场踏勘(3个工作日内完成)")
    async def schedule_site_check(
        self, info: Info, input: ScheduleSiteCheckInput
    ) -> InspectionPayload:
        ctx = info.context
        return await _payload(
            info,
            lambda: inspections.schedule_site_check(
                viewer=ctx.require_viewer(),
                project_id=decode_id(input.project_id, "Project", "projectId"),
                department_codes=input.departments,
                now=ctx.now(),
            ),
        )

    @strawberry.mutation(description="组织联合验收(竣工验收阶段)")
    async def schedule_joint_acceptance(
        self, info: Info, input: ScheduleJointAcceptanceInput
    ) -> InspectionPayload:
        ctx = info.context
        return await _payload(
            info,
            lambda: inspections.schedule_joint_acceptance(
                viewer=ctx.require_viewer(),
                project_id=decode_id(input.project_id, "Project", "projectId"),
                department_codes=input.departments,
                scheduled_for=input.scheduled_for,
                now=ctx.now(),
            ),
        )

    @strawberry.mutation(description="指派踏勘/验收人员")
    async def assign_inspectors(
        self, info: Info, input: AssignInspectorsInput
    ) -> InspectionPayload:
        ctx = info.context
        return await _payload(
            info,
            lambda: inspections.assign_inspectors(
                viewer=ctx.require_viewer(),
                inspection_id=decode_id(input.inspection_id, "Inspection", "inspectionId"),
                usernames=input.usernames,
                now=ctx.now(),
            ),
        )

    @strawberry.mutation(description="整改后安排复验(不合格的部门)")
    async def schedule_reinspection(
        self, info: Info, input: ScheduleReinspectionInput
    ) -> InspectionPayload:
        ctx = info.context
        return await _payload(
            info,
            lambda: inspections.schedule_reinspection(
                viewer=ctx.require_viewer(),
                inspection_id=decode_id(input.inspection_id, "Inspection", "inspectionId"),
                scheduled_for=input.scheduled_for,
                now=ctx.now(),
            ),
        )

    @strawberry.mutation(description="记录检查项结果: 写入现场文档, 与平板上的记录合并")
    async def record_check(self, info: Info, input: RecordCheckInput) -> InspectionPayload:
        ctx = info.context

        async def run() -> models.Inspection:
            viewer = ctx.require_viewer()
            if ctx.documents is None:
                raise SYNC_OFF
            return await fieldwork.record_check(
                viewer=viewer,
                inspection_id=decode_id(input.inspection_id, "Inspection", "inspectionId"),
                check_code=input.check,
                result=input.result,
                note=input.note,
                measured=(
                    {m.name: m.value for m in input.measured}
                    if input.measured is not None
                    else None
                ),
                photo_ids=input.photo_ids,
                documents=ctx.documents,
                now=ctx.now(),
            )

        return await _payload(info, run)

    @strawberry.mutation(description="签署本部门验收结论; 全部合格则本轮通过")
    async def file_conclusion(self, info: Info, input: FileConclusionInput) -> InspectionPayload:
        ctx = info.context

        async def run() -> models.Inspection:
            viewer = ctx.require_viewer()
            inspection_id = decode_id(input.inspection_id, "Inspection", "inspectionId")
            if ctx.documents is not None:  # signed in the document, like on a tablet
                return await fieldwork.sign_conclusion(
                    viewer=viewer,
                    inspection_id=inspection_id,
                    result=input.result,
                    note=input.note,
                    documents=ctx.documents,
                    now=ctx.now(),
                )
            return await inspections.file_conclusion(
                viewer=viewer,
                inspection_id=inspection_id,
                result=input.result,
                note=input.note,
                now=ctx.now(),
            )

        return await _payload(info, run)
