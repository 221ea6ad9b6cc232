"""The built web apps at /field/: cache headers a service worker needs, the app's own screens,
and a clear page when the app is not built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from server.web import default_web_dir, web_routes


@pytest.fixture
def built(tmp_path: Path) -> Path:
    app = tmp_path / "field"
    (app / "assets").mkdir(parents=True)
    (app / "index.html").write_text("<!doctype html><title>现场核查</title>", encoding="utf-8")
    (app / "sw.js").write_text("self.addEventListener('fetch', () => {})", encoding="utf-8")
    (app / "manifest.webmanifest").write_text("{}", encoding="utf-8")
    (app / "assets" / "index-Ab12Cd.js").write_text("console.log(1)", encoding="utf-8")
    return tmp_path


@pytest.fixture
async def client(built: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=web_routes(built))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_hashed_assets_are_cached_for_a_year(client: httpx.AsyncClient) -> None:
    response = await client.get("/field/assets/index-Ab12Cd.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in response.headers["content-type"]


@pytest.mark.parametrize("path", ["/field/", "/field/sw.js", "/field/manifest.webmanifest"])
async def test_the_shell_and_service_worker_are_revalidated(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


async def test_the_service_worker_may_control_the_app(client: httpx.AsyncClient) -> None:
    response = await client.get("/field/sw.js")
    assert response.headers["service-worker-allowed"] == "/field/"


async def test_a_screen_of_the_app_gets_its_index(client: httpx.AsyncClient) -> None:
    response = await client.get("/field/inspections/12")
    assert response.status_code == 200
    assert "现场核查" in response.text
    assert response.headers["cache-control"] == "no-cache"


async def test_a_missing_file_is_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/field/assets/gone-123.js", "/field/missing.png"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_no_path_leaves_the_app_folder(client: httpx.AsyncClient, built: Path) -> None:
    (built / "secret.txt").write_text("nope", encoding="utf-8")
    for path in ("/field/../secret.txt", "/field/%2e%2e/secret.txt", "/field/..%2fsecret.txt"):
        response = await client.get(path)
        assert "nope" not in response.text, path


async def test_the_bare_path_redirects(client: httpx.AsyncClient) -> None:
    response = await client.get("/field")
    assert response.status_code == 308
    assert response.headers["location"] == "/field/"


async def test_writes_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/field/index.html", content=b"x")
    assert response.status_code == 405


async def test_a_missing_build_says_how_to_build_it(tmp_path: Path) -> None:
    app = Starlette(routes=web_routes(tmp_path / "nothing"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/field/inspections/3")
    assert response.status_code == 503
    assert "make web" in response.text and "make run" in response.text
    assert "Traceback" not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_the_server_serves_the_checkout_build_by_default(built: Path) -> None:
    assert Settings.from_env({}).web_dir == default_web_dir()
    assert default_web_dir().parts[-3:] == ("clients", "web", "dist")
    assert Settings.from_env({"ONEWINDOW_WEB_DIR": str(built)}).web_dir == built
    paths = {getattr(r, "path", "") for r in create_app(Settings(web_dir=built)).routes}
    assert {"/field", "/field/"} & paths


# --- the self-hosted GraphiQL and the home page ----------------------------------------------


@pytest.fixture
def built_ide(built: Path, database: str) -> Path:
    ide = built / "graphiql"
    (ide / "assets").mkdir(parents=True)
    (ide / "index.html").write_text(
        '<!doctype html><title>GraphQL 接口调试</title><script src="/graphiql/assets/ide-Zz9.js">',
        encoding="utf-8",
    )
    (ide / "assets" / "ide-Zz9.js").write_text("export {}", encoding="utf-8")
    return built


def app_serving(web_dir: Path, **settings: object) -> httpx.AsyncClient:
    app = create_app(Settings(web_dir=web_dir, **settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_browsers_get_the_self_hosted_graphiql(built_ide: Path) -> None:
    async with app_serving(built_ide) as http:
        page = await http.get("/graphql", headers=BROWSER)
        asset = await http.get("/graphiql/assets/ide-Zz9.js")
    assert page.status_code == 200
    assert "GraphQL 接口调试" in page.text
    assert "cdn" not in page.text.lower() and "unpkg" not in page.text.lower()
    assert page.headers["cache-control"] == "no-cache"
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_graphql_requests_are_not_answered_with_the_page(built_ide: Path) -> None:
    async with app_serving(built_ide) as http:
        answer = await http.get("/graphql", params={"query": "{ __typename }"}, headers=BROWSER)
        posted = await http.post("/graphql", json={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert posted.json() == {"data": {"__typename": "Query"}}


async def test_the_ide_switch_turns_the_page_off(built_ide: Path) -> None:
    assert Settings.from_env({}).graphiql is True
    assert Settings.from_env({"ONEWINDOW_GRAPHIQL": "0"}).graphiql is False
    async with app_serving(built_ide, graphiql=False) as http:
        page = await http.get("/graphql", headers=BROWSER)
        posted = await http.post("/graphql", json={"query": "{ __typename }"})
    assert page.status_code == 404
    assert "GraphQL 接口调试" not in page.text
    assert posted.json() == {"data": {"__typename": "Query"}}


async def test_an_unbuilt_graphiql_says_how_to_build_it(built: Path, database: str) -> None:
    async with app_serving(built) as http:
        page = await http.get("/graphql", headers=BROWSER)
    assert page.status_code == 503
    assert "make web" in page.text
    assert "Traceback" not in page.text


async def test_home_sends_browsers_to_the_console_and_clients_to_graphql(built: Path) -> None:
    async with app_serving(built) as http:
        browser = await http.get("/", headers=BROWSER)
        client = await http.get("/", headers={"accept": "application/json"})
        console = await http.get("/console/projects/2026-371400-47-01-000001", headers=BROWSER)
    assert browser.status_code == 307 and browser.headers["location"] == "/console/"
    assert client.status_code == 307 and client.headers["location"] == "/graphql"
    assert console.status_code == 503  # the console is one of the apps (not built here)
    assert "办公台" in console.text
