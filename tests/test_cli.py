"""The ``onewindow`` command, run in subprocesses against a temporary database (through
tests/as_main.py: ``python -m server.cli`` with the suite's cheap password hasher)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from approval.catalog.parse import default_catalog_path
from approval.core.auth import authenticate
from storage.enums import Role
from storage.models import AuditEvent, User

TIMEOUT = 180
ROOT = Path(__file__).resolve().parent.parent
ONEWINDOW = (sys.executable, "-m", "tests.as_main", "server.cli")  # `onewindow`, hashing cheaply


def cli_environment(**env: str) -> dict[str, str]:
    """The environment of an ``ONEWINDOW`` subprocess: ours, this checkout first on the
    module path (the subprocess runs in a folder of its own), and ``env``."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **env}


def onewindow(
    *args: str, database_url: str, cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = cli_environment(ONEWINDOW_DATABASE_URL=database_url, **env)
    return subprocess.run(
        [*ONEWINDOW, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Exit status 2, one `error:` line on stderr, no traceback; returns that line."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "; " in lines[0]
    return lines[0]


def row_counts(path: Path) -> dict[str, int]:
    tables = ("app_user", "enterprise", "project", "stage", "task", "material", "audit_event")
    with sqlite3.connect(path) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "data" / "onewindow.sqlite3"  # the folder does not exist yet
    return f"sqlite://{path}", path


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file after `onewindow migrate`, made once (a migration costs seconds of CPU);
    the tests that need an empty migrated database get a copy (``migrated_url``)."""
    folder = tmp_path_factory.mktemp("migrated")
    path = folder / "onewindow.sqlite3"
    result = onewindow("migrate", database_url=f"sqlite://{path}", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "applied models.0001_initial" in result.stdout
    return path


@pytest.fixture
def migrated_url(migrated_template: Path, tmp_path: Path) -> tuple[str, Path]:
    """A fresh copy of ``migrated_template``: its URL and file."""
    path = tmp_path / "data" / "onewindow.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(migrated_template, path)
    return f"sqlite://{path}", path


@pytest.fixture(scope="module")
def set_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path, subprocess.CompletedProcess[str]]:
    """A SQLite database after one `onewindow setup`: the URL, the file, the run."""
    folder = tmp_path_factory.mktemp("setup")
    path = folder / "var" / "onewindow.sqlite3"
    url = f"sqlite://{path}"
    return url, path, onewindow("setup", database_url=url, cwd=folder)


def test_setup_twice_creates_nothing_new(
    set_up: tuple[str, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    url, path, first = set_up
    assert first.returncode == 0, first.stderr
    assert "applied models.0001_initial" in first.stdout
    assert "projects: 12" in first.stdout
    assert "seed-demo: done" in first.stdout
    counts = row_counts(path)
    assert counts["project"] == 12
    assert counts["audit_event"] > 0

    second = onewindow("setup", database_url=url, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout
    assert "catalog unchanged" in second.stdout
    assert "seed-demo: skipped" in second.stdout
    assert row_counts(path) == counts

    again = onewindow("seed-demo", "--if-empty", database_url=url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stdout
    assert row_counts(path) == counts

    forced = onewindow("seed-demo", database_url=url, cwd=tmp_path)
    assert "--if-empty" in assert_clean_failure(forced)
    assert row_counts(path) == counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(base: str, server: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before answering"
        try:
            return httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer /healthz within 30 s")


def test_serve_answers_health_redirect_and_graphql(
    set_up: tuple[str, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    url, _, first = set_up
    assert first.returncode == 0, first.stderr
    port = free_port()
    environment = cli_environment(ONEWINDOW_DATABASE_URL=url, PORT=str(port))
    server = subprocess.Popen(
        [*ONEWINDOW, "serve"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_until_healthy(base, server)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "objects": "ok"}
        assert (tmp_path / "var" / "objects" / ".secret").exists()  # the local store, made
        home = httpx.get(f"{base}/", timeout=5)
        assert home.is_redirect
        assert home.headers["location"] == "/graphql"
        ide = httpx.get(f"{base}/graphql", headers={"accept": "text/html"}, timeout=5)
        assert ide.status_code == 200
        assert "graphiql" in ide.text.lower()
        answer = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"}, timeout=5)
        assert answer.json() == {"data": {"__typename": "Query"}}
    finally:
        server.terminate()
        server.wait(timeout=20)


async def test_create_user_prints_a_working_token(database: str, tmp_path: Path) -> None:
    username = f"cli-{uuid.uuid4().hex[:8]}"
    result = onewindow(
        "create-user",
        "--username",
        username,
        "--role",
        "supervisor",
        "--display-name",
        "张强",
        "--password-stdin",
        database_url=database,
        cwd=tmp_path,
        stdin="a-long-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "password:" not in result.stdout  # given on stdin, so never printed
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    expires = datetime.fromisoformat(fields["expires"])
    try:
        viewer = await authenticate(token=fields["token"], now=datetime.now(UTC))
        assert viewer.username == username
        assert viewer.role is Role.SUPERVISOR
        assert expires > datetime.now(UTC)
    finally:
        user = await User.get(username=username)
        await AuditEvent.filter(entity_type="user", entity_id=user.id).delete()
        await user.delete()


def test_create_user_generates_a_password_when_none_is_given(
    migrated_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = migrated_url
    result = onewindow(
        "create-user", "--username", "zhang", "--role", "agent", database_url=url, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "password: " in result.stdout
    assert "token: " in result.stdout
    duplicate = onewindow(
        "create-user", "--username", "zhang", "--role", "agent", database_url=url, cwd=tmp_path
    )
    assert "already exists" in assert_clean_failure(duplicate)


def test_the_command_line_revokes_unlocks_and_sets_passwords(
    migrated_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, path = migrated_url
    made = onewindow(
        "create-user", "--username", "zhang", "--role", "agent", database_url=url, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    revoked = onewindow("revoke-tokens", "zhang", database_url=url, cwd=tmp_path)
    assert revoked.returncode == 0 and "1 token(s) revoked" in revoked.stdout, revoked.stderr
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT revoked FROM access_token").fetchall() == [(1,)]
    unlocked = onewindow("unlock", "zhang", database_url=url, cwd=tmp_path)
    assert unlocked.returncode == 0 and "was not locked" in unlocked.stdout, unlocked.stderr
    reset = onewindow(
        "set-password",
        "zhang",
        "--password-stdin",
        database_url=url,
        cwd=tmp_path,
        stdin="another-password\n",
    )
    assert reset.returncode == 0 and "password set" in reset.stdout, reset.stderr
    missing = onewindow("unlock", "nobody", database_url=url, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_bad_holiday_file_names_its_line(migrated_url: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = migrated_url
    holidays = tmp_path / "2027.csv"
    holidays.write_text("year,2027\n2027-01-01,holiday,元旦\n2027-13-01,holiday,春节\n")
    result = onewindow("load-holidays", str(holidays), database_url=url, cwd=tmp_path)
    assert "line 3" in assert_clean_failure(result)

    holidays.write_text("year,2027\n2027-01-01,holiday,元旦\n")
    good = onewindow("load-holidays", str(holidays), database_url=url, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "2027" in good.stdout

    missing = onewindow("load-holidays", str(tmp_path / "none.csv"), database_url=url, cwd=tmp_path)
    assert "does not exist" in assert_clean_failure(missing)


def test_broken_catalog_names_its_line(sqlite_url: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = sqlite_url
    lines = default_catalog_path().read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "time_limit_days:" in line)
    lines[number - 1] = lines[number - 1].replace("time_limit_days: 20", "time_limit_days: -3")
    broken = tmp_path / "catalog.yaml"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = onewindow("load-catalog", "--file", str(broken), database_url=url, cwd=tmp_path)
    assert f"line {number}" in assert_clean_failure(result)


def test_unreachable_database_and_bad_settings_are_one_line(tmp_path: Path) -> None:
    down = onewindow("migrate", database_url="postgres://postgres@127.0.0.1:1/x", cwd=tmp_path)
    assert "cannot reach the database" in assert_clean_failure(down)
    bad_port = onewindow("migrate", database_url="sqlite://:memory:", cwd=tmp_path, PORT="x")
    assert "PORT" in assert_clean_failure(bad_port)


def test_orphans_lists_by_default_and_removes_only_with_delete(
    set_up: tuple[str, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    url, _, _ = set_up
    objects = tmp_path / "objects"
    stray = objects / "photos" / "ab" / ("ab" + "0" * 62)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"never confirmed")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stray, (two_days_ago, two_days_ago))
    young = objects / "incoming" / str(uuid.uuid4())
    young.parent.mkdir(parents=True)
    young.write_bytes(b"on its way")
    env = {"ONEWINDOW_OBJECT_DIR": str(objects)}

    dry = onewindow("orphans", database_url=url, cwd=tmp_path, **env)
    assert dry.returncode == 0, dry.stderr
    assert "photos/ab/ab000" in dry.stdout and "never confirmed" in dry.stdout
    assert "1 object(s), 15 bytes" in dry.stdout and "--delete" in dry.stdout
    assert "scanned 2" in dry.stdout  # progress
    assert stray.exists() and young.exists()

    removed = onewindow("orphans", "--delete", database_url=url, cwd=tmp_path, **env)
    assert removed.returncode == 0, removed.stderr
    assert "removed 1 object(s)" in removed.stdout
    assert not stray.exists() and young.exists()

    bad = onewindow("orphans", "--grace-hours", "0", database_url=url, cwd=tmp_path, **env)
    assert "--grace-hours 0 is too short" in assert_clean_failure(bad)
    unreachable = onewindow(
        "orphans",
        database_url=url,
        cwd=tmp_path,
        ONEWINDOW_MINIO_ENDPOINT="127.0.0.1:1",
        ONEWINDOW_MINIO_ACCESS_KEY="k",
        ONEWINDOW_MINIO_SECRET_KEY="s",
    )
    assert "127.0.0.1:1" in assert_clean_failure(unreachable)


def test_serve_refuses_to_start_without_its_object_store(
    set_up: tuple[str, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    url, _, _ = set_up
    result = onewindow(
        "serve",
        database_url=url,
        cwd=tmp_path,
        ONEWINDOW_MINIO_ENDPOINT="127.0.0.1:1",
        ONEWINDOW_MINIO_ACCESS_KEY="key",
        ONEWINDOW_MINIO_SECRET_KEY="secret",
    )
    line = assert_clean_failure(result)
    assert "127.0.0.1:1" in line and "ONEWINDOW_MINIO_ENDPOINT" in line
