"""一人代办: a project's agent (代办员) can be replaced; the change is audited, and from then
on the new agent sees the project, its warnings and its agency document, the old one no more."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, visible_project
from approval.core.errors import DomainError, ErrorCode, invalid
from storage.enums import Role
from storage.models import Project, User


async def reassign_agent(
    *, viewer: Viewer, project_id: int, agent_username: str | None, reason: str, now: datetime
) -> Project:
    """Give the project another agent (None: none); the window or a supervisor, with a reason."""
    require_role(viewer, Role.WINDOW_CLERK, Role.SUPERVISOR)
    project = await visible_project(viewer, project_id)
    if not reason.strip():
        raise invalid("say why the agent changes (e.g. leave, workload)", field="reason")
    agent = None
    if agent_username is not None:
        agent = await User.get_or_none(
            username=agent_username.strip(), role=Role.AGENT, active=True
        )
        if agent is None:
            raise invalid(f"{agent_username!r} is not an active agent (代办员)", field="agent")
    async with in_transaction():
        locked = await Project.select_for_update().get(id=project.id)
        if locked.agent_id == (agent.id if agent else None):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                "the project already has this agent; nothing to change",
                field="agent",
            )
        before = await User.get_or_none(id=locked.agent_id) if locked.agent_id else None
        locked.agent_id = agent.id if agent else None
        locked.updated_at = now
        await locked.save(update_fields=["agent_id", "updated_at"])
        await audit.record(
            actor_id=viewer.user_id,
            action="project.reassign_agent",
            entity_type="project",
            entity_id=locked.id,
            project_id=locked.id,
            before={"agent": before.username if before else None},
            after={"agent": agent.username if agent else None, "reason": reason.strip()},
        )
    return locked
