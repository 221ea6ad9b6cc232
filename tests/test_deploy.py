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


def test_compose_runs_the_server_with_postgres_and_minio() -> None:
    services = compose()["services"]
    assert set(services) == {"server", "postgres", "minio"}
    server = services["server"]
    assert set(server["depends_on"]) == {"postgres", "minio"}
    env = server["environment"]
    assert env["ONEWINDOW_DATABASE_URL"].startswith("postgres://onewindow:")
    assert env["ONEWINDOW_DATABASE_URL"].endswith("@postgres:5432/onewindow")
    assert env["ONEWINDOW_MINIO_ENDPOINT"] == "minio:9000"
    assert server["build"]["dockerfile"] == "deploy/Dockerfile"


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
