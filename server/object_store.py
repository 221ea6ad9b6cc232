"""The object store the settings name: MinIO when an endpoint is given, else a local folder."""

from __future__ import annotations

from datetime import timedelta

from approval.files.uploads import MB, UploadRules
from server.settings import Settings
from storage.enums import ObjectKind
from storage.local_store import LocalObjectStore, load_or_create_secret
from storage.minio_store import open_minio_store
from storage.objects import ObjectStore

SECRET_FILE = ".secret"  # signs the local store's upload and download URLs


def object_store_of(settings: Settings) -> ObjectStore:
    """The store for ``settings``; nothing is contacted until ``ensure_ready``."""
    if settings.minio_endpoint:
        return open_minio_store(
            endpoint=settings.minio_endpoint,
            access_key=settings.minio_access_key,
            secret_key=settings.minio_secret_key,
            bucket=settings.minio_bucket,
            region=settings.minio_region,
            secure=settings.minio_secure,
            public_url=settings.minio_public_url,
        )
    secret = load_or_create_secret(settings.object_dir / SECRET_FILE)
    return LocalObjectStore(settings.object_dir, secret=secret)


def upload_rules_of(settings: Settings) -> UploadRules:
    return UploadRules(
        max_bytes={
            ObjectKind.PHOTO: settings.photo_max_mb * MB,
            ObjectKind.MATERIAL: settings.material_max_mb * MB,
        },
        ticket_ttl=timedelta(seconds=settings.upload_ticket_seconds),
        url_ttl=timedelta(seconds=settings.download_url_seconds),
        part_size=settings.upload_part_mb * MB,
    )
