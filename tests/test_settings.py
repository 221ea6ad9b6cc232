"""Settings from the environment: defaults, and a clear message for each bad value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError, ensure_database_folder, sqlite_path


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == "sqlite://var/onewindow.sqlite3"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.token_ttl == timedelta(hours=12)
    assert settings.log_level == "info"


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ONEWINDOW_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/onewindow",
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "ONEWINDOW_TOKEN_TTL_HOURS": "48",
            "ONEWINDOW_LOG_LEVEL": "DEBUG",
        }
    )
    assert settings.database_url == "postgres://postgres@127.0.0.1:5432/onewindow"
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.token_ttl == timedelta(hours=48)
    assert settings.log_level == "debug"


def test_empty_values_mean_the_default() -> None:
    assert Settings.from_env({"PORT": "", "ONEWINDOW_LOG_LEVEL": " "}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "abc", "a whole number from 1 to 65535"),
        ("PORT", "0", "a whole number from 1 to 65535"),
        ("PORT", "65536", "a whole number from 1 to 65535"),
        ("ONEWINDOW_TOKEN_TTL_HOURS", "0", "a whole number from 1 to"),
        ("ONEWINDOW_TOKEN_TTL_HOURS", "1.5", "a whole number from 1 to"),
        ("ONEWINDOW_LOG_LEVEL", "loud", "one of critical, error, warning, info, debug"),
        ("ONEWINDOW_DATABASE_URL", "mysql://x/y", "a sqlite:// or postgres:// URL"),
        ("HOST", "local host", "a host name or IP address"),
    ],
)
def test_bad_values_name_variable_value_and_expectation(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} is not valid; expected ")
    assert expected in message
    assert caught.value.variable == variable


def test_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert Settings.from_env().port == 8123


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/nested/dir/db.sqlite3"
    assert sqlite_path(url) == tmp_path / "nested/dir/db.sqlite3"
    ensure_database_folder(url)
    assert (tmp_path / "nested/dir").is_dir()
    assert sqlite_path("sqlite://:memory:") is None
    assert sqlite_path("postgres://h/db") is None
    assert sqlite_path("sqlite://var/onewindow.sqlite3") == Path("var/onewindow.sqlite3")


def test_object_store_settings() -> None:
    local = Settings.from_env({"ONEWINDOW_OBJECT_DIR": "/srv/objects"})
    assert local.object_dir == Path("/srv/objects") and local.minio_endpoint == ""
    minio = Settings.from_env(
        {
            "ONEWINDOW_MINIO_ENDPOINT": "minio:9000",
            "ONEWINDOW_MINIO_ACCESS_KEY": "onewindow",
            "ONEWINDOW_MINIO_SECRET_KEY": "secret-key",
            "ONEWINDOW_MINIO_BUCKET": "dezhou-files",
            "ONEWINDOW_MINIO_SECURE": "true",
            "ONEWINDOW_PHOTO_MAX_MB": "10",
            "ONEWINDOW_UPLOAD_TICKET_SECONDS": "600",
        }
    )
    assert (minio.minio_endpoint, minio.minio_bucket, minio.minio_secure) == (
        "minio:9000",
        "dezhou-files",
        True,
    )
    assert minio.photo_max_mb == 10 and minio.upload_ticket_seconds == 600
    assert "secret-key" not in repr(minio)


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({"ONEWINDOW_MINIO_ENDPOINT": "http://minio:9000"}, "ONEWINDOW_MINIO_ENDPOINT", "scheme"),
        ({"ONEWINDOW_MINIO_ENDPOINT": "minio:9000"}, "ONEWINDOW_MINIO_ACCESS_KEY", "both set"),
        ({"ONEWINDOW_MINIO_BUCKET": "Bad_Bucket"}, "ONEWINDOW_MINIO_BUCKET", "lowercase"),
        ({"ONEWINDOW_MINIO_SECURE": "maybe"}, "ONEWINDOW_MINIO_SECURE", "1 or 0"),
        ({"ONEWINDOW_PHOTO_MAX_MB": "0"}, "ONEWINDOW_PHOTO_MAX_MB", "from 1"),
        ({"ONEWINDOW_MINIO_PUBLIC_URL": "files.cn"}, "ONEWINDOW_MINIO_PUBLIC_URL", "http(s)"),
    ],
)
def test_bad_object_store_settings(env: dict[str, str], variable: str, hint: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert refused.value.variable == variable and hint in str(refused.value)


def test_instance_settings() -> None:
    alone = Settings.from_env({})
    assert (alone.redis_url, alone.redis_prefix, alone.log_format) == ("", "onewindow", "json")
    assert alone.forwarded_allow_ips == "127.0.0.1" and alone.shutdown_seconds == 20
    several = Settings.from_env(
        {
            "ONEWINDOW_REDIS_URL": "redis://:s3cret@redis:6379/0",
            "ONEWINDOW_REDIS_PREFIX": "dezhou-prod",
            "ONEWINDOW_LOG_FORMAT": "TEXT",
            "ONEWINDOW_SHUTDOWN_SECONDS": "30",
            "ONEWINDOW_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 172.18.0.2",
        }
    )
    assert several.redis_url == "redis://:s3cret@redis:6379/0"
    assert "s3cret" not in repr(several)
    assert (several.redis_prefix, several.log_format, several.shutdown_seconds) == (
        "dezhou-prod",
        "text",
        30,
    )
    assert several.forwarded_allow_ips == "10.0.0.0/8,172.18.0.2"
    assert Settings.from_env({"ONEWINDOW_FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == "*"


@pytest.mark.parametrize(
    ("variable", "value", "hint"),
    [
        ("ONEWINDOW_REDIS_URL", "127.0.0.1:6379", "redis://"),
        ("ONEWINDOW_REDIS_PREFIX", "one window", "letters, digits"),
        ("ONEWINDOW_LOG_FORMAT", "xml", "json"),
        ("ONEWINDOW_SHUTDOWN_SECONDS", "0", "from 1 to 600"),
        ("ONEWINDOW_FORWARDED_ALLOW_IPS", "proxy.local", "addresses"),
    ],
)
def test_bad_instance_settings(variable: str, value: str, hint: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    assert refused.value.variable == variable and hint in str(refused.value)
