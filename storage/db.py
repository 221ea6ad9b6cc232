"""Database configuration, start-up and migrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api

MODELS_MODULE = "storage.models"
MIGRATIONS_MODULE = "storage.migrations"

# Used only by `tortoise makemigrations` (see [tool.tortoise] in pyproject.toml): a developer's
# tool that diffs the models against the migration files; it never touches a real database.
MIGRATIONS_CONFIG: dict[str, Any] = {
    "connections": {"default": "sqlite://:memory:"},
    "apps": {
        "models": {"models": [MODELS_MODULE], "migrations": MIGRATIONS_MODULE},
    },
}


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "Asia/Shanghai",
    }


async def open_database(database_url: str) -> None:
    # The global fallback lets every task (uvicorn serves the lifespan and the requests in
    # different tasks) see the connections opened here, as Tortoise's own RegisterTortoise does.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate(
    database_url: str, *, progress: Callable[[str, str, str], object] | None = None
) -> None:
    """Apply every migration not yet applied; safe to run on every start."""
    await migrate_api(config=tortoise_config(database_url), progress=progress)
