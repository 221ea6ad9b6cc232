"""Every request body has a ceiling (uploads keep their own per-kind limits).

Two anonymous 64 MiB POSTs to ``/graphql`` used to double the server's memory. A body is read
here up to ``max_bytes`` and handed on whole; one declared or found larger is answered 413
with the API's usual ``{"errors": [...]}`` and code TOO_LARGE, before any route reads it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from approval.core.errors import ErrorCode
from schema.core.limits import RefusedRequest

# Paths whose bodies are streamed and bounded by their own rules (an upload ticket's size).
STREAMED_PATHS = ("/objects/upload/",)


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, streamed: tuple[str, ...] = STREAMED_PATHS
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed

    def refusal(self) -> RefusedRequest:
        return RefusedRequest(
            ErrorCode.TOO_LARGE,
            f"the request body is larger than {self.max_bytes} bytes, the most this server "
            "accepts; send less at once (files go through upload tickets)",
            status=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(self.streamed):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self.refusal().response()(scope, receive, send)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the app hears it below
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self.refusal().response()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
