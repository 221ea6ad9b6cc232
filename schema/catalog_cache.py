"""The catalog as the API reads it: a snapshot of the small catalog tables kept in memory.

Catalog rows change only when an admin loads the catalog, but every task, material and stage
refers to them; reading them from memory lets those fields resolve without a round trip. The
snapshot is refreshed when it is older than ``max_age`` seconds, so a `onewindow load-catalog`
reaches a running server within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.models import Department, MaterialType, Region, ServiceItem, StageDefinition


@dataclass(frozen=True)
class CatalogSnapshot:
    departments: dict[int, Department]
    regions: dict[int, Region]
    stage_definitions: dict[int, StageDefinition]
    service_items: dict[int, ServiceItem]
    material_types: dict[int, MaterialType]


async def read_snapshot() -> CatalogSnapshot:
    departments, regions, definitions, items, types = await asyncio.gather(
        Department.all(),
        Region.all(),
        StageDefinition.all(),
        ServiceItem.all(),
        MaterialType.all(),
    )
    return CatalogSnapshot(
        departments={d.id: d for d in departments},
        regions={r.id: r for r in regions},
        stage_definitions={s.id: s for s in definitions},
        service_items={i.id: i for i in items},
        material_types={t.id: t for t in types},
    )


class CatalogCache:
    def __init__(self, *, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._snapshot: CatalogSnapshot | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> CatalogSnapshot:
        if self._snapshot is not None and self.clock() - self._read_at < self.max_age:
            return self._snapshot
        async with self._lock:  # one reader refreshes, the others wait for it
            if self._snapshot is None or self.clock() - self._read_at >= self.max_age:
                self._snapshot = await read_snapshot()
                self._read_at = self.clock()
            return self._snapshot
