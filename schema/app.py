"""The schema and the ASGI app that serves it (the IDE page the server hands in, on GET)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule as NoIntrospection
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import AddValidationRules, MaskErrors
from strawberry.tools import merge_types
from strawberry.types.unset import UNSET, UnsetType

from approval.core import auth
from approval.core.bus import EventBus
from approval.core.errors import DomainError, ErrorCode
from approval.fieldwork.policy import DocumentEditor
from approval.files.uploads import UploadRules
from schema.company.setups import CompanyMutation, CompanyQuery
from schema.core.accounts import AccountMutation
from schema.core.catalog_cache import CatalogCache
from schema.core.context import Context
from schema.core.errors import TypedErrors, should_mask
from schema.core.limits import (
    BudgetedSchema,
    KnownDocuments,
    RefusedDocuments,
    RefusedRequest,
    RequestGuard,
    RequestLimits,
)
from schema.core.loaders import build_loaders
from schema.core.timing import ObserveOperation, OperationTimer
from schema.fieldwork.inspections import InspectionMutation, InspectionQuery
from schema.files.stored import DownloadAudit
from schema.files.uploads import UploadMutation
from schema.node import NodeQuery
from schema.oversight.board import BoardQuery
from schema.oversight.center import OversightMutation, OversightQuery, OversightSubscription
from schema.oversight.notifications import NotificationMutation, NotificationQuery
from schema.oversight.supervision import SupervisionMutation, SupervisionQuery
from schema.projects.mutation import Mutation
from schema.projects.query import Query

# Each room of the API adds its own root fields here (one module per concept).
EXTRA_QUERIES: tuple[type, ...] = (
    OversightQuery,
    NotificationQuery,
    SupervisionQuery,
    InspectionQuery,
    BoardQuery,
    CompanyQuery,
)
EXTRA_MUTATIONS: tuple[type, ...] = (
    AccountMutation,
    OversightMutation,
    NotificationMutation,
    SupervisionMutation,
    InspectionMutation,
    UploadMutation,
    CompanyMutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (OversightSubscription,)

IdePage = Callable[[Request], Awaitable[Response]]
"""The page a browser gets at GET /graphql (the self-hosted GraphiQL, made by the server)."""

SDL_PATH = Path(__file__).with_name("schema.graphql")


def build_schema(
    *,
    observe_operation: ObserveOperation | None = None,
    limits: RequestLimits | None = None,
    introspection: bool = True,
) -> strawberry.Schema:
    """The schema; ``observe_operation`` hears the duration of each query and mutation;
    ``limits`` bound what one request may cost (``schema.core.limits``); without
    ``introspection`` (production) ``__schema`` and ``__type`` are refused."""
    limits = limits or RequestLimits()
    refused = RefusedDocuments()  # shared by the requests of this schema
    known = KnownDocuments()
    timing = (
        [lambda: OperationTimer(observe=observe_operation)] if observe_operation is not None else []
    )
    schema = BudgetedSchema(
        query=merge_types("Query", (NodeQuery, Query, *EXTRA_QUERIES)),
        mutation=merge_types("Mutation", (Mutation, *EXTRA_MUTATIONS)),
        subscription=merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None,
        extensions=[
            lambda: RequestGuard(limits, refused, known),
            *([] if introspection else [lambda: AddValidationRules([NoIntrospection])]),
            TypedErrors,
            DownloadAudit,
            lambda: MaskErrors(should_mask_error=should_mask),
            *timing,
        ],
    )
    schema.time_budget_seconds = limits.time_budget_seconds
    schema.refusal_pause_seconds = limits.refusal_pause_seconds
    return schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"


class OneWindowGraphQL(GraphQL[Context, None]):
    def __init__(
        self,
        *,
        token_ttl: timedelta,
        clock: Callable[[], datetime],
        bus: EventBus | None = None,
        documents: DocumentEditor | None = None,
        upload_rules: UploadRules | None = None,
        observe_operation: ObserveOperation | None = None,
        ide: IdePage | None = None,
        limits: RequestLimits | None = None,
        introspection: bool = True,
    ) -> None:
        # No IDE page: browsers get 404 at GET /graphql (strawberry's own template loads
        # React and GraphiQL from a public CDN, so it is never served).
        super().__init__(
            build_schema(
                observe_operation=observe_operation, limits=limits, introspection=introspection
            ),
            graphql_ide="graphiql" if ide else None,
        )
        self.ide = ide
        self.upload_rules = upload_rules or UploadRules.default()
        self.token_ttl = token_ttl
        self.clock = clock
        self.bus = bus
        self.documents = documents
        self.catalog = CatalogCache()
        self.hashing = auth.Hashing.bounded()
        self.refusal_pause = (limits or RequestLimits()).refusal_pause_seconds

    def decode_json(self, data: str | bytes) -> object:
        """JSON nested deeper than Python's recursion limit is refused, not a crash (500)."""
        try:
            return super().decode_json(data)
        except RecursionError:
            raise RefusedRequest(
                ErrorCode.INVALID_INPUT,
                "the request body nests lists and objects too deeply to read; send flatter JSON",
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RefusedRequest as refused:
            await refused.response()(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        assert self.ide is not None  # strawberry asks only when graphql_ide is set
        return await self.ide(request)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        viewer, auth_error = None, None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and (scheme.lower() != "bearer" or not token.strip()):
            auth_error = auth.malformed_header()
        elif token:
            try:
                viewer = await auth.authenticate(token=token.strip(), now=self.clock())
            except DomainError as error:
                auth_error = error
        return Context(
            viewer=viewer,
            auth_error=auth_error,
            loaders=build_loaders(),
            catalog=await self.catalog.current(),
            token_ttl=self.token_ttl,
            clock=self.clock,
            bus=self.bus,
            documents=self.documents,
            # The object store is made in the server's lifespan and reaches requests as state.
            objects=getattr(request.state, "object_store", None),
            upload_rules=self.upload_rules,
            hashing=self.hashing,
            refusal_pause=self.refusal_pause,
            client=request.client.host if request.client is not None else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the bearer token comes in the connection_init payload,
        ``{"Authorization": "Bearer <token>"}`` (browsers cannot set websocket headers)."""
        params = context.connection_params or {}
        header = params.get("Authorization", params.get("authorization"))
        if context.viewer is None and header is not None:
            scheme, _, token = str(header).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                context.auth_error = auth.malformed_header()
            else:
                try:
                    context.viewer = await auth.authenticate(token=token.strip(), now=self.clock())
                    context.auth_error = None
                except DomainError as error:
                    context.auth_error = error
        return UNSET


def graphql_app(
    *,
    token_ttl: timedelta,
    clock: Callable[[], datetime],
    bus: EventBus | None = None,
    documents: DocumentEditor | None = None,
    upload_rules: UploadRules | None = None,
    observe_operation: ObserveOperation | None = None,
    ide: IdePage | None = None,
    limits: RequestLimits | None = None,
    introspection: bool = True,
) -> OneWindowGraphQL:
    return OneWindowGraphQL(
        token_ttl=token_ttl,
        clock=clock,
        bus=bus,
        documents=documents,
        upload_rules=upload_rules,
        observe_operation=observe_operation,
        ide=ide,
        limits=limits,
        introspection=introspection,
    )
