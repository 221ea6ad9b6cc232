"""A Yjs browser-style client (yjs@13 + y-websocket on Node) syncs with OneWindow's /sync.

The server is the real endpoint (``server.sync_endpoint.sync_route``) under uvicorn with a
test policy for a plain map document; the Node side is ``tests/node/interop.js`` with the
packages pinned in ``tests/node/package-lock.json`` (installed by ``make node-deps``, which
``make test`` runs). Missing Node or packages fail the test: CI has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Map
from starlette.applications import Starlette

from approval.core.access import Viewer
from approval.core.auth import create_user, issue_token
from server.sync_endpoint import STATE_KEY, sync_route
from storage.enums import Role
from sync import protocol
from sync.policy import Access, DocumentPolicy
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.sync_support import TIMEOUT, PermissivePolicy, SyncClient, access, serving, set_key

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "interop.js"
NODE_TIMEOUT = 30.0  # the whole Node run, start-up included

PYTHON_BEFORE = "Python 先记录：疏散指示标志完好"  # set before the Node client connects
PYTHON_LIVE = "Python 后记录：消防栓水压正常 👍"  # set while it is connected
NODE_CHECK = "节点检查：消防通道畅通，灭火器在有效期内 ✅"  # what interop.js records
NODE_NAME = "检查员张三"  # interop.js's presence name
PYTHON_NAME = "检查员李四"


def now() -> datetime:
    return datetime.now(UTC)


def node_command() -> list[str]:
    """``node interop.js``, or a failure saying what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: the Yjs interop test needs Node.js 18+ (20 on CI); install "
            "it, then run `make node-deps` to install tests/node's packages"
        )
    for package in ("yjs", "y-websocket", "ws"):
        if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"tests/node/node_modules/{package} is missing: run `make node-deps` (it runs "
                "`npm ci --prefix tests/node`; `make test` does it for you)"
            )
    return [node, str(SCRIPT)]


async def access_for(viewer: Viewer, doc_name: str) -> Access | None:
    return access(viewer.username, user_id=viewer.user_id)


@asynccontextmanager
async def sync_app() -> AsyncIterator[tuple[str, SyncServer]]:
    """The /sync endpoint under uvicorn; every ``test/`` document has a plain map policy."""
    policy = PermissivePolicy()

    def policy_for(doc_name: str) -> DocumentPolicy | None:
        return policy if doc_name.startswith("test/") else None

    server = SyncServer(store=UpdateStore(), policy_for=policy_for)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {STATE_KEY: server}
        finally:
            await server.close()

    app = Starlette(routes=[sync_route(access_for=access_for, clock=now)], lifespan=lifespan)
    async with serving(app) as base:
        yield base, server


class NodeClient:
    """interop.js as a subprocess: its JSON events from stdout, "bye" on stdin."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    async def next_event(self, name: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(NODE_TIMEOUT):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise AssertionError(
                            f"interop.js ended before '{name}': {await self.failure()}"
                        )
                    event: dict[str, Any] = json.loads(line)
                    self.events.append(event)
                    if event.get("event") == name:
                        return event
        except TimeoutError:
            raise AssertionError(
                f"interop.js sent no '{name}' within {NODE_TIMEOUT:.0f}s; "
                f"events so far: {self.events}"
            ) from None

    async def failure(self) -> str:
        assert self.process.stderr is not None
        async with asyncio.timeout(TIMEOUT):
            code = await self.process.wait()
            stderr = (await self.process.stderr.read()).decode(errors="replace")
        return f"exit code {code}, stderr: {stderr.strip() or '(empty)'}"

    async def finish(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"bye\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(TIMEOUT):
            code = await self.process.wait()
        assert code == 0, await self.failure()


@asynccontextmanager
async def node_client(
    base: str, doc: str, token: str, expected: dict[str, str]
) -> AsyncIterator[NodeClient]:
    process = await asyncio.create_subprocess_exec(
        *node_command(),
        f"{base}/sync",
        doc,
        token,
        json.dumps(expected, ensure_ascii=False),
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(process)
    finally:
        if process.returncode is None:
            process.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TIMEOUT):
                    await process.wait()


@pytest.fixture(scope="module")
async def token(database: str) -> str:
    user = await create_user(
        username=f"writer-interop-{uuid.uuid4().hex[:8]}",
        password="test-password",
        display_name="互通测试",
        role=Role.AGENT,
    )
    issued, _ = await issue_token(user=user, now=now(), ttl=timedelta(hours=1))
    return issued


async def test_a_yjs_client_and_a_pycrdt_client_see_each_others_checks(token: str) -> None:
    node_command()  # fail early and clearly without Node or the packages
    doc = f"test/interop-{uuid.uuid4().hex[:12]}"
    async with sync_app() as (base, server):
        python = await SyncClient.open(base, doc, token=token, header=False)
        try:
            await python.until(python.synced.is_set, "the first sync step 2")
            first = await python.change(set_key("python-before", PYTHON_BEFORE))
            await python.until(lambda: first in python.acks, "the ack of the first check")
            await python.send_raw(
                protocol.awareness(
                    [
                        protocol.awareness_state(
                            python.doc.client_id, 1, {"user": {"name": PYTHON_NAME}}
                        )
                    ]
                )
            )
            expected = {
                "python-before": PYTHON_BEFORE,
                "python-live": PYTHON_LIVE,
                "presence": PYTHON_NAME,
            }
            async with node_client(base, doc, token, expected) as node:
                recorded = await node.next_event("recorded")
                assert recorded["value"] == NODE_CHECK
                live = await python.change(set_key("python-live", PYTHON_LIVE))
                await python.until(
                    lambda: python.map().get("node") == NODE_CHECK, "the Node check at pycrdt"
                )
                await python.until(lambda: live in python.acks, "the ack of the live check")
                await python.until(
                    lambda: any(
                        isinstance(state, dict) and state.get("user", {}).get("name") == NODE_NAME
                        for state in python.presence.values()
                    ),
                    "the Node client's presence (a Chinese name) at pycrdt",
                )
                done = await node.next_event("done")
                await node.finish()
            assert done["map"] == {
                "python-before": PYTHON_BEFORE,
                "python-live": PYTHON_LIVE,
                "node": NODE_CHECK,
            }
            assert PYTHON_NAME in done["presence"]
            assert python.errors == [] and python.denied == []
            room = server.rooms[doc]
            assert room.doc.get("m", type=Map).to_py() == done["map"]
            assert python.map() == done["map"]
        finally:
            await python.close()


IDLE_SCRIPT = NODE_DIR / "idle.js"
IDLE_SECONDS = 70  # more than twice y-websocket's 30 s without a message
TIME_WARP = 5  # the client's clock runs 5 times faster: its 70 s pass in 14 s


async def test_a_lone_idle_yjs_client_is_never_closed(token: str) -> None:
    """The unmodified y-websocket client alone on a document, idle for 70 s of its time: it
    renews its presence every 15 s and the server echoes it back, as the reference server does,
    so the client never finds its socket silent for 30 s and never reconnects.

    The client's time runs TIME_WARP times faster (idle.js: its clock and timers; the 30 s and
    15 s are constants of y-websocket and y-protocols). The server closes no socket for being
    quiet (uvicorn's keep-alive pings are answered by the ws library at once, whatever its
    clock): it sees the same messages, only sooner."""
    node, _ = node_command()
    doc = f"test/idle-{uuid.uuid4().hex[:8]}"
    async with sync_app() as (base, _):
        process = await asyncio.create_subprocess_exec(
            node,
            str(IDLE_SCRIPT),
            f"{base}/sync",
            doc,
            token,
            str(IDLE_SECONDS),
            str(TIME_WARP),
            cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(IDLE_SECONDS / TIME_WARP + NODE_TIMEOUT):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")
    event = json.loads(out.decode().strip().splitlines()[-1])
    assert event["seconds"] >= IDLE_SECONDS
    assert event["renewals"] >= IDLE_SECONDS // 15, event  # the warp drove the libraries' timers
    assert event["closes"] == 0 and event["connects"] == 1, event
