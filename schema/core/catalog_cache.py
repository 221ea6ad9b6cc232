"""The catalog as the API reads it: a snapshot of the small catalog tables kept in memory.

Catalog rows change only when an admin loads the catalog, but every task, material and stage
refers to them; reading them from memory lets those fields resolve without a round trip. A load
that changes the catalog raises its generation (:mod:`approval.core.generations`); the cache
looks the generation up at most every ``check_every`` seconds and reads the snapshot again when
it moved, so a change made by any process (`onewindow load-catalog`, another instance) reaches
every running instance within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from approval.core import generations
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
    def __init__(
        self, *, check_every: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.check_every = check_every
        self.clock = clock
        self.reads = 0  # snapshots read so far (tests and metrics)
        self._snapshot: CatalogSnapshot | None = None
        self._generation = 0
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> CatalogSnapshot:
        if self._snapshot is not None and self.clock() - self._checked_at < self.check_every:
            return self._snapshot
        async with self._lock:  # one request checks (and reads), the others wait for it
            if self._snapshot is None or self.clock() - self._checked_at >= self.check_every:
                # The generation first: a load committed in between makes the next check read
                # again, never the other way round.
                generation = await generations.current(generations.CATALOG)
                if self._snapshot is None or generation != self._generation:
                    self._snapshot = await read_snapshot()
                    self._generation = generation
                    self.reads += 1
                self._checked_at = self.clock()
            return self._snapshot
