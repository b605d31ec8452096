"""Bulk steps run without Python's cycle collector and give it back as they found it (core/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from core.collector import collector_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:  # back as the test found it, whatever the test did (one that switches it off must not leak that)
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_back_after(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_gives_the_collector_back(collector_on: None) -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the step failed")
    assert gc.isenabled()


def test_an_inner_pause_leaves_the_collector_paused_until_the_outer_one_ends(collector_on: None) -> None:
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_process_stays_off(collector_on: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
