from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from core.storage.s3 import S3ObjectStore
from tests.functional.stack import Stack, running_stack
from tests.s3server import moto_s3_server
from transcode.runner import run_ffmpeg
from web.demo import CLIPS, clip_argv

SHARED_CLIP = Path(__file__).resolve().parents[3] / "shared" / "media" / "bigbuckbunny.mp4"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def s3_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same stack on the S3 backend: a moto server on loopback, bucket made first."""
    with moto_s3_server() as endpoint:
        settings = Settings(
            storage_backend="s3",
            s3_endpoint_url=endpoint,
            s3_bucket="e2e",
            s3_access_key_id="test",
            s3_secret_access_key="test",  # pydantic coerces it to a SecretStr
        )
        S3ObjectStore.from_settings(settings).ensure_bucket()
        with running_stack(tmp_path_factory.mktemp("s3stack"), s3_endpoint=endpoint) as running:
            yield running


@pytest.fixture(scope="session", params=["local", "s3"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """Each storage backend in turn, for flows that must work on both."""
    fixture = "stack" if request.param == "local" else "s3_stack"
    stack: Stack = request.getfixturevalue(fixture)
    return stack


@pytest.fixture(scope="session")
def real_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real footage from ../shared when it is there, else a generated H.264/AAC clip."""
    if SHARED_CLIP.is_file():
        return SHARED_CLIP
    out = tmp_path_factory.mktemp("clips") / "generated.mp4"
    run_ffmpeg(clip_argv("ffmpeg", CLIPS[0], out), timeout_s=120)
    return out
