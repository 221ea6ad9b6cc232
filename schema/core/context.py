"""What every resolver gets: who is asking, the per-request loaders, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from graphql import GraphQLError
from strawberry.types import Info as StrawberryInfo

from approval.core.access import Viewer
from approval.core.auth import Hashing
from approval.core.bus import EventBus
from approval.core.errors import DomainError, ErrorCode
from approval.fieldwork.policy import DocumentEditor
from approval.files.uploads import UploadRules
from schema.core.catalog_cache import CatalogSnapshot
from schema.core.errors import as_graphql_error
from schema.core.loaders import Loaders
from storage.objects import ObjectStore

NO_TOKEN = DomainError(
    ErrorCode.UNAUTHENTICATED,
    "no bearer token was sent; log in with the login mutation and send "
    "'Authorization: Bearer <token>'",
)


@dataclass
class Context:
    viewer: Viewer | None
    auth_error: DomainError | None
    loaders: Loaders
    catalog: CatalogSnapshot
    token_ttl: timedelta
    clock: Callable[[], datetime]
    # The live supervision events (subscriptions); None where the app was built without one.
    bus: EventBus | None = None
    # graphql-transport-ws: the connection_init payload (strawberry sets it on connect).
    connection_params: dict[str, Any] | None = None
    # Applies GraphQL changes to field documents (the sync server); None where sync is off.
    documents: DocumentEditor | None = None
    # Photos and material files (made in the server's lifespan); None: no files served.
    objects: ObjectStore | None = None
    upload_rules: UploadRules = field(default_factory=UploadRules.default)
    # Password hashing off the event loop with bounded concurrency (shared by the app).
    hashing: Hashing = field(default_factory=Hashing.bounded)
    # The client's address (after the trusted proxies' X-Forwarded-For), for login throttling.
    client: str | None = None
    # Seconds a throttled login's answer is held (schema.core.limits.RequestLimits).
    refusal_pause: float = 0.0
    # Download URLs handed out by this request (audited once at its end: schema.files.stored).
    downloads: list[str] = field(default_factory=list)

    def require_viewer(self) -> Viewer:
        """The viewer, or the DomainError that says why there is none (for mutations)."""
        if self.viewer is None:
            raise self.auth_error or NO_TOKEN
        return self.viewer

    def query_viewer(self) -> Viewer:
        """The viewer, or a GraphQL error with its code (for queries)."""
        try:
            return self.require_viewer()
        except DomainError as error:
            raise as_graphql_error(error) from None

    def now(self) -> datetime:
        return self.clock()


Info = StrawberryInfo[Context, None]


def query_error(error: DomainError) -> GraphQLError:
    return as_graphql_error(error)
