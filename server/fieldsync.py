"""The field documents served for real: approval's field work plugged into the sync server.

``approval`` does not know ``sync`` and ``sync`` does not know the domain; this module adapts
one to the other:

- :class:`FieldPolicy` is the sync room's ``DocumentPolicy`` (and ``PreparedPolicy``) of the
  ``inspection/{id}`` and ``agency/{project id}`` documents, over
  :class:`~approval.fieldwork.policy.FieldDocuments`: ``LayoutError`` becomes ``UpdateRefused``;
- :meth:`FieldSync.access_for` turns :func:`~approval.fieldwork.inspections.document_access`'s
  ``FieldRights`` into the room's ``Access``;
- :class:`SyncEditor` is the :class:`~approval.fieldwork.policy.DocumentEditor` GraphQL writes
  through: the change goes through ``SyncServer.edit`` (validated, logged, applied,
  broadcast) and the document is materialised (``SyncServer.materialise``) before ``edit``
  returns, so the mutation reads the new rows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from pycrdt import Doc

from approval.core.access import Viewer
from approval.core.errors import DomainError, ErrorCode
from approval.fieldwork.documents import ChangeEvent, LayoutError, parse_doc_name
from approval.fieldwork.inspections import FieldRights, document_access, document_exists
from approval.fieldwork.policy import FieldAccess, FieldDocuments
from sync.policy import Access, DocumentPolicy, UpdateRefused
from sync.room import Refused
from sync.server import ServerClosing, SyncServer, UnknownDocument

log = logging.getLogger("onewindow.server.fieldsync")

# Refusals that are about the change itself (the caller must change it), not about the server.
REFUSED_CHANGE = frozenset({"invalid", "read_only", "too_large", "malformed_update"})


def to_access(rights: FieldRights) -> Access:
    return Access(
        user_id=rights.user_id,
        username=rights.username,
        role=rights.role,
        department_code=rights.department_code,
        writable=rights.writable,
    )


class FieldPolicy:
    """``FieldDocuments`` as the sync room's policy; one instance serves every field document."""

    def __init__(self, documents: FieldDocuments) -> None:
        self.documents = documents

    async def prepare(self, doc_name: str) -> None:
        await self.documents.prepare(doc_name)

    def initial_update(self, doc_name: str) -> bytes | None:
        return self.documents.initial_update(doc_name)

    def observed_roots(self, doc_name: str) -> tuple[str, ...]:
        return self.documents.observed_roots(doc_name)

    def validate(
        self,
        *,
        doc_name: str,
        before: Doc,
        after: Doc,
        access: FieldAccess,
        changes: Sequence[ChangeEvent] | None = None,
    ) -> None:
        try:
            self.documents.validate(
                doc_name=doc_name, before=before, after=after, access=access, changes=changes
            )
        except LayoutError as error:
            raise UpdateRefused(error.reason) from None

    async def admit(
        self, *, doc_name: str, changes: Sequence[ChangeEvent], access: FieldAccess
    ) -> None:
        try:
            await self.documents.admit(doc_name=doc_name, changes=changes, access=access)
        except LayoutError as error:
            raise UpdateRefused(error.reason) from None

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        """Rows from ``doc``; the sync room calls it in the document's turn
        (``sync.room.materialise_log``), so one materialisation of a document runs at a time
        among every process and never writes an older state over a newer one."""
        await self.documents.materialise(doc_name=doc_name, doc=doc)


class SyncEditor:
    """Changes from GraphQL applied to a field document through the running sync server.

    The server exists only while the app's lifespan runs: :meth:`attached` binds it for that
    time; an edit outside it answers ``SYNC_UNAVAILABLE``.
    """

    def __init__(self, policy: FieldPolicy) -> None:
        self.policy = policy
        self.server: SyncServer | None = None

    @asynccontextmanager
    async def attached(self, server: SyncServer) -> AsyncIterator[None]:
        self.server = server
        try:
            yield
        finally:
            self.server = None

    async def edit(
        self, doc_name: str, change: Callable[[Doc], None], *, rights: FieldRights
    ) -> None:
        server = self.server
        if server is None:
            raise DomainError(
                ErrorCode.SYNC_UNAVAILABLE,
                "the sync server is not running (the server is starting or stopping); "
                "try again in a moment",
            )
        try:
            await server.edit(doc_name, change, access=to_access(rights))
        except Refused as refusal:
            if refusal.code in REFUSED_CHANGE:
                raise LayoutError(refusal.reason) from None
            raise DomainError(ErrorCode.SYNC_UNAVAILABLE, refusal.reason) from None
        except UnknownDocument as error:
            raise DomainError(ErrorCode.NOT_FOUND, str(error)) from None
        except ServerClosing as error:
            raise DomainError(ErrorCode.SYNC_UNAVAILABLE, str(error)) from None
        await server.materialise(doc_name)


async def merged(server: SyncServer, doc_name: str) -> Doc:
    """The document as the server holds it: its open room's, or else rebuilt from the log."""
    doc: Doc = Doc()
    room = server.rooms.get(doc_name)
    if room is not None and not room.closing:
        doc.apply_update(room.encoded())
        return doc
    for update in await server.store.load(doc_name):
        doc.apply_update(update)
    return doc


class FieldSync:
    """The field documents' policy registry, access rule and editor, for ``create_app``."""

    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self.policy = FieldPolicy(FieldDocuments(clock=clock))
        self.editor = SyncEditor(self.policy)

    def policy_for(self, doc_name: str) -> DocumentPolicy | None:
        """The policy of ``inspection/{id}`` and ``agency/{project id}``; None for any other."""
        try:
            parse_doc_name(doc_name)
        except LayoutError:
            return None
        return self.policy

    async def access_for(self, viewer: Viewer, doc_name: str) -> Access | None:
        """The viewer's rights on ``doc_name``; None when the document exists and is not
        theirs, ``UnknownDocument`` when there is no such inspection or project."""
        rights = await document_access(viewer, doc_name)
        if rights is not None:
            return to_access(rights)
        if not await document_exists(doc_name):
            raise UnknownDocument(
                f"there is no document {doc_name!r}: no such inspection or project; check "
                "the number the API gave you"
            )
        return None


__all__ = ["FieldPolicy", "FieldSync", "SyncEditor", "merged", "to_access"]
