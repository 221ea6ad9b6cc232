"""No bearer token is read from a URL: the sync websocket takes it in a header or a
subprotocol only (the printable pages take tickets: tests/test_notice.py)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.sync_support import TIMEOUT
from tests.test_sync_server import Start, start, tokens

__all__ = ["start", "tokens"]  # the sync server's fixtures, used here as they are


async def test_the_sync_websocket_ignores_a_token_in_the_url(start: Start) -> None:
    env = await start()
    url = f"{env.base}/sync/{env.doc}?token={env.tokens['writer']}"
    async with connect(url, open_timeout=TIMEOUT) as ws:

        async def until_closed() -> None:
            while True:  # with the token read from the URL, sync messages came instead
                await ws.recv()

        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(until_closed(), TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
