"""Security headers on every HTTP response (a route's own value wins)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def content_security_policy(*, files_origin: str = "") -> str:
    """What the console, the field app and GraphiQL load: their own files, inline styles
    (Element Plus, Vant), images and uploads from this server or the object store, websockets
    back to this server, Monaco's workers from blobs; no frames, plugins or foreign scripts."""
    files = f" {files_origin}" if files_origin else ""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{files}",
            "font-src 'self' data:",
            f"connect-src 'self' ws: wss:{files}",
            "worker-src 'self' blob:",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, csp: str | None = None) -> None:
        self.app = app
        self.headers = dict(ALWAYS)
        if csp:
            self.headers["content-security-policy"] = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
