"""What the sync room needs to know about a document, injected by the server.

The sync room knows pycrdt and the y-websocket protocol, not the domain: the server gives it,
per connection, an ``Access`` (who, and whether they may write) and, per document, a
``DocumentPolicy`` that validates updates and turns the merged document into rows (and may,
as a ``PreparedPolicy``, read what it needs before a room opens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pycrdt import Doc


@dataclass(frozen=True)
class Access:
    """One connection's rights on one document."""

    user_id: int
    username: str
    role: str
    department_code: str | None
    writable: bool


class UpdateRefused(Exception):
    """An update breaks the document's layout or the writer's rights; nothing of it is kept."""


class DocumentPolicy(Protocol):
    def initial_update(self, doc_name: str) -> bytes | None:
        """The update that creates the document's containers, made once deterministically,
        or None when the document needs none. Stored as the first entry of the log."""
        ...

    def validate(self, *, doc_name: str, before: Doc, after: Doc, access: Access) -> None:
        """Raise UpdateRefused (with a reason a person can act on) if ``after`` — ``before``
        with the incoming update applied on a scratch copy — is not acceptable from
        ``access``."""
        ...

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        """Write the rows GraphQL reads from the merged document; idempotent."""
        ...


class PreparedPolicy(DocumentPolicy, Protocol):
    """A policy that must read something (e.g. a layout from the database) before a room of
    ``doc_name`` opens: the room awaits ``prepare`` each time it loads, before it asks for
    ``initial_update``. Optional: a policy without ``prepare`` is used as it is."""

    async def prepare(self, doc_name: str) -> None: ...
