"""Clips shared by the transcode tests, encoded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import make_clip


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_with_audio(media_dir: Path) -> Path:
    """2 s, 640x360, 30 fps, H.264 + AAC."""
    return make_clip(media_dir, seconds=2, width=640, height=360, audio=True)


@pytest.fixture(scope="session")
def clip_without_audio(media_dir: Path) -> Path:
    """2 s, 640x360, 30 fps, H.264 only."""
    return make_clip(media_dir, seconds=2, width=640, height=360, audio=False)


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    """2 s of AAC in an MP4 container, no video."""
    return make_clip(media_dir, seconds=2, video=False, audio=True)


@pytest.fixture(scope="session")
def rotated_clip(media_dir: Path) -> Path:
    """A 640x360 clip marked as rotated 90 degrees: a phone's portrait video."""
    return make_clip(media_dir, seconds=1, width=640, height=360, audio=False, rotate=90)
