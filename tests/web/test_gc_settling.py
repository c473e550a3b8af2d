"""The API process settles its garbage collector once started (``web.app.settle_gc``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from web.app import GC_THRESHOLDS, settle_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_what_exists_and_collects_less_often() -> None:
    survivor = [object() for _ in range(100)]
    settle_gc()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default first threshold


@pytest.mark.usefixtures("restored_gc")
def test_the_app_settles_when_it_starts(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert gc.get_threshold() == GC_THRESHOLDS
