"""Who sees which company setups: one guard, as a filter on CompanySetup."""

from __future__ import annotations

from tortoise.expressions import Q, Subquery

from approval.core.access import Viewer
from approval.core.errors import not_found
from storage.enums import Role
from storage.models import CompanySetup, SetupTask


def setup_scope(viewer: Viewer) -> Q:
    """Window clerks and supervisors see every setup, reviewers and inspectors those with a
    task of their department, agents and applicants none (setups have no enterprise yet);
    all narrowed by the viewer's region."""
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


async def visible_setup(viewer: Viewer, code: str, *, field: str = "code") -> CompanySetup:
    """The setup with this receipt code, or NOT_FOUND when it is unknown or not the viewer's."""
    setup = await CompanySetup.filter(setup_scope(viewer), code=code.strip()).first()
    if setup is None:
        raise not_found("company setup", code, field=field)
    return setup
