"""Who is asking, and what they may see and do."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery

from approval.core.errors import DomainError, ErrorCode
from approval.core.labels import label
from storage.enums import Role
from storage.models import CompanySetup, Project, SetupTask, Task


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


def in_region(viewer: Viewer, region_id: int | None) -> bool:
    """Whether a record of ``region_id`` lies within the viewer's region (city-wide: all)."""
    return viewer.region_ids is None or region_id in viewer.region_ids


def require_task_scope(
    viewer: Viewer,
    *,
    what: str,
    task_id: int,
    department_id: int | None,
    department_name: str,
    region_id: int | None,
) -> None:
    """The one guard of every action on a department's task (construction or company setup):
    a reviewer of the task's department, within the region of the case. A task outside the
    viewer's region is NOT_FOUND, as ``node()`` hides it; one of another department is
    WRONG_DEPARTMENT."""
    require_role(viewer, Role.REVIEWER)
    if not in_region(viewer, region_id):
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"{what} {task_id} does not exist or is not visible to you; check the id",
            field="taskId",
        )
    if department_id != viewer.department_id:
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            f"{what} {task_id} belongs to {department_name}, not to your department; "
            "only its own department may act on it",
            field="taskId",
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


def setup_scope(viewer: Viewer) -> Q:
    """The company setups a viewer may see, as a filter on CompanySetup: window clerks and
    supervisors every setup, reviewers and inspectors those with a task of their department,
    agents and applicants none (setups have no enterprise yet); all narrowed by the viewer's
    region. Here beside :func:`project_scope`: the field documents of both cases use it."""
    if viewer.role in (Role.REVIEWER, Role.INSPECTOR):
        mine = SetupTask.filter(department_id=viewer.department_id or -1).values("setup_id")
        scope = Q(id__in=Subquery(mine))
    elif viewer.role in (Role.WINDOW_CLERK, Role.SUPERVISOR):
        scope = Q()
    else:
        scope = Q(id=-1)
    if viewer.region_ids is not None:
        scope &= Q(region_id__in=sorted(viewer.region_ids))
    return scope


async def setup_in_scope(viewer: Viewer, setup_id: int) -> bool:
    """Whether the viewer may see the setup ``setup_id``."""
    return await CompanySetup.filter(setup_scope(viewer), id=setup_id).exists()


def _visible_projects(viewer: Viewer, column: str) -> Subquery:
    return Subquery(Project.filter(project_scope(viewer)).values(column))


def person_scope(viewer: Viewer) -> Q:
    """The users a viewer may look up, as a filter on User: themselves, the agents of the
    projects they see, their department's colleagues, and for window clerks and supervisors
    the staff of their region. Nobody lists the whole city's accounts."""
    scope = Q(id=viewer.user_id) | Q(id__in=_visible_projects(viewer, "agent_id"))
    if viewer.department_id is not None:
        scope |= Q(department_id=viewer.department_id)
    if viewer.role in (Role.WINDOW_CLERK, Role.SUPERVISOR):
        staff = ~Q(role=Role.APPLICANT)
        if viewer.region_ids is not None:
            staff &= Q(region_id__in=sorted(viewer.region_ids))
        scope |= staff
    return scope


def enterprise_scope(viewer: Viewer) -> Q:
    """The enterprises a viewer may look up: their own and those of the projects they see."""
    return Q(id=viewer.enterprise_id or -1) | Q(id__in=_visible_projects(viewer, "enterprise_id"))


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
