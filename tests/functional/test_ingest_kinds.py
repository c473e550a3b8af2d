"""Every way a clip comes in (direct upload, resumable upload, pull from a URL, league feed),
on both storage backends, through the real API and worker until a fan can play every rung."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import httpx2
import pytest

from tests.functional.hls_checks import check_playback
from tests.functional.stack import Stack, make_partner, wait_for_status
from tests.ingest.feeds.server import Origin, Route, serving
from tests.media import OddVideo, make_clip

pytestmark = pytest.mark.e2e

CLIP_S = 3.0
_leagues = itertools.count()

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
  <channel>
    <title>Ingest kinds</title>
    <item>
      <guid isPermaLink="false">kinds-goal</guid>
      <title>Feed goal</title>
      <media:content url="{url}" type="video/mp4" medium="video"/>
    </item>
  </channel>
</rss>
"""


@dataclass(frozen=True)
class Partner:
    """A league of its own on one stack, a partner key for it and a client of the stack."""

    league: str
    client: httpx2.Client
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def partner(any_stack: Stack) -> Iterator[Partner]:
    league = f"kinds-{next(_leagues)}"  # make_partner inserts the league: one per stack
    key = make_partner(any_stack, league)
    with httpx2.Client(base_url=any_stack.base_url, timeout=60) as client:
        yield Partner(league, client, key)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module's clips, so each is encoded once for both backends."""
    return tmp_path_factory.mktemp("kinds-clips")


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with serving() as served:
        yield served


def _play(partner: Partner, asset_id: str, *, has_audio: bool, copied: bool) -> None:
    """Wait for ``ready``, then check what a fan gets: every rung the asset lists, playable.

    ``copied``: the source was stream-copied and published (playable) before the ladder was
    (ready); otherwise both came with the one publication of the encoded ladder.
    """
    ready = wait_for_status(partner.client, asset_id, partner.key, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    playable_at, ready_at = (
        datetime.fromisoformat(str(ready[k])) for k in ("playable_at", "ready_at")
    )
    assert (playable_at < ready_at) is copied, ready
    assert ready["duration_s"] == pytest.approx(CLIP_S, abs=0.2)
    playback = partner.client.post(f"/v1/playback/{asset_id}")
    assert playback.status_code == 200, playback.text
    master_url = playback.json()["master_url"]
    rungs = check_playback(partner.client, master_url, duration_s=CLIP_S, has_audio=has_audio)
    renditions = ready["renditions"]
    assert isinstance(renditions, list)
    listed = sorted((r["width"], r["height"]) for r in renditions)
    assert sorted((r.width, r.height) for r in rungs) == listed


def test_direct_upload(partner: Partner, clips: Path) -> None:
    # 10-bit cannot be copied (a 3 s clip with x264's default GOP would be): the whole ladder
    # is encoded, and must come out 8-bit.
    clip = make_clip(clips, seconds=CLIP_S, odd=OddVideo(pix_fmt="yuv420p10le"))
    with clip.open("rb") as file:
        created = partner.client.post(
            "/v1/assets",
            headers=partner.auth,
            data={"league": partner.league, "title": "Direct upload"},
            files={"file": (clip.name, file, "video/mp4")},
        )
    assert created.status_code == 201, created.text
    _play(partner, created.json()["id"], has_audio=True, copied=False)


def test_resumable_upload(partner: Partner, clips: Path) -> None:
    # An editor's regular 2 s GOP: the source is stream-copied first.
    clip = make_clip(clips, seconds=CLIP_S, width=640, height=360, odd=OddVideo(gop=60))
    data = clip.read_bytes()
    upload = _declare_upload(partner, clip.name, len(data))
    urls = partner.client.post(
        f"/v1/uploads/{upload['upload_id']}/parts",
        headers=partner.auth,
        json={"numbers": list(range(1, upload["part_count"] + 1))},
    ).json()["parts"]
    size = upload["part_size"]
    for part in urls:
        start = (part["number"] - 1) * size
        # A bare client: on S3 the URL is presigned for the loopback server, else the API's own
        # signed PUT; either way it is the only credential the request carries.
        sent = httpx2.put(part["url"], content=data[start : start + size], timeout=60)
        assert sent.status_code == 200, sent.text
        assert sent.headers.get("etag")
    done = partner.client.post(f"/v1/uploads/{upload['upload_id']}/complete", headers=partner.auth)
    assert done.status_code == 200, done.text
    _play(partner, upload["asset_id"], has_audio=True, copied=True)


class Upload(TypedDict):
    """The parts of ``POST /v1/uploads``'s answer this test uses."""

    upload_id: str
    asset_id: str
    part_size: int
    part_count: int


def _declare_upload(partner: Partner, filename: str, size: int) -> Upload:
    created = partner.client.post(
        "/v1/uploads",
        headers=partner.auth,
        json={
            "league": partner.league,
            "title": "Resumable upload",
            "filename": filename,
            "content_type": "video/mp4",
            "size": size,
        },
    )
    assert created.status_code == 201, created.text
    upload: Upload = created.json()
    return upload


def test_pull_from_url(partner: Partner, clips: Path, origin: Origin) -> None:
    # Silent: the master must then have no audio rendition and no audio-only variant.
    clip = make_clip(clips, seconds=CLIP_S, width=480, height=270, audio=False)
    path = f"/pull/{partner.league}.mp4"
    origin.routes[path] = Route(clip.read_bytes(), content_type="video/mp4")
    pulled = partner.client.post(
        "/v1/assets/pull",
        headers=partner.auth,
        json={"league": partner.league, "title": "Pulled", "url": origin.base_url + path},
    )
    assert pulled.status_code == 202, pulled.text
    _play(partner, pulled.json()["id"], has_audio=False, copied=True)
    assert origin.headers_of(path)  # the worker fetched it from the origin


def test_league_feed(partner: Partner, clips: Path, origin: Origin) -> None:
    clip = make_clip(clips, seconds=CLIP_S, width=640, height=360)
    clip_path, feed_path = f"/feed/{partner.league}.mp4", f"/feed/{partner.league}.xml"
    origin.routes[clip_path] = Route(clip.read_bytes(), content_type="video/mp4")
    feed = FEED.format(url=origin.base_url + clip_path).encode()
    origin.routes[feed_path] = Route(feed, content_type="application/rss+xml")
    created = partner.client.post(
        f"/v1/leagues/{partner.league}/feeds",
        headers=partner.auth,
        json={"url": origin.base_url + feed_path, "interval_s": 300},
    )
    assert created.status_code == 201, created.text
    feed_id = created.json()["id"]
    assert partner.client.post(f"/v1/feeds/{feed_id}/poll", headers=partner.auth).status_code == 202
    asset_id = _feed_asset(partner, feed_id, "kinds-goal")
    _play(partner, asset_id, has_audio=True, copied=True)
    asset = partner.client.get(f"/v1/assets/{asset_id}", headers=partner.auth).json()
    assert (asset["origin"], asset["title"]) == ("feed", "Feed goal")


def _feed_asset(partner: Partner, feed_id: int, guid: str, timeout_s: float = 60) -> str:
    """The asset the worker's poll made of ``guid``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = partner.client.get(f"/v1/feeds/{feed_id}", headers=partner.auth).json()
        items = {item["guid"]: item for item in status["recent_items"]}
        if guid in items and items[guid]["asset_id"]:
            return str(items[guid]["asset_id"])
        assert time.monotonic() < deadline, f"the feed was not polled: {status}"
        time.sleep(0.25)
