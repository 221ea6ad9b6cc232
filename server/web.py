"""The built web apps: ``clients/web/dist/<app>/`` served at ``/<app>/`` (same origin as the API),
and the self-hosted GraphiQL: its page at ``GET /graphql`` for browsers, its files at
``/graphiql/assets/`` (built with the apps into ``dist/graphiql/``; no CDN anywhere).

``make run`` (or ``make web``) builds them with Vite. Caching follows what a service worker
needs: ``index.html``, ``sw.js``, the manifest and anything else without a content hash are
revalidated on every load (``no-cache``), so a new version is seen at once; the hashed files
under ``assets/`` never change and are cached for a year (``immutable``). A path inside the app
that is no file (``/field/inspections/12``) is one of the app's own screens: it gets
``index.html``, and the app's router shows it. A missing build answers 503 with a page that
says how to build it, never a stack trace.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IDE = "graphiql"
"""The folder of ``dist`` holding the GraphiQL page, and the path its assets are served at."""

WEB_APPS = {"field": "现场核查", "console": "办公台"}
"""The web apps the server serves, by path, with the name people know them by."""

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def default_web_dir() -> Path:
    """``clients/web/dist`` of this checkout, where ``npm run build`` writes the apps."""
    return Path(__file__).resolve().parent.parent / "clients" / "web" / "dist"


def not_built(app: str, directory: Path) -> Response:
    title = WEB_APPS.get(app, "GraphiQL" if app == IDE else app)
    body = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}尚未构建</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.6">
<h1>{html.escape(title)}尚未构建</h1>
<p>The {html.escape(app)} web app is not built: {html.escape(str(directory))} has no index.html.</p>
<p>Build it with <code>make web</code> (<code>make run</code> builds it before it serves),
then reload this page. Building needs Node.js 20 with npm.</p>
</body></html>
"""
    return HTMLResponse(body, status_code=503, headers={"Cache-Control": "no-store"})


class BuiltApp(StaticFiles):
    """One built app: its files with the right cache headers, ``index.html`` for its screens."""

    def __init__(self, app: str, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.app = app
        self.root = directory

    async def check_config(self) -> None:
        """A missing build is answered per request (see ``not_built``), not raised."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        index = self.root / "index.html"
        if not index.is_file():
            return not_built(self.app, self.root)
        try:
            response = await super().get_response(path, scope)
        except HTTPException as error:
            if error.status_code != 404 or not _is_screen(path):
                raise
            response = FileResponse(index)
        if response.status_code < 400:
            hashed = path.startswith("assets/")
            response.headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
        if path.endswith("sw.js"):
            response.headers["Service-Worker-Allowed"] = f"/{self.app}/"
        return response


def _is_screen(path: str) -> bool:
    """A path of the app's router (no file name with an extension, not under assets/)."""
    if path in ("", "."):
        return True
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return not path.startswith("assets/") and "." not in last


class HashedAssets(StaticFiles):
    """Files whose names carry their content hash: cached for a year."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code < 400:
            response.headers["Cache-Control"] = IMMUTABLE
        return response


def graphiql_page(web_dir: Path) -> Callable[[Request], Awaitable[Response]]:
    """The GraphiQL page (``dist/graphiql/index.html``), read at each request so that a new
    build is served at once; 503 with how to build it when it is missing."""
    index = web_dir / IDE / "index.html"

    async def page(request: Request) -> Response:
        if not index.is_file():
            return not_built(IDE, index.parent)
        return FileResponse(index, headers={"Cache-Control": REVALIDATE})

    return page


def home_for(request: Request) -> str:
    """Where ``/`` sends a visitor: browsers to the office console, API clients to /graphql."""
    return "/console/" if "text/html" in request.headers.get("accept", "") else "/graphql"


def web_routes(web_dir: Path) -> list[BaseRoute]:
    """``/<app>`` redirects to ``/<app>/``, which serves the app from ``web_dir/<app>``."""
    routes: list[BaseRoute] = []
    for app in WEB_APPS:

        async def slash(request: Request, app: str = app) -> Response:
            return RedirectResponse(f"/{app}/", status_code=308)

        routes.append(Route(f"/{app}", slash, methods=["GET", "HEAD"]))
        routes.append(Mount(f"/{app}", app=BuiltApp(app, web_dir / app)))
    routes.append(Mount(f"/{IDE}/assets", app=HashedAssets(web_dir / IDE / "assets")))
    return routes
