"""An in-process event bus: supervision events pushed to live dashboards (GraphQL subscriptions).

One bus per server process, created with the application and passed explicitly to whoever
publishes (the scheduler, or with several instances the relay that reads every instance's
events from Redis, ``server.event_relay``) and whoever subscribes (the GraphQL context).
Each subscriber has a bounded queue of published batches (one ``publish`` call, however
many events, is one entry); a subscriber that lets ``queue_size`` batches pile up unread is
dropped (its subscription ends, with a log line) rather than letting the queue grow or slowing
the publisher. ``publish`` may be called from any thread: delivery is handed to each
subscriber's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from storage.models import SupervisionEvent

log = logging.getLogger("onewindow.bus")

DEFAULT_QUEUE_SIZE = 100  # unread batches per subscriber


@dataclass(eq=False)
class _Subscriber:
    number: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[list[SupervisionEvent]]
    dropped: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class EventBus:
    """Fan-out of :class:`SupervisionEvent` rows to every current subscriber."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._closed = False
        self.published = 0  # events handed to subscribers so far

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, events: Iterable[SupervisionEvent]) -> int:
        """Hand the events to every subscriber; returns how many subscribers got them."""
        batch = list(events)
        if not batch or self._closed:
            return 0
        self.published += len(batch)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            self._hand_over(subscriber, batch)
        return len(subscribers)

    def _hand_over(self, subscriber: _Subscriber, batch: list[SupervisionEvent]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is subscriber.loop:
            self._deliver(subscriber, batch)
        else:
            try:
                subscriber.loop.call_soon_threadsafe(self._deliver, subscriber, batch)
            except RuntimeError:  # its loop is closed: the subscriber is gone
                self._forget(subscriber)

    def _deliver(self, subscriber: _Subscriber, batch: list[SupervisionEvent]) -> None:
        if subscriber.dropped:
            return
        try:
            subscriber.queue.put_nowait(batch)
        except asyncio.QueueFull:
            subscriber.dropped = True
            subscriber.wake.set()
            self._forget(subscriber)
            log.warning(
                "dropping slow subscriber #%d: %d batches of events queued unread",
                subscriber.number,
                subscriber.queue.qsize(),
            )

    def _forget(self, subscriber: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    async def subscribe(self) -> AsyncIterator[SupervisionEvent]:
        """The events published from now on, until the bus closes or this subscriber is
        dropped for falling behind."""
        subscriber = _Subscriber(
            number=next(self._numbers),
            loop=asyncio.get_running_loop(),
            queue=asyncio.Queue(maxsize=self.queue_size),
        )
        with self._lock:
            if self._closed:
                return
            self._subscribers.add(subscriber)
        log.debug("subscriber #%d joined", subscriber.number)
        try:
            while True:
                getter = asyncio.ensure_future(subscriber.queue.get())
                waker = asyncio.ensure_future(subscriber.wake.wait())
                try:
                    await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                    if not getter.done():
                        getter.cancel()
                if subscriber.dropped or not getter.done() or getter.cancelled():
                    return  # dropped for falling behind, or the bus closed
                for event in getter.result():
                    if subscriber.dropped:
                        return
                    yield event
        finally:
            self._forget(subscriber)
            log.debug("subscriber #%d left", subscriber.number)

    def close(self) -> None:
        """End every subscription (at shutdown); later publishes are ignored."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for subscriber in subscribers:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing to wake
                subscriber.loop.call_soon_threadsafe(subscriber.wake.set)
