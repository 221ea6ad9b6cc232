"""A whole OneWindow server in its own process, for the durability tests.

``python -m tests.sync_process DATABASE_URL PORT TOKEN MODE [ROWS]`` migrates the database,
makes sure a writer with ``TOKEN`` exists, and serves ``server.app.create_app`` on
127.0.0.1:PORT. MODE ``permissive`` serves every ``test/...`` document with the tests'
permissive policy; ``default`` keeps the app's default registry (no document is known);
``projecting`` is ``permissive`` with its rows in the JSON file ROWS (``{doc: map m}``) and
materialisation 10 s after the last edit, so that a kill comes before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from pycrdt import Doc, Map

from approval.core.access import Viewer
from approval.core.auth import create_user
from server.app import create_app
from server.settings import Settings
from storage.db import close_database, migrate, open_database
from storage.enums import Role
from storage.models import AccessToken, User
from sync.policy import Access, DocumentPolicy
from tests.sync_support import PermissivePolicy, access

USERNAME = "writer-durable"


async def prepare(url: str, token: str) -> None:
    await migrate(url)
    await open_database(url)
    try:
        user = await User.get_or_none(username=USERNAME)
        if user is None:
            user = await create_user(
                username=USERNAME, password="test-password", display_name="w", role=Role.AGENT
            )
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        if not await AccessToken.exists(token_hash=token_hash):
            await AccessToken.create(
                token_hash=token_hash, user=user, expires_at=datetime.now(UTC) + timedelta(days=1)
            )
    finally:
        await close_database()


async def writers_only(viewer: Viewer, doc_name: str) -> Access | None:
    return access(viewer.username, user_id=viewer.user_id)


class ProjectingPolicy(PermissivePolicy):
    """The permissive policy whose rows are a JSON file: ``{doc name: the map m}``."""

    def __init__(self, rows: Path) -> None:
        super().__init__()
        self.rows = rows

    async def materialise(self, *, doc_name: str, doc: Doc) -> None:
        written = json.loads(self.rows.read_text()) if self.rows.exists() else {}
        written[doc_name] = doc.get("m", type=Map).to_py() or {}
        temporary = self.rows.with_suffix(".tmp")
        temporary.write_text(json.dumps(written))
        os.replace(temporary, self.rows)


def main() -> None:
    url, port, token, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    asyncio.run(prepare(url, token))
    projecting = mode == "projecting"
    policy = ProjectingPolicy(Path(sys.argv[5])) if projecting else PermissivePolicy()

    def permissive(doc_name: str) -> DocumentPolicy | None:
        return policy if doc_name.startswith("test/") else None

    settings = Settings(
        database_url=url,
        port=port,
        supervise_seconds=0,
        notify_seconds=0,
        log_level="warning",
        sync_materialise_ms=10_000 if projecting else 300,
    )
    app = create_app(
        settings,
        policy_for=permissive if mode in ("permissive", "projecting") else None,
        access_for=writers_only,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
