"""`COLLAB_GC_GEN0_THRESHOLD` (server/gc_tuning.py): a serving node freezes what startup
allocated and collects young garbage less often; 0 leaves CPython's collector alone."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from server.gc_tuning import GEN1_THRESHOLD, GEN2_THRESHOLD, tune_collector
from server.settings import Settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_default_freezes_startup_and_raises_the_thresholds(restored_collector: None) -> None:
    settings = Settings.from_env({})
    assert settings.gc_gen0_threshold == 20_000
    described = tune_collector(settings)
    assert gc.get_threshold() == (20_000, GEN1_THRESHOLD, GEN2_THRESHOLD)
    assert gc.get_freeze_count() > 1000 and "frozen" in described


def test_zero_keeps_cpythons_collector(restored_collector: None) -> None:
    before = gc.get_threshold()
    settings = Settings.from_env({"COLLAB_GC_GEN0_THRESHOLD": "0"})
    assert tune_collector(settings) == "default"
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_garbage_cycles_made_after_the_freeze_are_still_collected(restored_collector: None) -> None:
    """A fresh interpreter (nothing else frozen or collected): cycles made after tuning are freed
    by a collection, frozen objects are not in the collector's generations at all."""
    program = """
import gc, weakref
from server.gc_tuning import tune_collector
from server.settings import Settings
tune_collector(Settings.from_env({}))
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a
alive = weakref.ref(a)
del a, b
gc.collect()
print(alive() is None, gc.get_freeze_count() > 0)
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True"]
