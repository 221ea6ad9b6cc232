"""What the sync room needs to know about a document, injected by the server.

The sync room knows pycrdt and the y-websocket protocol, not the domain: the server gives it,
per connection, an ``Access`` (who, and whether they may write) and, per document, a
``DocumentPolicy`` that validates updates and turns the merged document into rows (and may,
as a ``PreparedPolicy``, read what it needs before a room opens, as an ``ObservingPolicy``,
judge an update by the changes the room collects while applying it, and, as a
``GroupPolicy``, let the room validate a writer's group of updates at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


class ObservingPolicy(DocumentPolicy, Protocol):
    """A policy that judges an update by what it changed, not by re-reading the document.

    ``observed_roots(doc_name)`` names the root maps of the document; while the room applies an
    update to its scratch copy it collects their pycrdt deep events (path, keys or delta) and
    passes them to ``validate`` as ``changes`` (a list, empty when the update changed nothing
    in them), so that validation costs what the update changed. Such a policy is validated
    update by update (never by groups). Optional."""

    def observed_roots(self, doc_name: str) -> tuple[str, ...]: ...


class AdmittingPolicy(ObservingPolicy, Protocol):
    """An observing policy that must also look something up (e.g. in the database) before an
    update is kept: once ``validate`` passed, the room awaits ``admit`` with the update's
    ``changes``; ``UpdateRefused`` refuses it as ``validate`` would. Optional."""

    async def admit(self, *, doc_name: str, changes: list[Any], access: Access) -> None: ...


class GroupPolicy(DocumentPolicy, Protocol):
    """A policy for which one writer's group of updates may be judged as a whole.

    The room normally validates each update on its own, against the document with the group's
    earlier accepted updates. With ``validates_groups = True`` it first applies the whole group
    to its scratch copy (in one pycrdt transaction) and calls ``validate`` once, with ``before``
    the document without the group and ``after`` the document with all of it. If that passes,
    every update of the group is kept; if it refuses (or anything else goes wrong: an update
    that cannot be read, one that brings nothing new), the group is validated update by update
    as usual, so that only the updates that break the rules are refused.

    Only a policy for which "the end state of a run of updates is acceptable" implies "each
    update of the run is" may say so: e.g. one that accepts every update, or one whose rule
    depends only on the writer and on ``after``, and holds for every prefix of a run when it
    holds for the whole run. A rule about history (such as "a signed conclusion cannot change":
    a group could sign and change it) must not. Optional: a policy without the attribute is
    validated update by update."""

    validates_groups: bool
