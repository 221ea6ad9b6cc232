"""What the in-process benches share: printing as they go, the app served by uvicorn inside
the bench's own event loop on a free port, and the size of a shipped file once gzipped."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp


def say(line: str = "") -> None:
    print(line, flush=True)


def gzipped_kb(path: Path) -> float:
    """The size of ``path`` as served with gzip level 6, in KiB."""
    return len(gzip.compress(path.read_bytes(), compresslevel=6)) / 1024


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the bench owns the signals
        pass


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """Serves ``app`` (lifespan included) on a free local port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
