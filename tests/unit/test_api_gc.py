"""The API's collector setting (api/app.py ``tune_collector``): the young threshold is raised, never lowered, and
a switched-off collector stays off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from letterhead.api.app import YOUNG_GC_THRESHOLD, tune_collector


@pytest.fixture(autouse=True)
def keep_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


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
