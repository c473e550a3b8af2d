"""A league feed registered through the API → polled by the real worker → its item pulled from
a loopback origin → transcoded → a ready asset with the feed's metadata."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from core.models import Asset
from tests.functional.stack import Stack, make_partner, wait_for_status
from tests.ingest.feeds.server import Origin, Route, serving
from tests.media import make_clip

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    clip = make_clip(tmp_path_factory.mktemp("feedclips"), seconds=2, width=320, height=180)
    with serving() as served:
        for name in ("goal", "save"):
            served.routes[f"/clips/{name}.mp4"] = Route(clip.read_bytes(), content_type="video/mp4")
        yield served


def _first_asset(client: httpx2.Client, feed_id: int, key: str, guid: str) -> str:
    """Wait for the worker's poll to record ``guid``; the asset it created."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/v1/feeds/{feed_id}", headers={"Authorization": f"Bearer {key}"})
        items = {item["guid"]: item for item in status.json()["recent_items"]}
        if guid in items:
            return str(items[guid]["asset_id"])
        time.sleep(0.25)
    raise AssertionError(f"the feed was not polled: {status.json()}")


def test_a_feed_item_becomes_a_ready_asset(stack: Stack, origin: Origin) -> None:
    key = make_partner(stack, "feed-league")
    auth = {"Authorization": f"Bearer {key}"}
    feed_url = origin.feed("/feed.xml", "mrss.xml", "application/rss+xml")
    with httpx2.Client(base_url=stack.base_url, timeout=30) as client:
        created = client.post(
            "/v1/leagues/feed-league/feeds", json={"url": feed_url, "interval_s": 300}, headers=auth
        )
        assert created.status_code == 201, created.text
        feed_id = created.json()["id"]
        assert client.post(f"/v1/feeds/{feed_id}/poll", headers=auth).status_code == 202
        asset_id = _first_asset(client, feed_id, key, "goal-1001")
        ready = wait_for_status(client, asset_id, key, {"ready", "failed"})
        assert ready["status"] == "ready", ready
        assert ready["title"] == "Late winner at the Riverside"
        status = client.get(f"/v1/feeds/{feed_id}", headers=auth).json()
    assert (status["items_found"], status["items_failed"]) == (6, 4)
    assert origin.headers_of("/clips/goal.mp4")  # the worker fetched the clip from the origin
    with stack.sessions() as session:
        asset = session.get_one(Asset, asset_id)
        assert (asset.origin, asset.teams) == ("feed", ["Riverside FC", "Harbour United"])
