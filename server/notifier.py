"""The notifier loop: every few seconds, collect new messages into the outbox and deliver them.

Started from the app's lifespan (``ONEWINDOW_NOTIFY_SECONDS``, 0 turns it off). Several server
processes may each run one: collecting is idempotent by key and delivery claims each row, so
nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from approval.oversight import notifications
from approval.oversight.delivery import Channel, DeliveryReport, HttpSmsChannel, LogChannel, deliver
from server.settings import Settings

log = logging.getLogger("onewindow.notifier")

Clock = Callable[[], datetime]


def channel_from_settings(settings: Settings) -> Channel:
    """The HTTP gateway when a URL is set, else the log."""
    if settings.sms_gateway_url:
        return HttpSmsChannel(url=settings.sms_gateway_url, key=settings.sms_gateway_key)
    return LogChannel()


@dataclass
class Notifier:
    channel: Channel
    clock: Clock
    interval: float = 30.0
    batch: int = 50

    async def tick(self) -> tuple[int, DeliveryReport]:
        """One pass: collect, then deliver what is due now."""
        now = self.clock()
        created = await notifications.collect(now=now)
        report = await deliver(channel=self.channel, now=now, batch=self.batch)
        return created, report

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop outlives a bad pass (database restart, bug)
                log.exception("notifier pass failed; trying again in %s s", self.interval)
            await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def running_notifier(
    settings: Settings, clock: Clock, *, channel: Channel | None = None
) -> AsyncIterator[Notifier | None]:
    """Run the notifier in the background for the duration of the block (None when off)."""
    if settings.notify_seconds <= 0:
        yield None
        return
    notifier = Notifier(
        channel=channel or channel_from_settings(settings),
        clock=clock,
        interval=float(settings.notify_seconds),
    )
    task = asyncio.create_task(notifier.run(), name="onewindow-notifier")
    log.info("notifier started, every %d s", settings.notify_seconds)
    try:
        yield notifier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if isinstance(notifier.channel, HttpSmsChannel):
            await notifier.channel.aclose()
        log.info("notifier stopped")
