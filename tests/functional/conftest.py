from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.stack import Stack, running_stack
from transcode.runner import run_ffmpeg
from web.demo import CLIPS, clip_argv

SHARED_CLIP = Path(__file__).resolve().parents[3] / "shared" / "media" / "bigbuckbunny.mp4"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def real_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real footage from ../shared when it is there, else a generated H.264/AAC clip."""
    if SHARED_CLIP.is_file():
        return SHARED_CLIP
    out = tmp_path_factory.mktemp("clips") / "generated.mp4"
    run_ffmpeg(clip_argv("ffmpeg", CLIPS[0], out), timeout_s=120)
    return out
