"""Shared fixtures: one migrated test database per session (SQLite by default).

Set ``ONEWINDOW_TEST_DATABASE_URL`` to run against another database; a ``postgres://`` URL
names a database that is dropped and created afresh for the session.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from storage import models
from storage.db import close_database, migrate, open_database

# Catalog and calendar tables, children before parents (the order rows must be deleted in).
CATALOG_MODELS = (
    models.ItemMaterial,
    models.ChecklistTemplate,
    models.ServiceItem,
    models.MaterialType,
    models.StageDefinition,
    models.Department,
    models.Region,
    models.CalendarDay,
    models.CalendarYear,
)


async def _recreate_postgres_database(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to recreate test database {name!r}: use letters, digits, _")
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _delete_regions() -> None:
    """Regions refer to their parent (RESTRICT): delete the leaves first."""
    while await models.Region.exists():
        parents = await models.Region.filter(parent_id__not_isnull=True).values_list(
            "parent_id", flat=True
        )
        await models.Region.exclude(id__in=set(parents)).delete()


async def clear_tables(*tables: type[models.Model]) -> None:
    """Delete every row of ``tables`` (give children before parents)."""
    for table in tables:
        if table is models.Region:
            await _delete_regions()
        else:
            await table.all().delete()


@pytest.fixture(scope="session")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = os.environ.get("ONEWINDOW_TEST_DATABASE_URL") or (
        f"sqlite://{tmp_path_factory.mktemp('db') / 'onewindow.sqlite3'}"
    )
    if url.startswith(("postgres://", "postgresql://")):
        await _recreate_postgres_database(url)
    await migrate(url)
    await open_database(url)
    try:
        yield url
    finally:
        await close_database()


@pytest.fixture
async def clean_catalog(database: str) -> AsyncIterator[None]:
    """An empty catalog and calendar before the test (other tables are left alone)."""
    await clear_tables(*CATALOG_MODELS)
    yield
