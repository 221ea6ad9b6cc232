"""What an attack costs the others: /healthz under fragment bombs and wrong logins, and the
right password's login throughput under a brute force on another account.

Run from the repository root::

    .venv/bin/python bench/security_bench.py [--seconds 8] [--attackers 8]

A real server (``python -m server.cli serve``: uvicorn, one process, production argon2) over a
SQLite file prepared with ``onewindow setup`` (the demo users, password ``onewindow-demo``).
Everything is measured in one run, each figure against its own baseline taken just before:

1. **/healthz p99** polled by one client for ``--seconds``, alone, then while
   ``--attackers`` clients send, as fast as they are answered, fragment bombs at the deepest
   the token limit allows (half of them) and wrong passwords for ``fgw`` (the other half,
   each from addresses of its own through ``X-Forwarded-For``). Target: within 3x.
2. **Logins/s of the right password** (``window``, two clients, from their own address)
   for ``--seconds``, alone, then while the same number of attackers guess ``fgw``'s
   password from many addresses. Target: at least 0.8x.

The machine is shared (2 cores): the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOGIN = (
    "mutation($u: String!, $p: String!) "
    "{ login(username: $u, password: $p) { token errors { code } } }"
)
TOKEN_LIMIT = 2000
DEMO = "onewindow-demo"


def bomb() -> str:
    levels = (TOKEN_LIMIT - 20) // 10
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query Bomb { ...F0 }\n" + "\n".join(fragments)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"bench failed: onewindow {' '.join(args)}: {done.stderr[-2000:]}")


async def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            if server.poll() is not None:
                sys.exit("bench failed: the server exited while starting")
            try:
                if (await http.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    sys.exit("bench failed: the server did not answer /healthz within 30 s")


async def while_attacked(
    measure: Callable[[], Awaitable[list[float]]], attack: Callable[[], Awaitable[None]] | None
) -> list[float]:
    """Run ``measure``; with ``attack``, keep attackers running for as long."""
    if attack is None:
        return await measure()
    stop = asyncio.Event()

    async def attacker() -> None:
        while not stop.is_set():
            await attack()

    tasks = [asyncio.create_task(attacker())]
    try:
        return await measure()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--attackers", type=int, default=8)
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="security-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "ONEWINDOW_DATABASE_URL": f"sqlite://{folder / 'db.sqlite3'}",
        "ONEWINDOW_OBJECT_DIR": str(folder / "objects"),
        "ONEWINDOW_SUPERVISE_SECONDS": "0",
        "ONEWINDOW_NOTIFY_SECONDS": "0",
        "ONEWINDOW_LOG_LEVEL": "warning",
        "PORT": str(port),
    }
    print("preparing a database with the demo (onewindow setup) ...", flush=True)
    run(["setup"], env, ROOT)
    server = subprocess.Popen(  # noqa: ASYNC220 - the server runs beside the bench
        [sys.executable, "-m", "server.cli", "serve"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    addresses = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(1, 250), repeat=3))
    bomb_query = bomb()
    try:
        await wait_ready(base, server)
        limits = httpx.Limits(max_connections=options.attackers + 8)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

            async def health() -> list[float]:
                latencies: list[float] = []
                ends = time.perf_counter() + options.seconds
                while time.perf_counter() < ends:
                    started = time.perf_counter()
                    answer = await http.get("/healthz")
                    latencies.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                    await asyncio.sleep(0.01)
                return latencies

            async def one_bomb() -> None:
                answer = await http.post("/graphql", json={"query": bomb_query})
                assert "QUERY_TOO_COMPLEX" in answer.text, answer.text[:300]

            async def one_guess() -> None:
                await http.post(
                    "/graphql",
                    json={
                        "query": LOGIN,
                        "variables": {"u": "fgw", "p": "guess-" + str(time.time())},
                    },
                    headers={"X-Forwarded-For": next(addresses)},
                )

            async def mixed(worker: int) -> Callable[[], Awaitable[None]]:
                return one_bomb if worker % 2 == 0 else one_guess

            def many(attacks: list[Callable[[], Awaitable[None]]]) -> Callable[[], Awaitable[None]]:
                async def all_at_once() -> None:
                    await asyncio.gather(*(attack() for attack in attacks))

                return all_at_once

            async def logins() -> list[float]:
                done: list[float] = []
                ends = time.perf_counter() + options.seconds

                async def client(address: str) -> None:
                    while time.perf_counter() < ends:
                        answer = await http.post(
                            "/graphql",
                            json={
                                "query": LOGIN,
                                "variables": {"u": "window", "p": "onewindow-demo"},
                            },
                            headers={"X-Forwarded-For": address},
                        )
                        assert answer.json()["data"]["login"]["token"], answer.text
                        done.append(time.perf_counter())

                await asyncio.gather(client("10.250.0.1"), client("10.250.0.2"))
                return done

            await health()  # warm
            mix = many([await mixed(w) for w in range(options.attackers)])
            guesses = many([one_guess] * options.attackers)

            quiet = await while_attacked(health, None)
            loud = await while_attacked(health, mix)
            p99_quiet = statistics.quantiles(quiet, n=100)[98]
            p99_loud = statistics.quantiles(loud, n=100)[98]
            calm_logins = len(await while_attacked(logins, None)) / options.seconds
            attacked_logins = len(await while_attacked(logins, guesses)) / options.seconds
    finally:
        server.terminate()
        server.wait(timeout=30)
    load = os.getloadavg()
    health_ratio = p99_loud / p99_quiet
    login_ratio = attacked_logins / calm_logins
    cores = os.cpu_count()
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {cores} cores")
    print(
        f"/healthz p99: {p99_quiet * 1000:.1f} ms alone, {p99_loud * 1000:.1f} ms with "
        f"{options.attackers} attackers (bombs and wrong logins): {health_ratio:.2f}x "
        f"(target <= 3x) {'ok' if health_ratio <= 3 else 'MISSED'}"
    )
    print(
        f"right-password logins: {calm_logins:.1f}/s alone, {attacked_logins:.1f}/s under a "
        f"brute force on another account: {login_ratio:.2f}x (target >= 0.8x) "
        f"{'ok' if login_ratio >= 0.8 else 'MISSED'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
