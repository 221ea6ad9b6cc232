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
