"""The production compose file and image stay true to the code (no Docker engine runs here,
so these read the files: what they name must exist)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_two_instances_behind_a_proxy_with_postgres_redis_and_minio() -> None:
    services = compose()["services"]
    assert set(services) == {"proxy", "server", "postgres", "redis", "minio", "minio-setup"}
    server = services["server"]
    assert server["deploy"]["replicas"] >= 2
    assert "ports" not in server, "instances are reached through the proxy only"
    assert set(server["depends_on"]) == {"postgres", "redis", "minio-setup"}
    assert server["depends_on"]["minio-setup"]["condition"] == "service_completed_successfully"
    env = server["environment"]
    assert env["ONEWINDOW_DATABASE_URL"].startswith("postgres://onewindow:")
    assert env["ONEWINDOW_DATABASE_URL"].endswith("@postgres:5432/onewindow")
    assert env["ONEWINDOW_REDIS_URL"].startswith("redis://redis:6379")
    assert env["ONEWINDOW_MINIO_ENDPOINT"] == "minio:9000"
    assert server["build"]["dockerfile"] == "deploy/Dockerfile"
    # the graceful shutdown (ONEWINDOW_SHUTDOWN_SECONDS, then the flush) fits Docker's grace
    assert int(server["stop_grace_period"].rstrip("s")) > int(env["ONEWINDOW_SHUTDOWN_SECONDS"])
    # production mode, a MinIO user of the server's own, no MinIO port published
    assert env["ONEWINDOW_ENV"] == "production"
    assert "MINIO_ROOT" not in env["ONEWINDOW_MINIO_ACCESS_KEY"] + env["ONEWINDOW_MINIO_SECRET_KEY"]
    assert "ports" not in services["minio"]
    setup = " ".join(services["minio-setup"]["command"])
    for step in ("mc admin user add", "mc admin policy attach", "s3:GetObject", "s3:PutObject"):
        assert step in setup
    assert "s3:*" not in setup and "admin:" not in setup
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert proxy["ports"] == ["${ONEWINDOW_PORT:-8000}:80"]


def test_the_proxy_follows_the_replicas_and_passes_websockets() -> None:
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    # every replica of the "server" service, looked up again as the service scales
    assert len(re.findall(r"^\s*server server:8000 resolve\b", conf, flags=re.MULTILINE)) == 2
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", conf, flags=re.MULTILINE)
    for path, upstream in (
        ("location /sync/", "onewindow_sync"),
        ("location = /graphql", "onewindow"),
    ):
        block = conf.split(path, 1)[1].split("}", 1)[0]
        assert f"proxy_pass http://{upstream};" in block and "proxy_read_timeout 1h;" in block
    assert "hash $uri consistent;" in conf.split("upstream onewindow_sync", 1)[1].split("}")[0]
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "location = /metrics {\n        return 404;" in conf


def test_every_variable_the_server_gets_is_one_the_settings_read() -> None:
    known = set(
        re.findall(
            r'"((?:ONEWINDOW_|HOST|PORT)[A-Z_]*)"', (ROOT / "server" / "settings.py").read_text()
        )
    )
    given = set(compose()["services"]["server"]["environment"])
    assert given <= known, given - known


def test_the_settings_the_compose_file_gives_are_valid() -> None:
    def filled(value: str) -> str:  # ${X:-default} -> default, ${X:?message} -> "value"
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
        return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "value", value)

    env = {
        name: filled(str(value))
        for name, value in compose()["services"]["server"]["environment"].items()
    }
    env["ONEWINDOW_MINIO_PUBLIC_URL"] = "https://files.example.cn"
    settings = Settings.from_env(env)
    assert settings.minio_endpoint == "minio:9000" and settings.minio_access_key == "value"


def test_the_image_copies_every_package_the_project_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert copied == packages


def test_the_example_environment_sets_everything_the_compose_file_requires() -> None:
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (DEPLOY / "compose.yaml").read_text()))
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), required - set(example)
