"""What the benches share: printing as they go, the app served by uvicorn inside the bench's own
event loop on a free port, the size of a shipped file once gzipped, servers in subprocesses
(started until they listen, their memory and CPU read from /proc), and an inspector's offline
edit of an inspection document (``sync_bench``'s workloads and its soak, ``bench/soak.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import os
import pstats
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pycrdt import Doc, Map
from starlette.types import ASGIApp

from approval.fieldwork.documents import INSPECTION_ROOT

SERVER_START_TIMEOUT = 30.0


class BenchError(Exception):
    """The bench cannot go on; the message says what went wrong and what to do."""


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


# --- servers in subprocesses ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    process: asyncio.subprocess.Process
    log_path: Path
    port: int

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] or "(empty)"
        except OSError as error:
            return f"(cannot read {self.log_path}: {error})"


@asynccontextmanager
async def listening_process(
    name: str,
    argv: list[str],
    log_path: Path,
    port: int,
    env: Mapping[str, str],
    cwd: Path | None = None,
    *,
    stop_signal: signal.Signals = signal.SIGINT,
) -> AsyncIterator[Process]:
    """``argv`` in a subprocess (``env`` added to this process's environment, in ``cwd``)
    until it listens on ``port``; sent ``stop_signal`` at the end (SIGINT: uvicorn shuts down
    and cProfile dumps; SIGTERM: uvicorn shuts down and the process dies without the
    KeyboardInterrupt its asyncio.run would raise)."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
        )
    running = Process(process, log_path, port)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.returncode is not None:
                raise BenchError(
                    f"{name} exited with code {process.returncode} before listening; "
                    f"its log:\n{running.log_tail()}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"{name} did not listen on 127.0.0.1:{port} within "
                        f"{SERVER_START_TIMEOUT:.0f}s; its log:\n{running.log_tail()}"
                    ) from None
                await asyncio.sleep(0.1)
        try:
            yield running
        except BenchError as error:
            raise BenchError(f"{error}\n{name}'s log ends:\n{running.log_tail()}") from None
    finally:
        if process.returncode is None:
            process.send_signal(stop_signal)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


def process_memory_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process from /proc, 0 where unknown."""
    values = {"VmHWM:": 0, "VmRSS:": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0] + ":"
            if key in values:
                values[key] = int(line.split()[1])
    return values["VmHWM:"], values["VmRSS:"]


def peak_rss_kib(pid: int) -> int | None:
    """The peak resident set (VmHWM) of a process, from /proc; None where there is no /proc."""
    return process_memory_kib(pid)[0] or None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used, from /proc; None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_profile(path: Path, top: int) -> None:
    if not path.exists():
        print(f"(no profile: the server did not write {path})")
        return
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        print(f"\ncProfile of the server, top {top} by {order}:")
        print(out.getvalue().split("\n", 6)[-1].rstrip())


# --- an inspector's edits ---------------------------------------------------------------------

NOTES = ("墙体无裂缝，抹灰平整", "疏散指示标志完好，应急照明正常", "消火栓水压 0.35 MPa，合格")


def inspection_edit(
    doc: Doc, code: str, index: int, number: int, *, checks: Sequence[str], salt: int = 0
) -> None:
    """One realistic offline edit of an inspector of ``code`` (whose section has ``checks``): a
    result with a note, a measurement, a photo id, a rectification or its completion (Chinese
    text throughout). Rectification UUIDs come from ``salt``, ``index`` and ``number``: a run
    whose rows share a database with another's gives a salt of its own."""
    section = doc.get(INSPECTION_ROOT, type=Map)[code]
    check = section["checks"][checks[(index + number) % len(checks)]]
    kind = number % 5
    if kind == 0:
        check["result"] = ("pass", "fail", "rectify", "not_applicable")[number % 4]
        check["note"] = f"平板{index}第{number}条：{NOTES[number % len(NOTES)]}"
        check["by"] = f"inspector-{code}"
        check["at"] = f"2026-03-04T{9 + number % 8:02d}:{number % 60:02d}:00+08:00"
    elif kind in (1, 2):
        check["measured"][f"测点{number % 40}"] = round(0.1 * number + index, 2)
    elif kind == 3:
        photos = check["photos"]
        if len(photos) < 90:
            photos.append(f"sha256:{index:04d}{number:06d}" + "0" * 54)
    else:
        rectifications = section["rectifications"]
        key = str(uuid.UUID(int=(salt << 64) + (index << 32) + number // 10))
        if key in rectifications:
            rectifications[key]["done"] = True
        else:
            rectifications[key] = Map(
                {"description": f"第{number}项整改：补齐灭火器", "due": "2026-03-20", "done": False}
            )
