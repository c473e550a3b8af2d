"""Partner upload → real Celery worker → HLS in the store → ready → a playback URL that plays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.functional.hls_checks import ffprobe
from tests.functional.stack import Stack, make_partner, wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, "e2e-league")


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=stack.base_url, timeout=60) as http:
        yield http


def _upload(client: httpx2.Client, key: str, path: Path, content_type: str) -> dict[str, object]:
    with path.open("rb") as file:
        response = client.post(
            "/v1/assets",
            headers={"Authorization": f"Bearer {key}"},
            data={"league": "e2e-league", "title": f"E2E {path.name}"},
            files={"file": (path.name, file, content_type)},
        )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_upload_becomes_playable(client: httpx2.Client, partner: str, real_clip: Path) -> None:
    asset = _upload(client, partner, real_clip, "video/mp4")
    ready = wait_for_status(client, str(asset["id"]), partner, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    assert ready["progress"] == 100
    renditions = ready["renditions"]
    assert isinstance(renditions, list)
    assert renditions
    assert all(r["height"] <= 720 for r in renditions)  # never above the 720p source

    playback = client.post(f"/v1/playback/{asset['id']}").json()
    master = client.get(playback["master_url"])
    assert master.status_code == 200
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "#EXT-X-STREAM-INF" in master.text

    probed = ffprobe(playback["master_url"])
    codecs = {s["codec_name"] for s in probed["streams"]}  # type: ignore[attr-defined]
    assert "h264" in codecs
    assert "aac" in codecs
    assert float(probed["format"]["duration"]) == pytest.approx(5.3, abs=1.0)  # type: ignore[index]


def test_non_media_upload_fails_with_a_reason(
    client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("these are meeting notes, not a video\n" * 50)
    asset = _upload(client, partner, bogus, "application/octet-stream")
    failed = wait_for_status(client, str(asset["id"]), partner, {"ready", "failed"})
    assert failed["status"] == "failed"
    error = failed["error"]
    assert isinstance(error, dict)
    assert error["code"] == "not_media"
    assert len(error["message"]) > 20  # a sentence, not just a code


def test_playlist_that_points_at_local_files_is_refused(
    client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    sneaky = tmp_path / "sneaky.mp4"
    sneaky.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    asset = _upload(client, partner, sneaky, "video/mp4")
    failed = wait_for_status(client, str(asset["id"]), partner, {"ready", "failed"})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "references_external"  # type: ignore[index]
