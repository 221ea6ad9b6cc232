"""The server's garbage-collector setting (see bench/README.md for why it exists)."""

import gc

import pytest

from server.app import tune_gc
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
