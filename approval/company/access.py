"""Who sees which company setups: the guard is :func:`approval.core.access.setup_scope`
(beside the projects' one, as the field documents of both cases use it)."""

from __future__ import annotations

from approval.core.access import Viewer, setup_scope
from approval.core.errors import not_found
from storage.models import CompanySetup


async def visible_setup(viewer: Viewer, code: str, *, field: str = "code") -> CompanySetup:
    """The setup with this receipt code, or NOT_FOUND when it is unknown or not the viewer's."""
    setup = await CompanySetup.filter(setup_scope(viewer), code=code.strip()).first()
    if setup is None:
        raise not_found("company setup", code, field=field)
    return setup
