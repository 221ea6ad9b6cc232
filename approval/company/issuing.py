"""统一发证: the window hands over every certificate of a setup together, once all its
departments approved; the 领件通知 SMS goes out from the audit trail (oversight)."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from approval.company.access import visible_setup
from approval.core import audit
from approval.core.access import Viewer, require_role
from approval.core.errors import DomainError, ErrorCode
from approval.core.labels import label
from storage.enums import Role, SetupStatus
from storage.models import CompanySetup


async def issue_setup(*, viewer: Viewer, code: str, now: datetime) -> CompanySetup:
    """Issue the licence and certificates of a setup whose departments all approved."""
    require_role(viewer, Role.WINDOW_CLERK)
    found = await visible_setup(viewer, code)
    async with in_transaction():
        setup = await CompanySetup.select_for_update().get(id=found.id)
        if setup.status is not SetupStatus.READY:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"setup {setup.code} is {label(setup.status)}; certificates are issued together "
                "only once every department approved (待发证)",
                field="code",
            )
        setup.status = SetupStatus.ISSUED
        setup.issued_at = now
        setup.issued_by_id = viewer.user_id
        await setup.save(update_fields=["status", "issued_at", "issued_by_id"])
        await audit.record(
            actor_id=viewer.user_id,
            action="setup.issue",
            entity_type="setup",
            entity_id=setup.id,
            project_id=setup.project_id,
            before={"status": SetupStatus.READY.value},
            after={"status": setup.status.value},
        )
    return setup
