"""What the upload tickets cost: photos through an S3 server, a large material through the
local store.

Run from the repository root::

    .venv/bin/python bench/upload_bench.py [--photos 200] [--size-mb 3] [--concurrency 8]
                                           [--material-mb 100] [--only photos|material]
                                           [--profile [threads|gil]] [--quick]

1. **Photos over the S3 protocol.** An S3 server (moto, in a process of its own) and the
   OneWindow server (``python -m server.cli serve``, a real uvicorn subprocess with
   ``ONEWINDOW_MINIO_ENDPOINT`` pointing at moto) over a SQLite file prepared with
   ``onewindow setup``, a site check of the demo project with the demo ``inspector``
   assigned. N distinct noisy JPEGs (EXIF time and GPS, ~3 MiB each) go, at a fixed
   concurrency, through the ticket flow (requestUpload, PUT to the presigned URL,
   confirmUpload; the client hashes each photo inside the timing, as the SDK hashes each
   body for its signature over http) and, as the baseline, through the ``minio`` SDK's plain
   ``put_object`` to the same S3 server under other keys (threads): put_object, ticket flow,
   put_object again; the ratio is taken against the better put_object pass. CPU seconds of
   the server, the S3 server and the bench itself are read from /proc for each pass.
2. **A large material through the local store.** A second server with the local object
   store (``ONEWINDOW_OBJECT_DIR``); a PDF-like file of ``--material-mb`` MiB is streamed from
   disk to the server's own upload URL and confirmed; the server's resident memory before,
   at its peak and after says whether the bytes were streamed (target: peak at most 8 MiB
   over idle).

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.support import BenchError, free_port, say  # noqa: E402

SCRIPT = Path(__file__).resolve()
MiB = 1 << 20
TARGET_RATIO = 0.9
TARGET_MEMORY_MIB = 8.0
START_TIMEOUT = 60.0
ACCESS_KEY = "bench-access"
SECRET_KEY = "bench-secret-key"
REGION = "us-east-1"
BASELINE_PREFIX = "bench-put-object"
INSPECTION_DEPARTMENT = "zjj"  # the demo ``inspector`` works for 住建局
PROGRESS_EVERY = 25
# A noisy 3264x2448 JPEG (quality 90, blend of the tests' photo_support noise) is ~0.37 byte
# per pixel: the picture is sized from the wanted file size with this.
BYTES_PER_PIXEL = 0.3704
TAKEN = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)

REQUEST = """
mutation($input: RequestUploadInput!) {
  requestUpload(input: $input) {
    upload { id status }
    ticket { url method headers { name value } }
    errors { code message }
  }
}"""

CONFIRM = """
mutation($id: ID!) {
  confirmUpload(uploadId: $id) {
    upload { id status }
    errors { code message }
  }
}"""


def mutation_answer(response: httpx.Response, field_name: str) -> dict[str, Any]:
    """The payload of one GraphQL mutation, or BenchError saying what went wrong."""
    if response.status_code != 200:
        raise BenchError(f"{field_name}: HTTP {response.status_code}: {response.text[:500]}")
    body = response.json()
    if body.get("errors"):
        raise BenchError(f"{field_name}: {body['errors']}")
    answer: dict[str, Any] = body["data"][field_name]
    if answer["errors"]:
        raise BenchError(f"{field_name} refused: {answer['errors']}")
    return answer


def require_modules() -> None:
    """A clear message for what is missing, before anything starts."""
    needed = {
        "httpx": "httpx",
        "PIL": "Pillow",
        "minio": "minio",
        "moto": "moto[server]",
        "werkzeug": "moto[server]",
        "flask": "moto[server]",
        "uvicorn": "uvicorn",
    }
    missing = []
    for module, package in needed.items():
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise BenchError(
            f"missing Python packages: {', '.join(sorted(set(missing)))}; install them into the "
            f"venv (.venv/bin/pip install {' '.join(sorted(set(missing)))}) and run "
            "the bench with .venv/bin/python"
        )
    try:
        __import__("server.cli")
    except ImportError as error:
        raise BenchError(
            f"cannot import the OneWindow server ({error}); run from the repository root with "
            ".venv/bin/python (make venv installs the project)"
        ) from None


# --- processes ---------------------------------------------------------------------------


def proc_status_kib(pid: int, name: str) -> int | None:
    """A ``/proc/<pid>/status`` field in KiB (VmRSS, VmHWM); None without /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: ``5`` to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far; NaN without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat; (0, 0) without."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return total - values[3] - values[4], total


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


@dataclass
class Child:
    """A subprocess of the bench with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] or "(empty)"
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self.process.returncode}; its log ends:\n"
                f"{self.log_tail()}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class S3:
    """The S3 server of part 1: moto started here, or a real MinIO given with ``--s3``."""

    name: str
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    bucket: str
    secure: bool = False
    pid: int | None = None  # ours to measure (moto); None for a server elsewhere

    def server_settings(self) -> dict[str, str]:
        return {
            "ONEWINDOW_MINIO_ENDPOINT": self.endpoint,
            "ONEWINDOW_MINIO_ACCESS_KEY": self.access_key,
            "ONEWINDOW_MINIO_SECRET_KEY": self.secret_key,
            "ONEWINDOW_MINIO_BUCKET": self.bucket,
            "ONEWINDOW_MINIO_REGION": REGION,
            "ONEWINDOW_MINIO_SECURE": "1" if self.secure else "0",
        }


@contextlib.contextmanager
def child(
    name: str, argv: list[str], *, env: dict[str, str], log_path: Path, base_url: str, probe: str
) -> Iterator[Child]:
    """Start ``argv``, wait until ``base_url + probe`` answers, stop it on the way out."""
    import httpx

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = Child(name=name, process=process, log_path=log_path, base_url=base_url)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=base_url, timeout=5) as probe_client:
            while True:
                running.check_alive()
                try:
                    probe_client.get(probe)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise BenchError(
                            f"{name} did not answer on {base_url} within {START_TIMEOUT:.0f}s; "
                            f"its log ends:\n{running.log_tail()}"
                        ) from None
                    time.sleep(0.1)
        yield running
    except BenchError as error:
        if "log ends:" in str(error):
            raise
        raise BenchError(f"{error}\n{name}'s log ends:\n{running.log_tail(1500)}") from None
    finally:
        running.stop()


def serve_moto(port: int) -> None:
    """The S3 server subprocess: moto's threaded werkzeug server until terminated."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto S3 on 127.0.0.1:{port}", flush=True)
    threading.Event().wait()


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without any ONEWINDOW_* setting of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.pop("PORT", None)
    env.pop("HOST", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def onewindow_server(
    name: str, workdir: Path, database_url: str, **settings: str
) -> contextlib.AbstractContextManager[Child]:
    port = free_port()
    env = clean_env(
        ONEWINDOW_DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        ONEWINDOW_SUPERVISE_SECONDS="0",
        ONEWINDOW_NOTIFY_SECONDS="0",
        ONEWINDOW_LOG_LEVEL="warning",
        **settings,
    )
    return child(
        name,
        [sys.executable, "-m", "server.cli", "serve"],
        env=env,
        log_path=workdir / f"{name.replace(' ', '-')}.log",
        base_url=f"http://127.0.0.1:{port}",
        probe="/healthz",
    )


# --- data ------------------------------------------------------------------------------------


def photo_size(size_mb: float) -> tuple[int, int]:
    """4:3 dimensions (multiples of 16) of a noisy JPEG of about ``size_mb`` MiB."""
    pixels = size_mb * MiB / BYTES_PER_PIXEL
    width = int(math.sqrt(pixels * 4 / 3)) // 16 * 16
    return max(width, 64), max(width * 3 // 4 // 16 * 16, 48)


def make_photo(index: int, width: int, height: int) -> bytes:
    """Photo ``index``: noise of its own (like tests/photo_support.make_jpeg(noise=True)) with
    EXIF capture time, time offset and a GPS position near 德州."""
    from PIL import ExifTags, Image
    from PIL.TiffImagePlugin import IFDRational

    rng = random.Random(f"onewindow-upload-bench-{index}")
    small = (width // 2, height // 2)
    grain = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    grain = grain.resize((width, height), Image.Resampling.BILINEAR)
    base = (rng.randrange(60, 200), rng.randrange(60, 200), rng.randrange(60, 200))
    image = Image.blend(Image.new("RGB", (width, height), base), grain, 0.35)

    def dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
        whole = int(degrees)
        minutes = int((degrees - whole) * 60)
        seconds = round(((degrees - whole) * 60 - minutes) * 60 * 10000)
        return IFDRational(whole, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)

    exif = Image.Exif()
    exif[ExifTags.IFD.Exif] = {
        ExifTags.Base.DateTimeOriginal: (TAKEN + timedelta(minutes=index)).strftime(
            "%Y:%m:%d %H:%M:%S"
        ),
        ExifTags.Base.OffsetTimeOriginal: "+08:00",
    }
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: dms(37.4355 + rng.random() / 100),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: dms(116.3575 + rng.random() / 100),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _make_photo_job(job: tuple[int, int, int]) -> bytes:
    return make_photo(*job)


def make_photos(count: int, size_mb: float) -> list[bytes]:
    """``count`` distinct photos, made by a process per core, with a progress line."""
    width, height = photo_size(size_mb)
    say(f"making {count} distinct {width}x{height} JPEGs (~{size_mb:g} MiB each) ...")
    started = time.perf_counter()
    photos: list[bytes] = []
    jobs = [(i, width, height) for i in range(count)]
    with ProcessPoolExecutor(max_workers=max(os.cpu_count() or 1, 1)) as pool:
        for photo in pool.map(_make_photo_job, jobs, chunksize=4):
            photos.append(photo)
            if len(photos) % 50 == 0 and len(photos) < count:
                say(f"  {len(photos)}/{count} photos made")
    if len({hashlib.sha256(p).digest() for p in photos}) != count:
        raise BenchError("the generated photos are not all distinct")
    sizes = [len(p) for p in photos]
    say(
        f"made {count} photos in {time.perf_counter() - started:.1f}s: "
        f"{statistics.mean(sizes) / MiB:.2f} MiB on average "
        f"({min(sizes) / MiB:.2f}-{max(sizes) / MiB:.2f}), {sum(sizes) / MiB:.0f} MiB in all"
    )
    return photos


def make_material(path: Path, size_mb: float) -> tuple[str, int]:
    """A PDF-like file of ``size_mb`` MiB on disk (header, random body, trailer): its SHA-256
    and size. It is written and hashed in 1 MiB pieces, never held whole."""
    size = int(size_mb * MiB)
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    if size < len(head) + len(tail):
        raise BenchError("--material-mb is too small for a PDF")
    rng = random.Random(f"onewindow-upload-bench-material-{size}")
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for piece in _material_pieces(size, head, tail, rng):
            digest.update(piece)
            file.write(piece)
    return digest.hexdigest(), size


def _material_pieces(size: int, head: bytes, tail: bytes, rng: random.Random) -> Iterator[bytes]:
    yield head
    body = size - len(head) - len(tail)
    while body > 0:
        piece = rng.randbytes(min(MiB, body))
        body -= len(piece)
        yield piece
    yield tail


def file_chunks(path: Path, chunk: int = MiB) -> Iterator[bytes]:
    with path.open("rb") as file:
        while piece := file.read(chunk):
            yield piece


# --- database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    inspector_token: str
    clerk_token: str
    inspection_gid: str
    check_codes: list[str]
    project_gid: str
    material_type: str
    project_code: str


def global_id(type_name: str, row_id: int) -> str:
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()


def setup_database(database_url: str, workdir: Path) -> Prepared:
    """``onewindow setup`` (migrate, catalog, demo data) in a subprocess, then a site check of
    a demo project by 住建局 with the demo inspector assigned, and tokens."""
    log = workdir / "setup.log"
    say("onewindow setup (migrate, load-catalog, seed-demo) ...")
    started = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", "setup"],
            cwd=ROOT,
            env=clean_env(ONEWINDOW_DATABASE_URL=database_url),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise BenchError(
            f"`onewindow setup` failed with code {done.returncode}; its output ends:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    prepared = asyncio.run(_prepare(database_url))
    say(
        f"database ready in {time.perf_counter() - started:.1f}s: site check of "
        f"{prepared.project_code} by {INSPECTION_DEPARTMENT}, {len(prepared.check_codes)} checks, "
        f"inspector assigned; material type {prepared.material_type}"
    )
    return prepared


async def _prepare(database_url: str) -> Prepared:
    from approval.core.auth import issue_token, viewer_of
    from approval.core.errors import DomainError
    from approval.fieldwork.inspections import assign_inspectors, schedule_site_check
    from storage.db import close_database, open_database
    from storage.models import CheckResult, Material, MaterialType, Project, User

    now = datetime.now(UTC)
    await open_database(database_url)
    try:
        clerk = await User.get_or_none(username="window")
        inspector = await User.get_or_none(username="inspector")
        project = await Project.all().order_by("id").first()
        if clerk is None or inspector is None or project is None:
            raise BenchError(
                "the demo data lacks the `window` clerk, the `inspector` or any project; see "
                "approval/demo.py"
            )
        viewer = await viewer_of(clerk)
        inspection = await schedule_site_check(
            viewer=viewer,
            project_id=project.id,
            department_codes=[INSPECTION_DEPARTMENT],
            now=now,
        )
        await assign_inspectors(
            viewer=viewer, inspection_id=inspection.id, usernames=["inspector"], now=now
        )
        checks = await CheckResult.filter(inspection_id=inspection.id).order_by("id")
        if not checks:
            raise BenchError(f"the site check of {project.code} has no checks to photograph")
        material = (
            await Material.filter(project_id=project.id)
            .order_by("id")
            .prefetch_related("material_type")
            .first()
        )
        material_type = (
            material.material_type
            if material is not None
            else await MaterialType.all().order_by("id").first()
        )
        if material_type is None:
            raise BenchError("the catalog has no material types; did `onewindow setup` load it?")
        ttl = timedelta(hours=12)
        inspector_token, _ = await issue_token(user=inspector, now=now, ttl=ttl)
        clerk_token, _ = await issue_token(user=clerk, now=now, ttl=ttl)
        return Prepared(
            inspector_token=inspector_token,
            clerk_token=clerk_token,
            inspection_gid=global_id("Inspection", inspection.id),
            check_codes=[c.check_code for c in checks],
            project_gid=global_id("Project", project.id),
            material_type=material_type.code,
            project_code=project.code,
        )
    except DomainError as error:
        raise BenchError(f"preparing the site check failed ({error.code.value}): {error}") from None
    finally:
        await close_database()


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Pass:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds per photo
    elapsed: float = 0.0
    bytes: int = 0
    server_cpu: float = math.nan
    s3_cpu: float = math.nan
    bench_cpu: float = math.nan
    machine_busy: float = math.nan  # share of all CPUs busy (any process) during the pass

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else math.nan
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


class Progress:
    """A line every PROGRESS_EVERY photos (and at the end)."""

    def __init__(self, name: str, total: int, started: float) -> None:
        self.name, self.total, self.started = name, total, started
        self.done = 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            if self.done % PROGRESS_EVERY == 0 or self.done == self.total:
                rate = self.done / (time.perf_counter() - self.started)
                say(f"  {self.name}: {self.done}/{self.total} photos ({rate:.1f}/s)")


@contextlib.contextmanager
def measured(into: Pass, server: Child, s3: S3) -> Iterator[None]:
    def s3_cpu() -> float:
        return math.nan if s3.pid is None else cpu_seconds(s3.pid)

    cpu = (cpu_seconds(server.pid), s3_cpu(), time.process_time())
    ticks = machine_ticks()
    started = time.perf_counter()
    yield
    into.elapsed = time.perf_counter() - started
    busy, total = (after - before for after, before in zip(machine_ticks(), ticks, strict=True))
    into.machine_busy = busy / total if total else math.nan
    into.server_cpu = cpu_seconds(server.pid) - cpu[0]
    into.s3_cpu = s3_cpu() - cpu[1]
    into.bench_cpu = time.process_time() - cpu[2]


def ticket_pass(
    name: str,
    photos: list[tuple[int, bytes]],
    *,
    server: Child,
    s3: S3,
    prepared: Prepared,
    concurrency: int,
    quiet: bool = False,
) -> Pass:
    """Every photo through requestUpload, PUT to the ticket, confirmUpload."""
    result = Pass(name)
    with measured(result, server, s3):
        asyncio.run(_tickets(result, photos, server, prepared, concurrency, quiet))
    return result


async def _tickets(
    result: Pass,
    photos: list[tuple[int, bytes]],
    server: Child,
    prepared: Prepared,
    concurrency: int,
    quiet: bool,
) -> None:
    import httpx

    limits = httpx.Limits(
        max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency
    )
    auth = {"Authorization": f"Bearer {prepared.inspector_token}"}
    queue = list(reversed(photos))
    progress = Progress(result.name, len(photos), time.perf_counter())

    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=120) as client:

        async def gql(query: str, variables: dict[str, Any], field_name: str) -> dict[str, Any]:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=auth
            )
            return mutation_answer(response, field_name)

        async def deliver(index: int, data: bytes) -> None:
            started = time.perf_counter()
            sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
            check = prepared.check_codes[index % len(prepared.check_codes)]
            asked = await gql(
                REQUEST,
                {
                    "input": {
                        "kind": "PHOTO",
                        "sha256": sha256,
                        "sizeBytes": len(data),
                        "contentType": "image/jpeg",
                        "fileName": f"现场-{index:04d}.jpg",
                        "check": {
                            "inspectionId": prepared.inspection_gid,
                            "department": INSPECTION_DEPARTMENT,
                            "checkCode": check,
                        },
                    }
                },
                "requestUpload",
            )
            ticket = asked["ticket"]
            if ticket is None:
                raise BenchError(
                    f"photo {index} was stored already (no ticket); photos must differ"
                )
            headers = {h["name"]: h["value"] for h in ticket["headers"]}
            put = await client.request(
                ticket["method"], ticket["url"], content=data, headers=headers
            )
            if put.status_code != 200:
                raise BenchError(f"PUT of photo {index}: HTTP {put.status_code}: {put.text[:500]}")
            confirmed = await gql(CONFIRM, {"id": asked["upload"]["id"]}, "confirmUpload")
            if confirmed["upload"]["status"] != "CONFIRMED":
                raise BenchError(f"photo {index} is {confirmed['upload']['status']} after confirm")
            result.latencies.append(time.perf_counter() - started)
            result.bytes += len(data)
            if not quiet:
                progress.tick()

        async def worker() -> None:
            while queue:
                index, data = queue.pop()
                await deliver(index, data)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(photos)))))


def s3_client(s3: S3, concurrency: int) -> Any:
    """The ``minio`` SDK client of the baseline (region given: no location call)."""
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(
        maxsize=max(concurrency, 10),
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=urllib3.Retry(total=0),
    )
    return Minio(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.secure,
        region=REGION,
        http_client=http,
    )


def put_object_pass(
    name: str,
    photos: list[tuple[int, bytes]],
    *,
    client: Any,
    server: Child,
    s3: S3,
    concurrency: int,
    quiet: bool = False,
) -> Pass:
    """Every photo with the SDK's plain put_object, ``concurrency`` threads; removed after."""
    result = Pass(name)
    prefix = f"{BASELINE_PREFIX}/{name.replace(' ', '-').replace('#', '')}"
    progress = Progress(name, len(photos), time.perf_counter())
    lock = threading.Lock()

    def put(item: tuple[int, bytes]) -> None:
        index, data = item
        started = time.perf_counter()
        client.put_object(
            s3.bucket,
            f"{prefix}/{index:05d}.jpg",
            io.BytesIO(data),
            len(data),
            content_type="image/jpeg",
        )
        latency = time.perf_counter() - started
        with lock:
            result.latencies.append(latency)
            result.bytes += len(data)
        if not quiet:
            progress.tick()

    with measured(result, server, s3), ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(put, photos))
    # Outside the timing: drop what the pass stored, so the S3 server holds what it did before.
    from minio.deleteobjects import DeleteObject

    keys = [DeleteObject(f"{prefix}/{index:05d}.jpg") for index, _ in photos]
    for failed in client.remove_objects(s3.bucket, keys):
        raise BenchError(f"cannot remove the baseline's objects: {failed}")
    return result


def verify_store(client: Any, bucket: str, photo_count: int) -> str:
    """After the passes: every photo at its content key, a thumbnail each, nothing staged."""
    counts: Counter[str] = Counter()
    for item in client.list_objects(bucket, recursive=True):
        counts[item.object_name.split("/", 1)[0]] += 1
    if counts["incoming"] or counts["photos"] != photo_count or counts["thumbnails"] != photo_count:
        raise BenchError(
            f"the bucket holds {dict(counts)}; expected {photo_count} photos, as many "
            "thumbnails and nothing left in incoming/"
        )
    return f"{counts['photos']} photos and {counts['thumbnails']} thumbnails stored, none staged"


# --- profiling -------------------------------------------------------------------------------


@dataclass
class Profiler:
    process: subprocess.Popen[bytes]
    output: Path
    log_path: Path
    mode: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_profiler(pid: int, workdir: Path, mode: str) -> Profiler:
    exe = shutil.which(
        "py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if exe is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    output = workdir / "server-profile.txt"
    log_path = workdir / "py-spy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(output),
                "--nonblocking",
                "--full-filenames",
                *(["--gil"] if mode == "gil" else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    time.sleep(1.0)
    if process.poll() is not None:
        raise BenchError(
            f"py-spy exited at once (code {process.returncode}): "
            f"{log_path.read_text(errors='replace')[-1500:]}"
        )
    return Profiler(process, output, log_path, mode)


def profile_report(profiler: Profiler, top: int = 20) -> str:
    """Own and inclusive shares of the server's samples by function (inclusive: our code)."""
    try:
        lines = profiler.output.read_text(errors="replace").splitlines()
    except OSError:
        said = profiler.log_path.read_text(errors="replace")[-1500:]
        return f"(no profile written; py-spy said: {said})"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(text) for text in stack.split(";")]
        total += count
        leaf = frames[-1][0]
        if "(<" in leaf and len(frames) > 1:  # generated code (<string>): name its caller
            leaf = f"{leaf} in {frames[-2][0]}"
        own[leaf] += count
        for name in {_function(name) for name, ours in frames if ours}:
            inclusive[name] += count
    if not total:
        return "(the profile is empty)"
    what = "the thread holding the GIL" if profiler.mode == "gil" else "its non-idle threads"
    out = [
        f"{total} samples of the server ({what}) at 250/s by py-spy; shares of those samples",
        "",
        "own time:",
    ]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out += ["", "including callees (the repository's functions):"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def _function(frame: str) -> str:
    """``func (file.py:12)`` as ``func (file.py)``: one entry per function."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _frame(text: str) -> tuple[str, bool]:
    """py-spy's ``func (path/to/file.py:12)`` shortened, and whether it is the repository's."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")")
    ours = str(ROOT) in where and "site-packages" not in where
    for marker in ("site-packages/", f"{ROOT}/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return (f"{name} ({where})" if where else name), ours


# --- the two parts ---------------------------------------------------------------------------


@contextlib.contextmanager
def s3_server(args: argparse.Namespace, workdir: Path) -> Iterator[S3]:
    """moto in a subprocess of ours, or the real MinIO of ``--s3`` (a fresh bucket, emptied
    and removed at the end: the server creates it at start-up)."""
    if not args.s3:
        port = free_port()
        with child(
            "the S3 server (moto)",
            [sys.executable, str(SCRIPT), "--serve-moto", str(port)],
            env=clean_env(),
            log_path=workdir / "moto.log",
            base_url=f"http://127.0.0.1:{port}",
            probe="/",
        ) as moto:
            yield S3(
                name=f"moto S3 (pid {moto.pid})",
                endpoint=f"127.0.0.1:{port}",
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                bucket="onewindow",
                pid=moto.pid,
            )
        return
    access_key = os.environ.get("ONEWINDOW_BENCH_S3_ACCESS_KEY", "")
    secret_key = os.environ.get("ONEWINDOW_BENCH_S3_SECRET_KEY", "")
    if not access_key or not secret_key:
        raise BenchError(
            "--s3 needs the credentials in ONEWINDOW_BENCH_S3_ACCESS_KEY and "
            "ONEWINDOW_BENCH_S3_SECRET_KEY; set both and run again"
        )
    s3 = S3(
        name="S3 server (not measured: its CPU is its own)",
        endpoint=args.s3,
        access_key=access_key,
        secret_key=secret_key,
        bucket=f"onewindow-bench-{random.randrange(16**8):08x}",
        secure=args.s3_secure,
    )
    try:
        yield s3
    finally:
        from minio.deleteobjects import DeleteObject

        client = s3_client(s3, 4)
        with contextlib.suppress(Exception):  # best effort: the bench's own fresh bucket
            names = [o.object_name for o in client.list_objects(s3.bucket, recursive=True)]
            for _ in client.remove_objects(s3.bucket, [DeleteObject(n) for n in names]):
                pass
            client.remove_bucket(s3.bucket)


def photos_part(
    args: argparse.Namespace,
    workdir: Path,
    database_url: str,
    prepared: Prepared,
    photos: list[bytes],
) -> float:
    """Part 1; answers the ratio ticket / put_object."""
    warm = [(i, p) for i, p in enumerate(photos[: args.warmup])]
    timed = [(i, p) for i, p in enumerate(photos) if i >= args.warmup]
    with (
        s3_server(args, workdir) as s3,
        onewindow_server(
            "OneWindow server (MinIO store)", workdir, database_url, **s3.server_settings()
        ) as server,
    ):
        say(
            f"{s3.name} on {s3.endpoint}, bucket {s3.bucket}; OneWindow server "
            f"(pid {server.pid}) on {server.base_url}; concurrency {args.concurrency}"
        )
        client = s3_client(s3, args.concurrency)
        rss_start = proc_status_kib(server.pid, "VmRSS")
        if warm:
            say(f"warm-up: {len(warm)} photos each way (not counted)")
            ticket_pass(
                "warm-up tickets",
                warm,
                server=server,
                s3=s3,
                prepared=prepared,
                concurrency=args.concurrency,
                quiet=True,
            )
            put_object_pass(
                "warm-up put",
                warm,
                client=client,
                server=server,
                s3=s3,
                concurrency=args.concurrency,
                quiet=True,
            )
        rss_before = proc_status_kib(server.pid, "VmRSS")
        hwm_before = proc_status_kib(server.pid, "VmHWM")
        profiler: Profiler | None = None
        passes: list[Pass] = []
        say(f"timed: {len(timed)} photos, put_object / ticket flow / put_object")
        passes.append(
            put_object_pass(
                "put_object #1",
                timed,
                client=client,
                server=server,
                s3=s3,
                concurrency=args.concurrency,
            )
        )
        server.check_alive()
        if args.profile:
            profiler = start_profiler(server.pid, workdir, args.profile)
        try:
            passes.append(
                ticket_pass(
                    "ticket flow",
                    timed,
                    server=server,
                    s3=s3,
                    prepared=prepared,
                    concurrency=args.concurrency,
                )
            )
        finally:
            if profiler is not None:
                profiler.stop()
        passes.append(
            put_object_pass(
                "put_object #2",
                timed,
                client=client,
                server=server,
                s3=s3,
                concurrency=args.concurrency,
            )
        )
        server.check_alive()
        rss_after = proc_status_kib(server.pid, "VmRSS")
        hwm_after = proc_status_kib(server.pid, "VmHWM")
        verified = verify_store(client, s3.bucket, len(photos))
    say(f"check: {verified}")
    say()
    say(f"{'':<58}{'CPU ms per photo':^27}".rstrip())
    say(
        f"{'pass':<15}{'photos':>7}{'photos/s':>10}{'MiB/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'server':>9}{'S3':>9}{'bench':>9}{'machine busy':>14}"
    )
    for p in passes:
        say(
            f"{p.name:<15}{p.count:>7}{p.rate:>10.2f}{p.mib_per_s:>8.1f}{p.percentile(50):>9.0f}"
            f"{p.percentile(95):>9.0f}{1000 * p.server_cpu / p.count:>9.1f}"
            f"{1000 * p.s3_cpu / p.count:>9.1f}{1000 * p.bench_cpu / p.count:>9.1f}"
            f"{100 * p.machine_busy:>13.0f}%"
        )
    tickets = passes[1]
    better, other = sorted((passes[0], passes[2]), key=lambda p: p.rate, reverse=True)
    ratio = tickets.rate / better.rate if better.rate else math.inf
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    say(
        f"ticket / put_object = {ratio:.2f}  (against the better put_object pass, {better.name}; "
        f"against {other.name}: {tickets.rate / other.rate:.2f})  "
        f"target >= {TARGET_RATIO}: {verdict}"
    )
    cores = os.cpu_count() or 1
    for p in (tickets, better) if not math.isnan(tickets.s3_cpu) else ():
        per_photo = 1000 * (p.server_cpu + p.s3_cpu + p.bench_cpu) / p.count
        say(
            f"  {p.name}: {per_photo:.0f} ms of CPU per photo in the three processes; on "
            f"{cores} cores that allows at most {1000 * cores / per_photo:.0f} photos/s"
        )
    say(
        f"server memory (MinIO store): RSS {mib(rss_start)} at start, {mib(rss_before)} after the "
        f"warm-up, {mib(rss_after)} after the passes; peak (VmHWM) {mib(hwm_before)} before the "
        f"passes, {mib(hwm_after)} after"
    )
    if profiler is not None:
        say()
        say("where the server's time went during the ticket flow:")
        say(profile_report(profiler))
    return ratio


def material_part(
    args: argparse.Namespace, workdir: Path, database_url: str, prepared: Prepared
) -> float | None:
    """Part 2; answers the peak's increase in MiB (None without /proc)."""
    import httpx

    path = workdir / "material.pdf"
    warm_path = workdir / "warm-up.pdf"
    say(f"writing a {args.material_mb:g} MiB PDF-like file to disk ...")
    sha256, size = make_material(path, args.material_mb)
    warm_sha, warm_size = make_material(warm_path, 1)
    objects = workdir / "objects"
    with (
        onewindow_server(
            "OneWindow server (local store)",
            workdir,
            database_url,
            ONEWINDOW_OBJECT_DIR=str(objects),
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=600) as client,
    ):
        say(f"OneWindow server (pid {server.pid}) on {server.base_url}, objects in {objects}")
        auth = {"Authorization": f"Bearer {prepared.clerk_token}"}

        def gql(query: str, variables: dict[str, Any], field_name: str) -> dict[str, Any]:
            response = client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=auth
            )
            return mutation_answer(response, field_name)

        def deliver(file: Path, digest: str, length: int) -> tuple[float, float, float]:
            started = time.perf_counter()
            asked = gql(
                REQUEST,
                {
                    "input": {
                        "kind": "MATERIAL",
                        "sha256": digest,
                        "sizeBytes": length,
                        "contentType": "application/pdf",
                        "fileName": f"{file.stem}.pdf",
                        "material": {
                            "projectId": prepared.project_gid,
                            "materialType": prepared.material_type,
                        },
                    }
                },
                "requestUpload",
            )
            ticket = asked["ticket"]
            if ticket is None:
                raise BenchError(f"{file.name} was stored already (no ticket)")
            if not ticket["url"].startswith("/objects/upload/"):
                raise BenchError(
                    f"the ticket is not the local store's upload URL: {ticket['url'][:80]}"
                )
            requested = time.perf_counter()
            headers = {h["name"]: h["value"] for h in ticket["headers"]}
            headers["Content-Length"] = str(length)
            put = client.request(
                ticket["method"], ticket["url"], content=file_chunks(file), headers=headers
            )
            if put.status_code != 200:
                raise BenchError(f"PUT of {file.name}: HTTP {put.status_code}: {put.text[:500]}")
            sent = time.perf_counter()
            confirmed = gql(CONFIRM, {"id": asked["upload"]["id"]}, "confirmUpload")
            if confirmed["upload"]["status"] != "CONFIRMED":
                raise BenchError(f"{file.name} is {confirmed['upload']['status']} after confirm")
            return requested - started, sent - requested, time.perf_counter() - sent

        deliver(warm_path, warm_sha, warm_size)  # imports, thread pool, connections
        time.sleep(0.5)
        idle_peak = proc_status_kib(server.pid, "VmHWM")
        rss_before = proc_status_kib(server.pid, "VmRSS")
        reset = reset_peak(server.pid)
        say(
            f"idle after a 1 MiB warm-up: RSS {mib(rss_before)}, "
            f"peak so far (VmHWM) {mib(idle_peak)}" + ("; VmHWM reset to the RSS" if reset else "")
        )
        say(f"delivering the {args.material_mb:g} MiB material (streamed from disk) ...")
        asked_s, put_s, confirm_s = deliver(path, sha256, size)
        peak = proc_status_kib(server.pid, "VmHWM")
        time.sleep(0.5)
        rss_after = proc_status_kib(server.pid, "VmRSS")
        server.check_alive()
    stored = objects / "materials" / sha256[:2] / sha256
    if not stored.is_file() or stored.stat().st_size != size:
        raise BenchError(f"the material is not at its content key {stored} with {size} bytes")
    leftovers = list((objects / "incoming").glob("*")) if (objects / "incoming").exists() else []
    if leftovers:
        raise BenchError(f"staged files left behind: {leftovers[:3]}")
    say(f"check: stored at materials/{sha256[:2]}/{sha256[:12]}... with {size} bytes, none staged")
    say()
    say(
        f"material {size / MiB:.0f} MiB: requestUpload {1000 * asked_s:.0f} ms, PUT {put_s:.2f} s "
        f"({size / MiB / put_s:.0f} MiB/s), confirmUpload {confirm_s:.2f} s "
        f"({size / MiB / confirm_s:.0f} MiB/s hashed and moved)"
    )
    if None in (rss_before, peak, idle_peak):
        say("server memory: /proc is not available, no figures")
        return None
    assert rss_before is not None and peak is not None and idle_peak is not None
    base = rss_before if reset else idle_peak
    increase = max(peak - base, 0) / 1024
    over_idle_peak = max(peak - idle_peak, 0) / 1024
    say(
        f"server memory (local store): RSS before {mib(rss_before)}, peak during the upload "
        f"{mib(peak)}, RSS after {mib(rss_after)}; idle peak {mib(idle_peak)}"
    )
    verdict = "met" if increase <= TARGET_MEMORY_MIB else "NOT met"
    what = "the RSS before" if reset else "the idle peak"
    say(
        f"peak increase = {increase:.1f} MiB over {what} ({over_idle_peak:.1f} MiB over the idle "
        f"peak) for a {size / MiB:.0f} MiB file  (target <= {TARGET_MEMORY_MIB:g} MiB: {verdict})"
    )
    return increase


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Photos through upload tickets vs plain put_object on an S3 server, and "
        "the server's memory while a large material streams through the local store."
    )
    parser.add_argument("--photos", type=int, default=200, help="timed photos (200)")
    parser.add_argument("--size-mb", type=float, default=3.0, help="MiB per photo (3)")
    parser.add_argument("--concurrency", type=int, default=8, help="photos in flight (8)")
    parser.add_argument("--warmup", type=int, default=8, help="warm-up photos each way (8)")
    parser.add_argument(
        "--material-mb", type=float, default=100.0, help="MiB of the material (100)"
    )
    parser.add_argument(
        "--only", choices=("photos", "material"), help="run one part only (default: both)"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="threads",
        choices=("threads", "gil"),
        help="sample the server with py-spy during the ticket-flow pass and print the top costs: "
        "'threads' (default) every thread py-spy sees running, 'gil' only the thread holding "
        "the GIL (Python-level work; misses Pillow and hashing, which release it)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 24 photos, 2 warm-up, 16 MiB material"
    )
    parser.add_argument(
        "--s3",
        metavar="HOST:PORT",
        help="photos against this S3 server (a real MinIO) instead of moto; credentials from "
        "ONEWINDOW_BENCH_S3_ACCESS_KEY and ONEWINDOW_BENCH_S3_SECRET_KEY; a fresh bucket is "
        "made and removed",
    )
    parser.add_argument("--s3-secure", action="store_true", help="https to --s3")
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.warmup, args.material_mb = (
            min(args.photos, 24),
            min(args.warmup, 2),
            min(args.material_mb, 16.0),
        )
    if args.photos < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--photos and --concurrency must be at least 1, --warmup not negative")
    if not 0.05 <= args.size_mb <= 24:
        parser.error("--size-mb must be between 0.05 and 24 (the photo limit is 25 MiB)")
    if not 1 <= args.material_mb <= 200:
        parser.error("--material-mb must be between 1 and 200 (ONEWINDOW_MATERIAL_MAX_MB)")
    return args


def run(args: argparse.Namespace, workdir: Path) -> None:
    started = time.perf_counter()
    require_modules()
    database_url = f"sqlite://{workdir / 'bench.sqlite3'}"
    say(f"work dir {workdir}; database {database_url}")
    photos = make_photos(args.photos + args.warmup, args.size_mb) if args.only != "material" else []
    prepared = setup_database(database_url, workdir)
    if args.only != "material":
        say()
        where = f"the S3 server {args.s3}" if args.s3 else "moto"
        say(f"== photos: ticket flow vs put_object on {where}")
        photos_part(args, workdir, database_url, prepared, photos)
        photos.clear()
    if args.only != "photos":
        say()
        say("== material: one large file through the local store")
        material_part(args, workdir, database_url, prepared)
    say()
    say(f"total time {time.perf_counter() - started:.0f}s ({os.cpu_count()} CPUs)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_moto is not None:
        serve_moto(args.serve_moto)
        return 0

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    with tempfile.TemporaryDirectory(prefix="onewindow-upload-bench-") as workdir:
        try:
            run(args, Path(workdir))
        except BenchError as error:
            print(f"bench failed: {error}", file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            print("bench interrupted", file=sys.stderr, flush=True)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
