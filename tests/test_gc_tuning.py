"""The server's garbage-collector setting (see bench/README.md for why it exists)."""

import asyncio
import gc

import pytest

from server.app import MemoryTrim, malloc_trim, tune_gc
from server.settings import Settings, SettingsError


def test_gc_threshold_setting_default_override_and_refusal() -> None:
    assert Settings.from_env({}).gc_threshold == 50_000
    assert Settings.from_env({"ONEWINDOW_GC_THRESHOLD": "0"}).gc_threshold == 0
    with pytest.raises(SettingsError, match="ONEWINDOW_GC_THRESHOLD"):
        Settings.from_env({"ONEWINDOW_GC_THRESHOLD": "-5"})


def test_tune_gc_sets_the_threshold_and_zero_leaves_python_alone() -> None:
    before = gc.get_threshold()
    try:
        tune_gc(0)
        assert gc.get_threshold() == before
        tune_gc(12_345)
        assert gc.get_threshold() == (12_345, 20, 100)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_memory_of_unloaded_rooms_is_trimmed_once_per_delay() -> None:
    calls: list[int] = []
    trim = MemoryTrim(delay=0.01, trim=lambda: calls.append(1))
    trim.soon()
    trim.soon()  # rooms unloading together: one trim
    await asyncio.sleep(0.05)
    assert calls == [1] and trim.trimmed == 1
    trim.soon()
    trim.close()  # the lifespan ends first: nothing runs later
    await asyncio.sleep(0.05)
    assert calls == [1]
    assert malloc_trim() is not None  # glibc, as on the servers (Debian)
