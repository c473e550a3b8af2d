"""A long source through the real chord: split at keyframes, chunks encoded by separate
tasks on two worker processes, joined without re-encoding, published as one ladder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx2
import m3u8
import pytest

from core.models import Asset
from tests.functional.stack import Stack, make_partner, running_stack, wait_for_status
from tests.media import OddVideo, make_clip

pytestmark = pytest.mark.e2e
LEAGUE = "chunk-league"
# Sources over 4 s are chunked in 2 s pieces here (the defaults are 300 s and 120 s).
CHUNKING = {
    "COURTSIDE_CHUNK_THRESHOLD_S": "4",
    "COURTSIDE_CHUNK_LENGTH_S": "2",
    "COURTSIDE_REDIS_URL": "redis://127.0.0.1:6379/10",
}


@pytest.fixture(scope="module")
def chunk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("chunkstack")
    with running_stack(tmp, overrides=CHUNKING, concurrency=2) as stack:
        yield stack


def test_a_long_source_is_encoded_in_chunks_and_joined_into_one_ladder(
    chunk_stack: Stack, tmp_path: Path
) -> None:
    partner = make_partner(chunk_stack, LEAGUE)
    clip = make_clip(tmp_path, seconds=9, width=640, height=360, odd=OddVideo(gop=30))
    with httpx2.Client(base_url=chunk_stack.base_url, timeout=30) as client:
        with clip.open("rb") as file:
            created = client.post(
                "/v1/assets",
                headers={"Authorization": f"Bearer {partner}"},
                data={"league": LEAGUE, "title": "A long one"},
                files={"file": (clip.name, file, "video/mp4")},
            )
        assert created.status_code == 201, created.text
        asset_id = created.json()["id"]
        ready = wait_for_status(client, asset_id, partner, {"ready", "failed"}, timeout_s=180)
        assert ready["status"] == "ready", ready
        master_url = client.post(f"/v1/playback/{asset_id}").json()["master_url"]
        master = m3u8.loads(client.get(master_url).text)
        durations = [_duration(client, urljoin(master_url, p.uri or "")) for p in master.playlists]

    assert len(master.playlists) >= 3  # 360p, 240p and the audio-only variant
    assert durations == pytest.approx([9.0] * len(durations), abs=0.2)
    log = (chunk_stack.logs / "worker.log").read_text()
    assert log.count("transcode.encode_chunk") >= 4  # 9 s in 2 s chunks: at least 4 tasks
    assert "transcode.join_chunks" in log
    with chunk_stack.sessions() as session:
        assert session.get_one(Asset, asset_id).storyboard_key  # thumbnails came before


def _duration(client: httpx2.Client, url: str) -> float:
    playlist = m3u8.loads(client.get(url).text)
    assert playlist.is_endlist
    for segment in playlist.segments:
        assert client.get(urljoin(url, segment.uri or "")).status_code == 200
    return sum(segment.duration or 0 for segment in playlist.segments)
