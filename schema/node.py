"""The root ``node`` field: any object of the API by its global id, within what the viewer
may see (each node type resolves with its own scope)."""

from __future__ import annotations

import strawberry
from strawberry import relay

from schema.core.context import Info
from schema.fieldwork.inspections import InspectionNode
from schema.projects.types import NODE_TYPES


@strawberry.type
class NodeQuery:
    @strawberry.field(description="按全局 id 查询任意对象")
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node | None:
        if id.type_name == "Inspection":  # not a plain row: its own visibility and nesting
            [inspection] = await InspectionNode.resolve_nodes(info=info, node_ids=[id.node_id])
            return inspection
        node_type = NODE_TYPES.get(id.type_name)
        if node_type is None:
            return None
        [found] = await node_type.resolve_nodes(info=info, node_ids=[id.node_id])
        return found
