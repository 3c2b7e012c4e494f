"""The collector setting of the API and the worker (collector.py ``tune_collector``): the young threshold is raised,
never lowered, a switched-off collector stays off, and freezing moves the live heap to the permanent generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from letterhead.collector import YOUNG_GC_THRESHOLD, tune_collector


@pytest.fixture(autouse=True)
def keep_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    tune_collector()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)


def test_never_lowers_a_higher_threshold_or_enables_a_disabled_one() -> None:
    gc.set_threshold(YOUNG_GC_THRESHOLD * 5, 20, 30)
    tune_collector()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD * 5, 20, 30)
    gc.set_threshold(0, 10, 10)
    tune_collector()
    assert gc.get_threshold()[0] == 0


def test_freeze_moves_the_live_heap_out_of_full_collections() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tune_collector(freeze=True)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # modules, classes, functions: everything alive
    assert len(gc.get_objects(generation=2)) < 100  # and the oldest generation has (almost) nothing left to walk
