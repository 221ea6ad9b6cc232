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

The attackers run in a process of their own at a lower priority (``--attacker-nice``, 10 by
default), as an attack from other machines would: on a 2-core machine the attacking clients'
own work (building, sending and reading thousands of requests) would otherwise take the
poller's and the server's CPU, and the figure would measure the bench, not the server. The
requests the attackers had answered per second are printed, so the attack's size is seen.
``--attacker-nice 0`` runs them at the server's priority.

``--attack bombs`` or ``--attack logins`` runs only that half of the /healthz attack (to see
which costs what); ``--profile-server PATH`` runs the server under py-spy (a dev tool, not a
dependency: ``pip install py-spy``) and writes its samples, collapsed, to PATH.

The machine is shared (2 cores): the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.support import free_port  # noqa: E402

LOGIN = (
    "mutation($u: String!, $p: String!) "
    "{ login(username: $u, password: $p) { token errors { code } } }"
)
TOKEN_LIMIT = 2000
DEMO = "onewindow-demo"
ATTACKS = ("mix", "bombs", "logins")


def bomb() -> str:
    levels = (TOKEN_LIMIT - 20) // 10
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query Bomb { ...F0 }\n" + "\n".join(fragments)


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


def addresses(first: int) -> Iterator[str]:
    """Client addresses never used before in this run (``first`` picks a block of its own)."""
    for b, c, d in itertools.product(range(first, first + 20), range(1, 250), range(1, 250)):
        yield f"10.{b}.{c}.{d}"


async def attack(base: str, attackers: int, kind: str, first_address: int) -> None:
    """The attacker process: ``attackers`` clients, as fast as they are answered, until
    SIGTERM; then one JSON line with how many requests were answered in how many seconds."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    bomb_query = bomb()
    fresh = addresses(first_address)
    answered = 0
    limits = httpx.Limits(max_connections=attackers)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def one_bomb() -> None:
            answer = await http.post("/graphql", json={"query": bomb_query})
            assert "QUERY_TOO_COMPLEX" in answer.text, answer.text[:300]

        async def one_guess() -> None:
            answer = await http.post(
                "/graphql",
                json={"query": LOGIN, "variables": {"u": "fgw", "p": f"guess-{time.time()}"}},
                headers={"X-Forwarded-For": next(fresh)},
            )
            assert answer.json()["data"]["login"]["token"] is None, answer.text[:300]

        async def attacker(worker: int) -> None:
            nonlocal answered
            bombs = kind == "bombs" or (kind == "mix" and worker % 2 == 0)
            while not stop.is_set():
                await (one_bomb() if bombs else one_guess())
                answered += 1
                if answered == attackers:  # every client is under way: the phase may start
                    print("ready", flush=True)

        started = time.perf_counter()
        tasks = [asyncio.create_task(attacker(w)) for w in range(attackers)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        seconds = time.perf_counter() - started
    print(json.dumps({"answered": answered, "seconds": seconds}), flush=True)


class Attack:
    """The attacker process for one phase (``kind`` None: no attack), at lower priority."""

    blocks = itertools.count(0, 20)  # each phase's clients come from addresses of their own

    def __init__(self, base: str, attackers: int, kind: str | None, nice: int) -> None:
        self.command = [
            sys.executable, str(Path(__file__).resolve()), "--as-attacker", base,
            "--attackers", str(attackers), "--attack", kind or "", "--first-address",
            str(next(self.blocks) % 200 + 1),
        ]  # fmt: skip
        self.kind = kind
        self.nice = nice
        self.process: subprocess.Popen[str] | None = None
        self.rate = 0.0

    async def __aenter__(self) -> Attack:
        if self.kind is not None:
            nice = self.nice
            self.process = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the bench
                self.command, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(nice)
            )
            assert self.process.stdout is not None
            ready = await asyncio.to_thread(self.process.stdout.readline)  # started, attacking
            if ready.strip() != "ready":
                sys.exit(f"bench failed: the attacker process did not start ({ready!r})")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(self.process.communicate, timeout=60)
        if self.process.returncode != 0 or not out.strip():
            sys.exit(f"bench failed: the attacker process ended with {self.process.returncode}")
        report = json.loads(out.strip().splitlines()[-1])
        self.rate = report["answered"] / report["seconds"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--attack", choices=ATTACKS, default="mix")
    parser.add_argument("--attacker-nice", type=int, default=10)
    parser.add_argument("--profile-server", type=Path, default=None)
    parser.add_argument("--as-attacker", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--first-address", type=int, default=1, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.as_attacker:
        await attack(options.as_attacker, options.attackers, options.attack, options.first_address)
        return

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
    profiler: list[str] = []
    if options.profile_server is not None:
        profiler = ["py-spy", "record", "--threads", "--format", "raw", "-r", "200", "-o"]
        profiler += [str(options.profile_server), "--"]
    server = subprocess.Popen(  # noqa: ASYNC220 - the server runs beside the bench
        [*profiler, sys.executable, "-m", "server.cli", "serve"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def attacked(kind: str | None) -> Attack:
        return Attack(base, options.attackers, kind, options.attacker_nice)

    try:
        await wait_ready(base, server)
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

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

            async def logins() -> list[float]:
                done: list[float] = []
                ends = time.perf_counter() + options.seconds

                async def client(address: str) -> None:
                    while time.perf_counter() < ends:
                        answer = await http.post(
                            "/graphql",
                            json={"query": LOGIN, "variables": {"u": "window", "p": DEMO}},
                            headers={"X-Forwarded-For": address},
                        )
                        assert answer.json()["data"]["login"]["token"], answer.text
                        done.append(time.perf_counter())

                await asyncio.gather(client("10.250.0.1"), client("10.250.0.2"))
                return done

            await health()  # warm
            async with attacked(None):
                quiet = await health()
            async with attacked(options.attack) as health_attack:
                loud = await health()
            p99_quiet = statistics.quantiles(quiet, n=100)[98]
            p99_loud = statistics.quantiles(loud, n=100)[98]
            async with attacked(None):
                calm_logins = len(await logins()) / options.seconds
            async with attacked("logins") as brute_force:
                attacked_logins = len(await logins()) / options.seconds
    finally:
        server.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
        server.wait(timeout=30)
    load = os.getloadavg()
    health_ratio = p99_loud / p99_quiet
    login_ratio = attacked_logins / calm_logins
    cores = os.cpu_count()
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {cores} cores")
    print(
        f"attackers: {options.attackers} clients in their own process at nice "
        f"{options.attacker_nice}; answered {health_attack.rate:.1f} requests/s "
        f"({options.attack}) and {brute_force.rate:.1f} wrong logins/s"
    )
    print(
        f"/healthz p99: {p99_quiet * 1000:.1f} ms alone, {p99_loud * 1000:.1f} ms with "
        f"{options.attackers} attackers ({options.attack}): {health_ratio:.2f}x "
        f"(target <= 3x) {'ok' if health_ratio <= 3 else 'MISSED'}"
    )
    print(
        f"right-password logins: {calm_logins:.1f}/s alone, {attacked_logins:.1f}/s under a "
        f"brute force on another account: {login_ratio:.2f}x (target >= 0.8x) "
        f"{'ok' if login_ratio >= 0.8 else 'MISSED'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
