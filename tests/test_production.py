"""Production mode: no GraphiQL or introspection, a Content-Security-Policy, and no start with
demo accounts or default secrets; security headers in every mode."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from approval.core.auth import create_user
from approval.demo import DEMO_PASSWORD
from server.app import create_app
from server.production import InsecureStart, refuse_insecure_start, secret_problems
from server.settings import Settings, SettingsError
from storage.enums import Role
from tests.test_cli import free_port, onewindow


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        database_url=f"sqlite://{tmp_path / 'db.sqlite3'}",
        object_dir=tmp_path / "objects",
        **values,  # type: ignore[arg-type]
    )


async def ask(app: object, method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.request(method, path, **kwargs)  # type: ignore[arg-type]


def test_the_environment_is_read_and_checked() -> None:
    assert Settings.from_env({}).production is False
    assert Settings.from_env({"ONEWINDOW_ENV": "Production"}).production is True
    with pytest.raises(SettingsError, match="ONEWINDOW_ENV"):
        Settings.from_env({"ONEWINDOW_ENV": "prod"})


@pytest.mark.usefixtures("database")
async def test_production_serves_no_graphiql_nor_introspection(tmp_path: Path) -> None:
    built = tmp_path / "web" / "graphiql"
    built.mkdir(parents=True)
    (built / "index.html").write_text("<html>graphiql</html>")
    for production in (False, True):
        app = create_app(
            settings(
                tmp_path,
                web_dir=tmp_path / "web",
                environment="production" if production else "development",
            )
        )
        page = await ask(app, "GET", "/graphql", headers={"accept": "text/html"})
        assert (page.status_code == 404) is production, page.status_code
        schema = await ask(
            app, "POST", "/graphql", json={"query": "{ __schema { types { name } } }"}
        )
        body = schema.json()
        assert ("errors" in body) is production, body
        plain = await ask(app, "POST", "/graphql", json={"query": "{ __typename }"})
        assert plain.json() == {"data": {"__typename": "Query"}}
        # security headers on every answer; the CSP in production
        for name, value in (
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ):
            assert plain.headers[name] == value
        csp = plain.headers.get("content-security-policy")
        assert (csp is not None) is production
        if csp:
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp


def test_default_secrets_are_named() -> None:
    good = Settings(minio_endpoint="minio:9000", minio_access_key="app", minio_secret_key="x" * 20)
    assert secret_problems(good) == []
    bad = Settings(
        database_url="postgres://onewindow:CHANGE-me-postgres@db/onewindow",
        minio_endpoint="minio:9000",
        minio_access_key="minioadmin",
        minio_secret_key="minioadmin",
    )
    named = " ".join(secret_problems(bad))
    for variable in (
        "ONEWINDOW_DATABASE_URL",
        "ONEWINDOW_MINIO_ACCESS_KEY",
        "ONEWINDOW_MINIO_SECRET_KEY",
    ):
        assert variable in named


@pytest.mark.usefixtures("catalog")
async def test_a_demo_account_on_the_demo_password_stops_a_production_start() -> None:
    await refuse_insecure_start(Settings(environment="production"))  # nobody yet: fine
    await create_user(
        username="supervisor",
        password=DEMO_PASSWORD,
        display_name="张强",
        role=Role.SUPERVISOR,
    )
    with pytest.raises(InsecureStart, match="'supervisor' still has the demo password"):
        await refuse_insecure_start(Settings(environment="production"))


def test_serve_refuses_the_demo_in_production(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'var' / 'db.sqlite3'}"
    assert onewindow("setup", database_url=url, cwd=tmp_path).returncode == 0  # the demo
    production = onewindow("setup", database_url=url, cwd=tmp_path, ONEWINDOW_ENV="production")
    assert "skipped in production" in production.stdout
    served = onewindow(
        "serve", database_url=url, cwd=tmp_path, PORT=str(free_port()), ONEWINDOW_ENV="production"
    )
    assert served.returncode != 0
    assert "refusing to start in production" in served.stderr
    assert "'window' still has the demo password" in served.stderr
