"""Who is asking, and what they may see and do."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery

from approval.core.errors import DomainError, ErrorCode
from approval.core.labels import label
from storage.enums import Role
from storage.models import Project, Task


@dataclass(frozen=True)
class Viewer:
    user_id: int
    username: str
    role: Role
    department_id: int | None = None
    enterprise_id: int | None = None
    # The region the user works for and every region below it; None means the whole city.
    region_ids: frozenset[int] | None = None
    # The bearer token this viewer came with (logout revokes it); None outside a request.
    token_id: int | None = None


def require_role(viewer: Viewer, *roles: Role) -> None:
    if viewer.role not in roles:
        allowed = ", ".join(f"{label(r)} ({r.value})" for r in roles)
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"role {viewer.role.value} may not do this; it needs one of: {allowed}",
        )


def project_scope(viewer: Viewer) -> Q:
    """The projects a viewer may see, as a filter on Project."""
    if viewer.role is Role.APPLICANT:
        scope = Q(enterprise_id=viewer.enterprise_id or -1)
    elif viewer.role is Role.AGENT:
        scope = Q(agent_id=viewer.user_id)
    elif viewer.role in (Role.REVIEWER, Role.INSPECTOR):
        with_tasks = Task.filter(department_id=viewer.department_id or -1).values(
            "stage__project_id"
        )
        scope = Q(id__in=Subquery(with_tasks))
    else:  # window clerks and supervisors
        scope = Q()
    if viewer.region_ids is not None:
        scope &= Q(region_id__in=sorted(viewer.region_ids))
    return scope


async def visible_project(viewer: Viewer, project_id: int) -> Project:
    """The project, or NOT_FOUND when it does not exist or is outside the viewer's scope."""
    project = await Project.filter(project_scope(viewer), id=project_id).first()
    if project is None:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"project {project_id} does not exist or is not visible to you; check the id",
            field="projectId",
        )
    return project
