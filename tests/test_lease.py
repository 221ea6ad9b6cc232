"""Leases and the supervisor loop: one holder at a time, and exactly-once whatever the lease."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from approval.core import lease
from approval.oversight.supervision import SupervisionSettings
from server.scheduler import LEASE_NAME, Supervisor, running_supervisor
from server.settings import Settings, SettingsError
from storage.enums import StageStatus
from storage.models import AuditEvent, Lease, Stage, SupervisionEvent, Task
from tests.conftest import Clock
from tests.helpers import db_id
from tests.supervision_support import accepted, at

TTL = timedelta(seconds=90)


async def test_a_free_lease_is_taken_renewed_by_its_holder_and_refused_to_others(catalog):
    now = at("2026-03-02")
    assert await lease.acquire(name="job", holder="a", now=now, ttl=TTL)
    assert not await lease.acquire(name="job", holder="b", now=now + timedelta(seconds=30), ttl=TTL)
    assert await lease.acquire(name="job", holder="a", now=now + timedelta(seconds=60), ttl=TTL)
    row = await Lease.get(name="job")
    assert row.holder == "a" and row.expires_at == now + timedelta(seconds=150)
    assert await lease.holder_of(name="job", now=now + timedelta(seconds=100)) == "a"
    # 'a' stops renewing: once expired, 'b' takes it over
    assert not await lease.acquire(
        name="job", holder="b", now=now + timedelta(seconds=149), ttl=TTL
    )
    assert await lease.acquire(name="job", holder="b", now=now + timedelta(seconds=150), ttl=TTL)
    assert not await lease.acquire(
        name="job", holder="a", now=now + timedelta(seconds=151), ttl=TTL
    )
    assert await lease.acquire(name="other-job", holder="a", now=now, ttl=TTL)


async def test_only_the_holder_releases(catalog):
    now = at("2026-03-02")
    assert await lease.acquire(name="job", holder="a", now=now, ttl=TTL)
    assert not await lease.release(name="job", holder="b")
    assert await lease.release(name="job", holder="a")
    assert await lease.holder_of(name="job", now=now) is None
    assert await lease.acquire(name="job", holder="b", now=now, ttl=TTL)
    with pytest.raises(ValueError, match="positive"):
        await lease.acquire(name="job", holder="b", now=now, ttl=timedelta(0))


@pytest.mark.parametrize("expired", [False, True])
async def test_concurrent_takers_never_both_hold_it(catalog, expired):
    now = at("2026-03-02")
    if expired:
        await Lease.create(name="job", holder="gone", expires_at=now - timedelta(seconds=1))
    results = await asyncio.gather(
        *(lease.acquire(name="job", holder=f"h{i}", now=now, ttl=TTL) for i in range(8))
    )
    assert results.count(True) == 1
    winner = f"h{results.index(True)}"
    assert (await Lease.get(name="job")).holder == winner


# --- the loop --------------------------------------------------------------------------------


def supervisor(holder: str, clock: Clock, **extra: object) -> Supervisor:
    return Supervisor(
        interval_seconds=60,
        settings=SupervisionSettings(),
        clock=clock,
        holder=holder,
        **extra,  # type: ignore[arg-type]
    )


async def test_two_scheduler_loops_approve_once_and_only_the_holder_scans(gql, clock):
    _, stage = await accepted(gql)
    clock.now = at("2026-03-17")
    published: list[list[str]] = []

    async def on_events(events: list[SupervisionEvent]) -> None:
        published.append([e.key for e in events])

    async def tick(seconds: float) -> None:  # no sleeping: the clock moves by hand
        clock.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    a = supervisor("process-a", clock, on_events=on_events, sleep=tick)
    b = supervisor("process-b", clock, on_events=on_events, sleep=tick)
    await asyncio.gather(a.run(iterations=3), b.run(iterations=3))
    tasks = await Task.filter(stage_id=db_id(stage["id"]))
    assert all(t.default_approved for t in tasks)
    assert await AuditEvent.filter(action="task.default_approve").count() == len(tasks)
    assert await AuditEvent.filter(action="stage.complete").count() == 1
    flat = [key for batch in published for key in batch]
    assert len(flat) == len(set(flat)) == await SupervisionEvent.all().count()
    assert (await Stage.get(id=db_id(stage["id"]))).status is StageStatus.COMPLETED
    assert not await Lease.exists()  # both gave the lease back when they stopped


async def test_exactly_once_does_not_depend_on_the_lease(gql, clock):
    """Two processes that both believe they hold it (one stalled past its lease)."""
    _, stage = await accepted(gql)
    clock.now = at("2026-03-17")
    a = supervisor("process-a", clock, lease_ttl=timedelta(seconds=1))
    b = supervisor("process-b", clock, lease_ttl=timedelta(seconds=1))
    assert await lease.acquire(name=LEASE_NAME, holder="process-a", now=clock(), ttl=TTL)
    assert await b.run_once() == []  # a holds it
    await Lease.all().delete()  # a's lease lapsed while a still scans
    first, second = await asyncio.gather(a.run_once(), b.run_once())
    keys = [e.key for e in first + second]
    assert len(keys) == len(set(keys))
    tasks = await Task.filter(stage_id=db_id(stage["id"]))
    assert await AuditEvent.filter(action="task.default_approve").count() == len(tasks)


async def test_a_failing_scan_or_publisher_does_not_stop_the_loop(gql, clock, caplog):
    await accepted(gql)
    clock.now = at("2026-03-17")
    calls = 0

    async def broken(events: list[SupervisionEvent]) -> None:
        raise RuntimeError("subscriber gone")

    async def no_wait(seconds: float) -> None:
        nonlocal calls
        calls += 1

    loop = supervisor("process-a", clock, on_events=broken, sleep=no_wait)
    with caplog.at_level(logging.ERROR, logger="onewindow.scheduler"):
        await loop.run(iterations=2)
    assert "publishing" in caplog.text and calls == 1
    assert await SupervisionEvent.exists()


async def test_running_supervisor_is_off_at_zero_seconds(catalog, clock):
    async with running_supervisor(Settings(supervise_seconds=0), clock) as none:
        assert none is None
    async with running_supervisor(Settings(supervise_seconds=3600), clock) as running:
        assert running is not None and running.interval_seconds == 3600
        for _ in range(100):  # the first scan runs at once, then the loop waits an hour
            if await Lease.exists():
                break
            await asyncio.sleep(0.01)
        assert await lease.holder_of(name=LEASE_NAME, now=clock()) == running.holder
    assert not await Lease.exists()


def test_settings_from_the_environment():
    assert Settings.from_env({}).supervise_seconds == 60
    assert Settings.from_env({}).warn_working_days == 1
    settings = Settings.from_env(
        {"ONEWINDOW_SUPERVISE_SECONDS": "0", "ONEWINDOW_WARN_WORKING_DAYS": "3"}
    )
    assert settings.supervise_seconds == 0 and settings.warn_working_days == 3
    with pytest.raises(SettingsError, match="ONEWINDOW_SUPERVISE_SECONDS"):
        Settings.from_env({"ONEWINDOW_SUPERVISE_SECONDS": "-5"})
    with pytest.raises(SettingsError, match="ONEWINDOW_WARN_WORKING_DAYS"):
        Settings.from_env({"ONEWINDOW_WARN_WORKING_DAYS": "many"})
