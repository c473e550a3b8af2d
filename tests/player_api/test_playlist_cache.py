"""The stream route's playlist cache: playlists served without a store read for a short
while, never without the checks (token, path, rights) that run before it; and /v1/ping."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Asset, League, RightsGrant
from player_api.media_response import MAX_CACHED_PLAYLIST_BYTES, PlaylistCache
from tests.conftest import store_of
from tests.published import add_asset

MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv0/index.m3u8\n"
MEDIA = b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nseg_000.m4s\n#EXT-X-ENDLIST\n'


class Clock:
    """A settable monotonic clock for the cache."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_keeps_a_playlist_for_its_ttl_only() -> None:
    clock = Clock()
    cache = PlaylistCache(ttl_s=1.0, clock=clock)
    assert cache.get("hls/a/1/master.m3u8") is None
    cache.put("hls/a/1/master.m3u8", MASTER)
    clock.now += 0.9
    assert cache.get("hls/a/1/master.m3u8") == MASTER
    assert cache.get("hls/b/1/master.m3u8") is None
    clock.now += 0.1
    assert cache.get("hls/a/1/master.m3u8") is None


def test_cache_is_bounded_in_entries_and_entry_size() -> None:
    cache = PlaylistCache(max_items=2)
    cache.put("a.m3u8", b"a")
    cache.put("b.m3u8", b"b")
    cache.put("c.m3u8", b"c")  # full: starts over rather than growing
    assert (cache.get("a.m3u8"), cache.get("b.m3u8"), cache.get("c.m3u8")) == (None, None, b"c")
    cache.put("big.m3u8", b"#" * (MAX_CACHED_PLAYLIST_BYTES + 1))
    assert cache.get("big.m3u8") is None


@pytest.fixture
def ready(client: TestClient, db: Session, league: League) -> Asset:
    asset = add_asset(db, league, title="Buzzer beater")
    store = store_of(client)
    store.put_bytes(f"hls/{asset.id}/1/master.m3u8", MASTER)
    store.put_bytes(f"hls/{asset.id}/1/v0/index.m3u8", MEDIA)
    return asset


def start(client: TestClient, asset_id: str) -> str:
    response = client.post(f"/v1/playback/{asset_id}")
    assert response.status_code == 200, response.text
    url = response.json()["master_url"]
    assert isinstance(url, str)
    return "/v1/stream/" + url.split("/v1/stream/", 1)[1]


def test_playlists_are_served_from_the_cache_until_it_expires(
    client: TestClient, app: FastAPI, ready: Asset
) -> None:
    app.state.playlist_cache = PlaylistCache(ttl_s=0.3)
    master = start(client, ready.id)
    first = client.get(master)
    assert (first.status_code, first.content) == (200, MASTER)
    store_of(client).delete(f"hls/{ready.id}/1/master.m3u8")
    cached = client.get(master)
    assert (cached.status_code, cached.content) == (200, MASTER)
    # The same answer as from the store: type and cache header included.
    assert cached.headers["content-type"] == first.headers["content-type"]
    assert cached.headers["cache-control"] == first.headers["cache-control"] == "private, max-age=5"
    time.sleep(0.35)
    assert client.get(master).status_code == 404


def test_a_cached_playlist_is_refused_once_the_rights_are_revoked(
    client: TestClient, app: FastAPI, db: Session, league: League, ready: Asset
) -> None:
    master = start(client, ready.id)
    assert client.get(master).content == MASTER  # now in the cache
    for grant in db.scalars(select(RightsGrant).where(RightsGrant.scope_id == str(league.id))):
        grant.status = "revoked"
    db.commit()
    app.state.rights_cache.invalidate()  # what the rights API does after a change
    response = client.get(master)
    assert response.status_code == 451, response.text
    assert MASTER not in response.content


def test_a_cached_playlist_still_needs_a_valid_token(client: TestClient, ready: Asset) -> None:
    master = start(client, ready.id)
    assert client.get(master).status_code == 200
    token = master.split("/")[3]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    response = client.get(master.replace(token, tampered))
    assert response.status_code == 403
    assert MASTER not in response.content


def test_stream_parameters_stay_documented(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/stream/{token}/{path}"]["get"]
    where = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert where == {("token", "path"), ("path", "path"), ("range", "header")}
    assert "**Who:**" in operation["description"]


def test_ping_answers_anyone(client: TestClient) -> None:
    response = client.get("/v1/ping")
    assert (response.status_code, response.content) == (200, b"pong\n")
    assert response.headers["content-type"].startswith("text/plain")
