"""Object store fixtures: an S3 server (moto) for every run, a real MinIO when asked for.

``moto_s3`` serves the S3 protocol over real HTTP on a free port, so the ``minio`` SDK,
presigned URLs included, is exercised as against MinIO. ``real_minio`` is the one opt-in: set
``ONEWINDOW_TEST_MINIO_ENDPOINT`` (host:port), ``ONEWINDOW_TEST_MINIO_ACCESS_KEY``,
``ONEWINDOW_TEST_MINIO_SECRET_KEY`` and optionally ``ONEWINDOW_TEST_MINIO_SECURE=1``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from storage.minio_store import MinioObjectStore, open_minio_store

MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing-secret"
REGION = "us-east-1"
REAL_MINIO_VARIABLES = (
    "ONEWINDOW_TEST_MINIO_ENDPOINT",
    "ONEWINDOW_TEST_MINIO_ACCESS_KEY",
    "ONEWINDOW_TEST_MINIO_SECRET_KEY",
)


def fresh_bucket() -> str:
    """A bucket name no other test uses (the moto server lives for the whole session)."""
    return f"onewindow-test-{uuid.uuid4().hex[:16]}"


def make_minio_store(endpoint: str, bucket: str) -> MinioObjectStore:
    """A store on ``bucket`` at a moto (or other test) endpoint, over plain http."""
    return open_minio_store(
        endpoint=endpoint,
        access_key=MOTO_ACCESS_KEY,
        secret_key=MOTO_SECRET_KEY,
        bucket=bucket,
        region=REGION,
        secure=False,
    )


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """``host:port`` of an S3 server (moto) running in a thread for the session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def real_minio() -> Iterator[MinioObjectStore]:
    """A store on a fresh bucket of a real MinIO, emptied and removed afterwards."""
    missing = [name for name in REAL_MINIO_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.skip(
            "real MinIO not configured: set "
            + ", ".join(REAL_MINIO_VARIABLES)
            + " (and ONEWINDOW_TEST_MINIO_SECURE=1 for https) to run against it"
        )
    store = open_minio_store(
        endpoint=os.environ["ONEWINDOW_TEST_MINIO_ENDPOINT"],
        access_key=os.environ["ONEWINDOW_TEST_MINIO_ACCESS_KEY"],
        secret_key=os.environ["ONEWINDOW_TEST_MINIO_SECRET_KEY"],
        bucket=fresh_bucket(),
        region=os.environ.get("ONEWINDOW_TEST_MINIO_REGION", REGION),
        secure=os.environ.get("ONEWINDOW_TEST_MINIO_SECURE", "").lower() in {"1", "true", "yes"},
    )
    try:
        yield store
    finally:
        client = store.client
        with contextlib.suppress(Exception):
            if client.bucket_exists(store.bucket):
                for item in client.list_objects(store.bucket, recursive=True):
                    client.remove_object(store.bucket, item.object_name)
                client.remove_bucket(store.bucket)
