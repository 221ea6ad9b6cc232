"""``python -m tests.migrate_process DATABASE_URL [TARGET]`` applies the migrations up to
``TARGET`` (``models.0014_setup_task_round``; every one when left out), in a process of its own
so that the test process's database connections are left alone."""

from __future__ import annotations

import asyncio
import sys

from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api

from storage.db import tortoise_config


async def main(url: str, target: str | None) -> None:
    try:
        await migrate_api(config=tortoise_config(url), target=target)
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
