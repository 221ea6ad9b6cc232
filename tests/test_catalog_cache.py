"""The in-memory catalog snapshot follows the catalog's generation, not a timer: a load that
changes something is seen at the next check (every instance checks at most every 0.5 s, see
tests/test_instances.py), a load that changes nothing costs no new snapshot."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from approval.catalog.load import load_catalog
from approval.catalog.parse import Catalog, load_default_catalog
from approval.core import generations
from schema.core.catalog_cache import CatalogCache

pytestmark = pytest.mark.usefixtures("clean_catalog")


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def renamed(catalog: Catalog, code: str, name: str) -> Catalog:
    departments = tuple(
        dataclasses.replace(d, name=name) if d.code == code else d for d in catalog.departments
    )
    return dataclasses.replace(catalog, departments=departments)


def name_of(snapshot: object, code: str) -> str:
    departments = snapshot.departments.values()  # type: ignore[attr-defined]
    return next(d.name for d in departments if d.code == code)


async def test_a_changing_load_is_seen_at_the_next_check_and_only_then() -> None:
    shipped = load_default_catalog()
    await load_catalog(shipped)
    ticks = Ticks()
    cache = CatalogCache(check_every=0.5, clock=ticks)
    original = name_of(await cache.current(), "fgw")
    assert cache.reads == 1

    before = await generations.current(generations.CATALOG)
    report = await load_catalog(renamed(shipped, "fgw", "德州市发展和改革委员会(新)"))
    assert report.changed
    assert await generations.current(generations.CATALOG) == before + 1

    ticks.now += 0.4  # not yet time to check: the old snapshot, no query
    assert name_of(await cache.current(), "fgw") == original
    ticks.now += 0.1
    assert name_of(await cache.current(), "fgw") == "德州市发展和改革委员会(新)"
    assert cache.reads == 2


async def test_an_unchanged_load_keeps_the_generation_and_the_snapshot() -> None:
    shipped = load_default_catalog()
    await load_catalog(shipped)
    ticks = Ticks()
    cache = CatalogCache(check_every=0.5, clock=ticks)
    first = await cache.current()
    before = await generations.current(generations.CATALOG)
    assert not (await load_catalog(shipped)).changed
    assert await generations.current(generations.CATALOG) == before
    ticks.now += 5
    assert await cache.current() is first
    assert cache.reads == 1


async def test_concurrent_requests_read_one_snapshot() -> None:
    await load_catalog(load_default_catalog())
    cache = CatalogCache(check_every=0.5, clock=Ticks())
    snapshots = await asyncio.gather(*(cache.current() for _ in range(20)))
    assert all(s is snapshots[0] for s in snapshots)
    assert cache.reads == 1


async def test_advancing_a_new_generation_counts_every_call(database: str) -> None:
    name = f"test-{id(object())}"
    assert await generations.current(name) == 0
    await asyncio.gather(*(generations.advance(name) for _ in range(5)))
    assert await generations.current(name) == 5
