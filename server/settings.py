"""Settings read from the environment; nothing is read at import time."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from server.web import default_web_dir

DEFAULT_DATABASE_URL = "sqlite://var/onewindow.sqlite3"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("json", "text")
ENVIRONMENTS = ("development", "production")
MAX_TOKEN_TTL_HOURS = 24 * 366


class SettingsError(ValueError):
    """A bad environment variable: names the variable, the value and what is expected."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        super().__init__(f"{variable}={value!r} is not valid; expected {expected}")
        self.variable = variable
        self.value = value
        self.expected = expected


def _int_in_range(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    expected = f"a whole number from {low} to {high}"
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(name, raw, expected) from None
    if not low <= value <= high:
        raise SettingsError(name, raw, expected)
    return value


def _database_url(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_DATABASE_URL"
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_DATABASE_URL
    if not raw.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise SettingsError(
            name,
            raw,
            "a sqlite:// or postgres:// URL, e.g. sqlite://var/onewindow.sqlite3 or "
            "postgres://user:password@127.0.0.1:5432/onewindow",
        )
    return raw


def _log_level(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_LOG_LEVEL"
    raw = env.get(name, "").strip()
    if not raw:
        return "info"
    if raw.lower() not in LOG_LEVELS:
        raise SettingsError(name, raw, f"one of {', '.join(LOG_LEVELS)}")
    return raw.lower()


def _log_format(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_LOG_FORMAT"
    raw = env.get(name, "").strip()
    if not raw:
        return "json"
    if raw.lower() not in LOG_FORMATS:
        raise SettingsError(
            name, raw, "json (one JSON object a line, for log collectors) or text (for people)"
        )
    return raw.lower()


def _environment(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_ENV"
    raw = env.get(name, "").strip().lower() or "development"
    if raw not in ENVIRONMENTS:
        raise SettingsError(
            name,
            raw,
            "development (the default) or production (no GraphiQL or "
            "introspection, a Content-Security-Policy, no demo accounts or default secrets)",
        )
    return raw


def _redis_url(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_REDIS_URL"
    raw = env.get(name, "").strip()
    if raw and (
        not raw.startswith(("redis://", "rediss://", "unix://")) or any(c.isspace() for c in raw)
    ):
        raise SettingsError(
            name,
            raw,
            "a redis://, rediss:// or unix:// URL, e.g. redis://127.0.0.1:6379/0 "
            "(empty: one instance, no Redis)",
        )
    return raw


def _redis_prefix(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_REDIS_PREFIX"
    raw = env.get(name, "").strip() or "onewindow"
    valid = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
    if len(raw) > 64 or not set(raw) <= valid:
        raise SettingsError(
            name, raw, "1-64 letters, digits, '_', '-' or '.', the same on every instance"
        )
    return raw


def _forwarded_allow_ips(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_FORWARDED_ALLOW_IPS"
    raw = env.get(name, "").strip()
    if not raw:
        return "127.0.0.1"
    if raw == "*":
        return raw
    for part in raw.split(","):
        try:
            ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise SettingsError(
                name,
                raw,
                "the addresses (or networks) of the proxies whose X-Forwarded-For is believed, "
                "comma-separated, e.g. 127.0.0.1,10.0.0.0/8, or * where only the proxy can "
                "reach the instances",
            ) from None
    return ",".join(part.strip() for part in raw.split(","))


def _host(env: Mapping[str, str]) -> str:
    raw = env.get("HOST", "").strip()
    if raw and any(ch.isspace() for ch in raw):
        raise SettingsError("HOST", raw, "a host name or IP address, e.g. 127.0.0.1 or 0.0.0.0")
    return raw or "127.0.0.1"


def _gateway_url(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_SMS_GATEWAY_URL"
    raw = env.get(name, "").strip()
    if raw and (not raw.startswith(("http://", "https://")) or any(c.isspace() for c in raw)):
        raise SettingsError(
            name, raw, "an http:// or https:// URL, e.g. https://sms.example.cn/send (empty: log)"
        )
    return raw


def _endpoint(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_MINIO_ENDPOINT"
    raw = env.get(name, "").strip()
    if raw and ("://" in raw or "/" in raw or any(c.isspace() for c in raw)):
        raise SettingsError(
            name, raw, "host:port of the MinIO server without a scheme, e.g. 127.0.0.1:9000"
        )
    return raw


def _public_url(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_MINIO_PUBLIC_URL"
    raw = env.get(name, "").strip().rstrip("/")
    if raw and (
        not raw.startswith(("http://", "https://"))
        or "/" in raw.split("://", 1)[1]
        or any(c.isspace() for c in raw)
    ):
        raise SettingsError(
            name, raw, "http(s)://host[:port] without a path, e.g. https://files.example.cn"
        )
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, raw, "1 or 0 (true or false)")


def _bucket(env: Mapping[str, str]) -> str:
    name = "ONEWINDOW_MINIO_BUCKET"
    raw = env.get(name, "").strip() or "onewindow"
    valid = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
    if not 3 <= len(raw) <= 63 or not set(raw) <= valid or not raw[0].isalnum():
        raise SettingsError(name, raw, "3-63 lowercase letters, digits, '.' or '-', e.g. onewindow")
    return raw


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    token_ttl: timedelta = timedelta(hours=12)
    log_level: str = "info"
    log_format: str = "json"  # one JSON object a line; "text" for people
    supervise_seconds: int = 60  # 电子监察 scan interval; 0 turns the supervisor off
    warn_working_days: int = 1  # yellow warning this many working days before a deadline
    sms_gateway_url: str = ""  # empty: messages go to the log
    sms_gateway_key: str = field(default="", repr=False)
    notify_seconds: int = 30  # 0: no notifier loop
    gc_threshold: int = 50_000  # 0 keeps Python's default collector settings
    sync_max_update_bytes: int = 1 << 20  # one CRDT update from a client, at most
    sync_idle_seconds: int = 60  # a document without connections unloads after this
    sync_materialise_ms: int = 300  # rows follow the document this long after the last edit
    sync_sweep_seconds: int = 10  # documents whose rows lag their log are written; 0: never
    # Photos and material files: a local folder unless a MinIO endpoint is given.
    object_dir: Path = Path("var/objects")
    minio_endpoint: str = ""
    minio_access_key: str = field(default="", repr=False)
    minio_secret_key: str = field(default="", repr=False)
    minio_bucket: str = "onewindow"
    minio_region: str = "us-east-1"
    minio_secure: bool = False
    minio_public_url: str = ""  # where tablets and browsers reach MinIO, when not the endpoint
    upload_ticket_seconds: int = 900  # how long a ticket (presigned PUT) stays valid
    download_url_seconds: int = 300  # how long a presigned GET made at query time stays valid
    photo_max_mb: int = 25
    material_max_mb: int = 200
    upload_part_mb: int = 16  # larger files go to MinIO in parts of this size
    # Several instances: they cooperate through Redis (empty: one instance, nothing shared).
    redis_url: str = field(default="", repr=False)
    redis_prefix: str = "onewindow"  # every key and channel name starts with it
    shutdown_seconds: int = 20  # requests in flight may finish this long after SIGTERM
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For names the client
    web_dir: Path = field(default_factory=default_web_dir)  # the built web apps (make web)
    graphiql: bool = True  # the self-hosted GraphiQL page at GET /graphql for browsers
    max_body_kb: int = 1024  # the largest request body (uploads keep their own limits)
    environment: str = "development"  # "production": see server.production
    request_seconds: int = 15  # the time budget of one GraphQL query or mutation
    refusal_pause_ms: int = 1000  # an abusive request's refusal is held this long

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (the process environment when None); SettingsError if bad."""
        env = os.environ if env is None else env
        hours = _int_in_range(env, "ONEWINDOW_TOKEN_TTL_HOURS", 12, 1, MAX_TOKEN_TTL_HOURS)
        settings = cls(
            database_url=_database_url(env),
            host=_host(env),
            port=_int_in_range(env, "PORT", 8000, 1, 65535),
            token_ttl=timedelta(hours=hours),
            log_level=_log_level(env),
            log_format=_log_format(env),
            supervise_seconds=_int_in_range(env, "ONEWINDOW_SUPERVISE_SECONDS", 60, 0, 86400),
            warn_working_days=_int_in_range(env, "ONEWINDOW_WARN_WORKING_DAYS", 1, 0, 30),
            sms_gateway_url=_gateway_url(env),
            sms_gateway_key=env.get("ONEWINDOW_SMS_GATEWAY_KEY", "").strip(),
            notify_seconds=_int_in_range(env, "ONEWINDOW_NOTIFY_SECONDS", 30, 0, 86400),
            gc_threshold=_int_in_range(env, "ONEWINDOW_GC_THRESHOLD", 50_000, 0, 10_000_000),
            sync_max_update_bytes=_int_in_range(
                env, "ONEWINDOW_SYNC_MAX_UPDATE_BYTES", 1 << 20, 1024, 64 << 20
            ),
            sync_idle_seconds=_int_in_range(env, "ONEWINDOW_SYNC_IDLE_SECONDS", 60, 1, 86400),
            sync_materialise_ms=_int_in_range(env, "ONEWINDOW_SYNC_MATERIALISE_MS", 300, 0, 10_000),
            sync_sweep_seconds=_int_in_range(env, "ONEWINDOW_SYNC_SWEEP_SECONDS", 10, 0, 3600),
            object_dir=Path(env.get("ONEWINDOW_OBJECT_DIR", "").strip() or "var/objects"),
            minio_endpoint=_endpoint(env),
            minio_access_key=env.get("ONEWINDOW_MINIO_ACCESS_KEY", "").strip(),
            minio_secret_key=env.get("ONEWINDOW_MINIO_SECRET_KEY", "").strip(),
            minio_bucket=_bucket(env),
            minio_region=env.get("ONEWINDOW_MINIO_REGION", "").strip() or "us-east-1",
            minio_secure=_flag(env, "ONEWINDOW_MINIO_SECURE", False),
            minio_public_url=_public_url(env),
            upload_ticket_seconds=_int_in_range(
                env, "ONEWINDOW_UPLOAD_TICKET_SECONDS", 900, 30, 7 * 86400
            ),
            download_url_seconds=_int_in_range(
                env, "ONEWINDOW_DOWNLOAD_URL_SECONDS", 300, 10, 7 * 86400
            ),
            photo_max_mb=_int_in_range(env, "ONEWINDOW_PHOTO_MAX_MB", 25, 1, 1024),
            material_max_mb=_int_in_range(env, "ONEWINDOW_MATERIAL_MAX_MB", 200, 1, 5120),
            upload_part_mb=_int_in_range(env, "ONEWINDOW_UPLOAD_PART_MB", 16, 5, 1024),
            redis_url=_redis_url(env),
            redis_prefix=_redis_prefix(env),
            shutdown_seconds=_int_in_range(env, "ONEWINDOW_SHUTDOWN_SECONDS", 20, 1, 600),
            forwarded_allow_ips=_forwarded_allow_ips(env),
            web_dir=Path(env.get("ONEWINDOW_WEB_DIR", "").strip() or default_web_dir()),
            graphiql=_flag(env, "ONEWINDOW_GRAPHIQL", True),
            max_body_kb=_int_in_range(env, "ONEWINDOW_MAX_BODY_KB", 1024, 16, 1 << 20),
            environment=_environment(env),
            request_seconds=_int_in_range(env, "ONEWINDOW_REQUEST_SECONDS", 15, 1, 3600),
            refusal_pause_ms=_int_in_range(env, "ONEWINDOW_REFUSAL_PAUSE_MS", 1000, 0, 10_000),
        )
        if settings.minio_endpoint and not (
            settings.minio_access_key and settings.minio_secret_key
        ):
            raise SettingsError(
                "ONEWINDOW_MINIO_ACCESS_KEY",
                settings.minio_access_key,
                "the access key and ONEWINDOW_MINIO_SECRET_KEY of the MinIO server named by "
                "ONEWINDOW_MINIO_ENDPOINT (both set)",
            )
        return settings


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite://`` URL (relative to the working directory), else None."""
    if not database_url.startswith("sqlite://"):
        return None
    location = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location)


def ensure_database_folder(database_url: str) -> None:
    """Create the folder a SQLite file lives in, so the first start needs no manual step."""
    path = sqlite_path(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
