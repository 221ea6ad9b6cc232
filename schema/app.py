"""The schema and the ASGI app that serves it (GraphiQL on GET)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.tools import merge_types

from approval import auth
from approval.errors import DomainError
from schema.catalog_cache import CatalogCache
from schema.context import Context
from schema.errors import should_mask
from schema.loaders import build_loaders
from schema.mutation import Mutation
from schema.query import Query

# Each room of the API adds its own root fields here (one module per concept).
EXTRA_QUERIES: tuple[type, ...] = ()
EXTRA_MUTATIONS: tuple[type, ...] = ()

SDL_PATH = Path(__file__).with_name("schema.graphql")
MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 15


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=merge_types("Query", (Query, *EXTRA_QUERIES)),
        mutation=merge_types("Mutation", (Mutation, *EXTRA_MUTATIONS)),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaskErrors(should_mask_error=should_mask),
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"


class OneWindowGraphQL(GraphQL[Context, None]):
    def __init__(self, *, token_ttl: timedelta, clock: Callable[[], datetime]) -> None:
        super().__init__(build_schema(), graphql_ide="graphiql")
        self.token_ttl = token_ttl
        self.clock = clock
        self.catalog = CatalogCache()

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
        )


def graphql_app(*, token_ttl: timedelta, clock: Callable[[], datetime]) -> OneWindowGraphQL:
    return OneWindowGraphQL(token_ttl=token_ttl, clock=clock)
