"""The supervisor loop: :func:`approval.oversight.supervision.supervise` every interval.

Every server process runs a :class:`Supervisor`; the one holding the ``supervision`` lease
(a database row, see :mod:`approval.core.lease`) scans, the others wait for it to lapse. The lease
saves duplicate work only: events and system actions stay exactly-once through their keys
and conditional updates even when two processes scan at once. New events go to an optional
``on_events`` callback (e.g. GraphQL subscriptions). The clock and the sleep are injected, so
tests drive the loop without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from approval.core import lease
from approval.oversight.supervision import SupervisionSettings, supervise
from server.cluster import instance_name
from server.settings import Settings
from storage.models import SupervisionEvent

log = logging.getLogger("onewindow.scheduler")

LEASE_NAME = "supervision"
OnEvents = Callable[[list[SupervisionEvent]], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        *,
        interval_seconds: float,
        settings: SupervisionSettings,
        clock: Callable[[], datetime],
        holder: str | None = None,
        on_events: OnEvents | None = None,
        lease_ttl: timedelta | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.interval_seconds = interval_seconds
        self.settings = settings
        self.clock = clock
        self.holder = holder or instance_name()
        self.on_events = on_events
        # Long enough to survive one slow scan, short enough for another process to take
        # over soon after this one dies.
        self.lease_ttl = lease_ttl or timedelta(seconds=max(3 * interval_seconds, 30))
        self.sleep = sleep

    async def run_once(self) -> list[SupervisionEvent]:
        """Scan once if this process holds (or takes) the lease; the events it fired."""
        now = self.clock()
        if not await lease.acquire(
            name=LEASE_NAME, holder=self.holder, now=now, ttl=self.lease_ttl
        ):
            return []
        events = await supervise(now=now, settings=self.settings)
        if events:
            log.info("supervision fired %d event(s)", len(events))
            if self.on_events is not None:
                try:
                    await self.on_events(events)
                except Exception:
                    log.exception("publishing %d supervision event(s) failed", len(events))
        return events

    async def run(self, *, iterations: int | None = None) -> None:
        """Scan every interval until cancelled (or ``iterations`` scans, for tests).

        A failing scan is logged and the loop goes on; the lease is given back at the end.
        """
        done = 0
        try:
            while iterations is None or done < iterations:
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("supervision scan failed; retrying in %ss", self.interval_seconds)
                done += 1
                if iterations is None or done < iterations:
                    await self.sleep(self.interval_seconds)
        finally:
            try:
                await lease.release(name=LEASE_NAME, holder=self.holder)
            except Exception:  # the database may be closing already
                log.debug("could not release the supervision lease", exc_info=True)

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(), name="onewindow-supervisor")


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the loop and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def running_supervisor(
    settings: Settings,
    clock: Callable[[], datetime],
    on_events: OnEvents | None = None,
    *,
    holder: str | None = None,
) -> AsyncIterator[Supervisor | None]:
    """The supervisor loop in the background while the block runs (off when
    ``settings.supervise_seconds`` is 0); ``holder`` names this instance in the lease."""
    if settings.supervise_seconds <= 0:
        yield None
        return
    supervisor = Supervisor(
        interval_seconds=settings.supervise_seconds,
        settings=SupervisionSettings(warn_working_days=settings.warn_working_days),
        clock=clock,
        holder=holder,
        on_events=on_events,
    )
    task = supervisor.start()
    log.info("supervision every %ss as %s", settings.supervise_seconds, supervisor.holder)
    try:
        yield supervisor
    finally:
        await stop(task)
