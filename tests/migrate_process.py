"""In a process of its own, so that the test process's database connections are left alone:

- ``python -m tests.migrate_process DATABASE_URL [TARGET]`` applies the migrations up to
  ``TARGET`` (``models.0015_setup_task_rounds``; every one when left out);
- ``python -m tests.migrate_process --changes`` prints what ``tortoise makemigrations`` would
  write for the models as they are (one line per operation; nothing when the migrations are
  current) and exits 1 when there is anything.
"""

from __future__ import annotations

import asyncio
import sys

from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api
from tortoise.migrations.autodetector import MigrationAutodetector

from storage.db import MIGRATIONS_CONFIG, tortoise_config


async def migrate(url: str, target: str | None) -> None:
    try:
        await migrate_api(config=tortoise_config(url), target=target)
    finally:
        await Tortoise.close_connections()


async def changes() -> list[str]:
    """The operations a new migration would hold (makemigrations' own autodetector)."""
    await Tortoise.init(config=MIGRATIONS_CONFIG)
    try:
        apps = {label: dict(config) for label, config in MIGRATIONS_CONFIG["apps"].items()}
        writers = await MigrationAutodetector(Tortoise.apps, apps).changes()
        return [op.describe() for writer in writers for op in writer.operations]
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    if sys.argv[1] == "--changes":
        pending = asyncio.run(changes())
        print("\n".join(pending))
        sys.exit(1 if pending else 0)
    asyncio.run(migrate(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
