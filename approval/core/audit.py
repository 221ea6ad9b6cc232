"""The audit trail: every state change, who made it, when, before and after."""

from __future__ import annotations

from typing import Any

from storage.models import AuditEvent


async def record(
    *,
    actor_id: int | None,
    action: str,
    entity_type: str,
    entity_id: int,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    return await AuditEvent.create(
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        project_id=project_id,
        before=before,
        after=after,
    )
