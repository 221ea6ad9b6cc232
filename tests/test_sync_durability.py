"""Durability: a server killed with SIGKILL mid-stream loses no acknowledged update, and the
document rebuilt from the log holds every change exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from pycrdt import Doc, Map, Text

from tests.cluster_support import fresh_database
from tests.sync_support import TIMEOUT, SyncClient, free_port, until

ROOT = Path(__file__).resolve().parent.parent
DOC = "test/durable"


async def process_database(database: str, tmp_path: Path) -> str:
    """The subprocess's own database: a fresh PostgreSQL database next to the tests' one
    (``database``) when the tests run on PostgreSQL, else a SQLite file."""
    if not database.startswith(("postgres://", "postgresql://")):
        return f"sqlite://{tmp_path / 'process.sqlite3'}"
    return await fresh_database(database, "process")


@contextlib.asynccontextmanager
async def server_process(
    url: str, token: str, log: Path, mode: str = "permissive", *extra: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    port = free_port()
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.as_main",
            "tests.sync_process",
            url,
            str(port),
            token,
            mode,
            *extra,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        # a start takes 2-5 s; on a loaded 2-core machine (CI, other suites) once over 30 s
        async with asyncio.timeout(90):
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"the server process exited; see {log}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield f"ws://127.0.0.1:{port}", process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(TIMEOUT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def record(doc: Doc, i: int) -> None:
    doc.get("m", type=Map)[f"k{i}"] = i
    text = doc.get("t", type=Text)
    text.insert(len(text), f"<{i}>")


def contents(doc: Doc) -> tuple[set[int], str]:
    keys = {int(key[1:]) for key in doc.get("m", type=Map)}
    return keys, str(doc.get("t", type=Text))


def assert_once(doc: Doc, expected: set[int]) -> None:
    keys, text = contents(doc)
    assert keys == expected
    assert all(text.count(f"<{i}>") == 1 for i in expected), "a text insert is duplicated"
    assert len(text) == sum(len(f"<{i}>") for i in expected)


async def test_acknowledged_updates_survive_sigkill(database: str, tmp_path: Path) -> None:
    url = await process_database(database, tmp_path)
    token = secrets.token_urlsafe(16)
    log = tmp_path / "server.log"
    total = 3000

    async with server_process(url, token, log) as (base, process):
        writer = await SyncClient.open(base, DOC, token=token)
        await writer.until(writer.synced.is_set, "the first sync")
        first = writer.sent + 1  # update numbers of the stream start here

        async def kill_midstream() -> None:
            await writer.until(lambda: len(writer.acks) >= 30, "30 acks")
            os.kill(process.pid, signal.SIGKILL)

        killer = asyncio.create_task(kill_midstream())
        for i in range(total):
            if writer.close_code is not None:
                break
            await writer.change(functools.partial(record, i=i))
            await asyncio.sleep(0)
        await killer
        await writer.until_closed()
        acked = {number - first for number in writer.acks if number >= first}
        sent = writer.sent - first + 1
    print(f"sent {sent} updates, {len(acked)} acknowledged before the kill")
    assert len(acked) >= 29
    assert len(acked) < total, "the kill came after the whole stream: make it longer"

    async with server_process(url, token, log) as (base, _):
        observer = await SyncClient.open(base, DOC, token=token)
        await observer.until(observer.synced.is_set, "the sync after the restart")
        keys, _ = contents(observer.doc)
        assert acked <= keys, f"acknowledged but lost: {sorted(acked - keys)[:10]}"
        assert keys <= set(range(sent))
        assert_once(observer.doc, keys)

        # the writer comes back with everything it made, offline-client style
        again = await SyncClient.open(base, DOC, token=token, doc=writer.doc)
        await again.until(again.synced.is_set, "the writer's resync")
        everything = set(range(sent))
        await observer.until(lambda: contents(observer.doc)[0] == everything, "all updates")
        assert_once(observer.doc, everything)
        await again.until(lambda: again.sent in again.acks, "the resync's ack")
        await again.close()
        await observer.close()

    async with server_process(url, token, log) as (base, _):
        fresh = await SyncClient.open(base, DOC, token=token)
        await fresh.until(fresh.synced.is_set, "the sync after a second restart")
        assert_once(fresh.doc, everything)
        await fresh.close()


async def test_the_default_app_refuses_documents_it_does_not_know(
    database: str, tmp_path: Path
) -> None:
    url = await process_database(database, tmp_path)
    token = secrets.token_urlsafe(16)
    async with server_process(url, token, tmp_path / "server.log", mode="default") as (base, _):
        client = await SyncClient.open(base, DOC, token=token)
        code, reason = await client.until_closed()
        assert code == 4404 and DOC in reason


async def test_rows_catch_up_after_a_sigkill_without_any_client(
    database: str, tmp_path: Path
) -> None:
    """Updates acknowledged and then killed before their (debounced) materialisation reach
    the rows at the next start-up, before any client opens the document."""
    url = await process_database(database, tmp_path)
    token = secrets.token_urlsafe(16)
    log, rows = tmp_path / "server.log", tmp_path / "rows.json"
    doc = f"test/rows-{secrets.token_hex(4)}"

    def written() -> dict[str, int]:
        if not rows.exists():
            return {}
        value: dict[str, int] = json.loads(rows.read_text()).get(doc, {})
        return value

    async with server_process(url, token, log, "projecting", str(rows)) as (base, process):
        writer = await SyncClient.open(base, doc, token=token)
        await writer.until(writer.synced.is_set, "the first sync")
        for i in range(5):
            await writer.change(lambda doc, i=i: doc.get("m", type=Map).__setitem__(f"k{i}", i))
        await writer.until(lambda: writer.sent in writer.acks, "the acknowledgements")
        os.kill(process.pid, signal.SIGKILL)
        await writer.until_closed()
    assert written() == {}, "materialised before the kill: the test proves nothing"

    async with server_process(url, token, log, "projecting", str(rows)):
        expected = {f"k{i}": i for i in range(5)}
        await until(lambda: written() == expected, "the rows caught up at start-up")
