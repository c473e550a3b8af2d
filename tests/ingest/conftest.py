"""Fixtures shared by the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ingest.feeds.server import Origin, Route, serving
from tests.media import make_clip
from tests.queues import queue as queue  # the broker's Redis, for the tests that read it

CLIP_NAMES = ("goal", "save", "freekick", "clearance")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A one-second MP4, small enough to pull quickly."""
    path = make_clip(tmp_path_factory.mktemp("clips"), seconds=1, width=160, height=90, fps=10)
    return path.read_bytes()


@pytest.fixture
def origin(clip: bytes) -> Iterator[Origin]:
    """An HTTP server on loopback serving ``clip`` at /clips/<name>.mp4 for each CLIP_NAMES."""
    with serving() as served:
        for name in CLIP_NAMES:
            served.routes[f"/clips/{name}.mp4"] = Route(clip, content_type="video/mp4")
        yield served
