"""Delivering the outbox: each notification sent once, retried with backoff, given up at last.

A :class:`Channel` sends one text to one recipient and raises :class:`DeliveryError` when it
did not. :func:`deliver` claims due rows one by one with a conditional UPDATE (the row must
still be pending, due, and at the attempt count read), so two deliverers never send the same
row; the claim pushes ``next_attempt_at`` ahead by a lease while the message is on its way.
A success marks the row sent; a failure schedules the next attempt ``30 s * 2^(n-1)`` later
(capped at an hour) and after ``max_attempts`` marks it failed, with the last error kept.

A process that dies between the gateway's answer and the ``sent`` mark leaves the row to be
retried after the lease: the one case where an SMS can go out twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from storage.enums import NotificationStatus
from storage.models import Notification

log = logging.getLogger("onewindow.delivery")

MAX_ATTEMPTS = 6
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # longer than any gateway timeout
ERROR_LIMIT = 500


class DeliveryError(Exception):
    """The channel could not hand the message over; the text says why."""


class Channel(Protocol):
    async def send(self, *, recipient: str, text: str) -> None: ...


class LogChannel:
    """Writes each message to the log: the default when no SMS gateway is configured."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("onewindow.sms")

    async def send(self, *, recipient: str, text: str) -> None:
        self.log.info("sms to %s: %s", recipient, text)


class HttpSmsChannel:
    """POSTs ``{"to": recipient, "text": text}`` as JSON to an SMS gateway."""

    def __init__(
        self,
        *,
        url: str,
        key: str = "",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.key = key
        self.timeout = timeout
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None

    async def send(self, *, recipient: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            response = await self._client.post(
                self.url,
                json={"to": recipient, "text": text},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            raise DeliveryError(
                f"SMS gateway {self.url} did not answer: {type(error).__name__}: {error}"
            ) from error
        if not response.is_success:
            raise DeliveryError(
                f"SMS gateway {self.url} answered {response.status_code}: {response.text[:200]}"
            )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0  # failed this time, another attempt is scheduled
    failed: int = 0  # failed for the last time
    skipped: int = 0  # another deliverer claimed the row first


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    delay = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_CAP)


async def deliver(
    *,
    channel: Channel,
    now: datetime,
    batch: int = 50,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Send up to ``batch`` due pending notifications through ``channel``."""
    report = DeliveryReport()
    due = (
        await Notification.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .limit(batch)
        .values_list("id", "attempts", "recipient", "text")
    )
    for row_id, attempts, recipient, text in due:
        attempt = int(attempts) + 1
        claimed = await Notification.filter(
            id=row_id,
            status=NotificationStatus.PENDING,
            attempts=attempts,
            next_attempt_at__lte=now,
        ).update(attempts=attempt, next_attempt_at=now + LEASE)
        if not claimed:
            report.skipped += 1
            continue
        try:
            await channel.send(recipient=str(recipient), text=str(text))
        except DeliveryError as error:
            problem = str(error)
        except Exception as error:  # a broken channel must not stop the outbox
            log.exception("notification %s: the channel failed unexpectedly", row_id)
            problem = f"{type(error).__name__}: {error}"
        else:
            await Notification.filter(id=row_id, attempts=attempt).update(
                status=NotificationStatus.SENT, sent_at=now, last_error=""
            )
            report.sent += 1
            continue
        problem = problem[:ERROR_LIMIT]
        if attempt >= max_attempts:
            await Notification.filter(id=row_id, attempts=attempt).update(
                status=NotificationStatus.FAILED, last_error=problem
            )
            log.warning(
                "notification %s failed for good after %d attempts: %s", row_id, attempt, problem
            )
            report.failed += 1
        else:
            await Notification.filter(id=row_id, attempts=attempt).update(
                next_attempt_at=now + backoff(attempt), last_error=problem
            )
            log.info("notification %s attempt %d failed, retrying: %s", row_id, attempt, problem)
            report.retried += 1
    return report
