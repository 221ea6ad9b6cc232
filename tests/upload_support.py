"""Delivering files through GraphQL in tests: an app with an object store, and the client steps."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from approval.files.uploads import UploadRules
from schema.app import graphql_app
from server.objects_endpoint import object_routes
from storage.objects import ObjectStore

REQUEST = """
mutation($input: RequestUploadInput!) {
  requestUpload(input: $input) {
    upload { id status sha256 sizeBytes fileName }
    ticket { url method headers { name value } expiresAt parts { number url offset size } }
    errors { code message field }
  }
}"""

CONFIRM = """
mutation($id: ID!) {
  confirmUpload(uploadId: $id) {
    upload {
      id status
      file { sha256 sizeBytes contentType url }
      photo { id status takenAt latitude longitude width height url thumbnailUrl }
    }
    errors { code message field }
  }
}"""


def with_state(app: ASGIApp, **state: Any) -> ASGIApp:
    """What a lifespan would hand to requests, for apps served without one."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = {**scope.get("state", {}), **state}
        await app(scope, receive, send)

    return wrapped


def files_app(store: ObjectStore, clock: Callable[[], datetime], rules: UploadRules) -> ASGIApp:
    graphql = graphql_app(token_ttl=timedelta(hours=8), clock=clock, upload_rules=rules)
    app = Starlette(routes=[Route("/graphql", graphql), *object_routes(clock=clock)])
    return with_state(app, object_store=store)


@dataclass
class Files:
    """GraphQL and the ticket URLs, as a client sees them."""

    http: httpx.AsyncClient  # the app, over ASGI
    outside: httpx.AsyncClient  # real HTTP, for presigned URLs of an S3 server
    tokens: dict[str, str]
    store: ObjectStore

    async def gql(self, query: str, variables: dict[str, Any], *, as_: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.tokens[as_]}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]

    async def request(
        self, data: bytes, *, as_: str, target: dict[str, Any], **facts: Any
    ) -> dict[str, Any]:
        kind = "PHOTO" if "check" in target else "MATERIAL"
        variables = {
            "input": {
                "kind": kind,
                "sha256": hashlib.sha256(data).hexdigest(),
                "sizeBytes": len(data),
                "contentType": "image/jpeg" if kind == "PHOTO" else "application/pdf",
                "fileName": "现场.jpg" if kind == "PHOTO" else "许可证.pdf",
                **target,
                **facts,
            }
        }
        answer: dict[str, Any] = (await self.gql(REQUEST, variables, as_=as_))["requestUpload"]
        return answer

    async def put(
        self, ticket: dict[str, Any], data: bytes, *, only: set[int] | None = None
    ) -> httpx.Response:
        """PUT the bytes as the ticket says: whole, or each part (``only`` those numbers)."""
        headers = {h["name"]: h["value"] for h in ticket["headers"]}
        if not ticket["parts"]:
            client = self.http if ticket["url"].startswith("/") else self.outside
            return await client.request(
                ticket["method"], ticket["url"], content=data, headers=headers
            )
        answer = None
        for part in ticket["parts"]:
            if only is None or part["number"] in only:
                piece = data[part["offset"] : part["offset"] + part["size"]]
                answer = await self.outside.put(part["url"], content=piece, headers=headers)
                assert answer.status_code == 200, answer.text
        assert answer is not None
        return answer

    async def confirm(self, upload_id: str, *, as_: str) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.gql(CONFIRM, {"id": upload_id}, as_=as_))[
            "confirmUpload"
        ]
        return answer

    async def fetch(self, url: str) -> httpx.Response:
        client = self.http if url.startswith("/") else self.outside
        return await client.get(url)

    async def deliver(self, data: bytes, *, as_: str, target: dict[str, Any]) -> dict[str, Any]:
        """Request, PUT and confirm: the confirmed upload."""
        asked = await self.request(data, as_=as_, target=target)
        assert asked["errors"] == [], asked
        if asked["ticket"] is not None:
            put = await self.put(asked["ticket"], data)
            assert put.status_code == 200, put.text
        confirmed = await self.confirm(asked["upload"]["id"], as_=as_)
        assert confirmed["errors"] == [], confirmed
        upload: dict[str, Any] = confirmed["upload"]
        return upload


@asynccontextmanager
async def files_client(
    store: ObjectStore,
    clock: Callable[[], datetime],
    tokens: dict[str, str],
    rules: UploadRules | None = None,
) -> AsyncIterator[Files]:
    await store.ensure_ready()
    app = files_app(store, clock, rules or UploadRules.default())
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        httpx.AsyncClient(timeout=30) as outside,
    ):
        yield Files(http=http, outside=outside, tokens=tokens, store=store)
