"""``/objects/...``: the HTTP face of the local object store.

With MinIO, clients send and fetch bytes at presigned URLs and never come here. With the
embedded :class:`storage.local_store.LocalObjectStore` the tickets point at this server:

- ``PUT /objects/upload/{token}``: 200 ``{"key", "size"}``; 403 invalid or expired token;
  413 body larger than the ticket allows (refused before reading when Content-Length says so).
- ``GET /objects/{token}`` (and HEAD): the file with Content-Type, Content-Length and
  Content-Disposition; 403 invalid or expired token; 404 no such object.

Errors are JSON ``{"error": code, "message": what to do}``. The store comes from the lifespan
state (``request.state.object_store``); the token is the whole authorisation, so these routes
need no login (a ticket is handed out by an authorised GraphQL mutation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from storage.local_store import LocalObjectStore
from storage.objects import ObjectStoreError, TicketError, content_disposition

log = logging.getLogger("onewindow.server.objects")

STATE_KEY = "object_store"
TICKET_STATUS = {"invalid": 403, "expired": 403, "too_large": 413}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _ticket_error(error: TicketError) -> JSONResponse:
    return _error(TICKET_STATUS.get(error.reason, 403), error.reason, error.message)


def _local_store(request: Request) -> LocalObjectStore | JSONResponse:
    """The lifespan's store when it is the local one, else the JSON answer to give."""
    store = getattr(request.state, STATE_KEY, None)
    if store is None:
        log.error("no object store in the lifespan state (%s)", STATE_KEY)
        return _error(
            503, "unavailable", "this server has no object store configured; try again later"
        )
    if not isinstance(store, LocalObjectStore):
        return _error(404, "not_here", "this server keeps objects in MinIO; use the presigned URL")
    return store


def object_routes(*, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """The routes of the local store's uploads and downloads; ``clock`` judges expiry."""

    async def upload(request: Request) -> Response:
        store = _local_store(request)
        if isinstance(store, JSONResponse):
            return store
        token = request.path_params["token"]
        try:
            grant = store.check_upload(token, now=clock())
        except TicketError as error:
            return _ticket_error(error)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                return _error(400, "bad_request", "Content-Length must be a number of bytes")
            if int(declared) > grant.max_size:
                return _error(
                    413,
                    "too_large",
                    f"the file has {declared} bytes but this ticket allows at most "
                    f"{grant.max_size}; ask for a new ticket with the file's real size",
                )
        try:
            info = await store.receive(token, request.stream(), now=clock())
        except TicketError as error:
            return _ticket_error(error)
        except ClientDisconnect:
            log.info("upload of %s stopped: the client went away", grant.key)
            return Response(status_code=400)
        except ObjectStoreError as error:
            log.error("upload of %s failed: %s", grant.key, error)
            return _error(503, "store_failed", "the server could not store the file; try again")
        return JSONResponse({"key": info.key, "size": info.size})

    async def download(request: Request) -> Response:
        store = _local_store(request)
        if isinstance(store, JSONResponse):
            return store
        try:
            found = store.open_download(request.path_params["token"], now=clock())
        except TicketError as error:
            return _ticket_error(error)
        except ObjectStoreError:
            return _error(
                404, "not_found", "the file is no longer kept here; ask the owner to upload it"
            )
        return FileResponse(
            found.path,
            media_type=found.content_type,
            headers={
                "Content-Disposition": content_disposition(found.file_name),
                "Cache-Control": "private",
                # Uploaded bytes are served from our origin: never let a browser guess a type.
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route("/objects/upload/{token}", upload, methods=["PUT"]),
        Route("/objects/{token}", download, methods=["GET", "HEAD"]),
    ]
