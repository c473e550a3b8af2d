"""Live streams for fans: in the catalog (``is_live``, ``?live=``), playback with the DVR
master, live licenses and blackouts on every playlist request, live cache headers and the
viewer count."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import (
    LIVE_ORIGIN,
    Asset,
    AssetStatus,
    League,
    LiveState,
    LiveStream,
    RightsBlackout,
    utcnow,
)
from core.settings import Settings
from player_api.live_viewers import LiveViewers, count_key
from tests.conftest import REDIS_TEST_URL, make_settings, store_of, worldwide_live
from tests.published import add_asset
from web.app import create_app

MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/live.m3u8\n"
DVR_MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/dvr.m3u8\n"
MEDIA = (
    b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:7\n"
    b'#EXT-X-MAP:URI="init-1.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-30T05:00:00.000Z\n'
    b"#EXTINF:1.000,\n7.m4s\n"
)


def add_live(
    client: TestClient, db: Session, league: League, state: LiveState = LiveState.LIVE
) -> Asset:
    """A live stream on air, its playlists and one segment in the store."""
    asset = Asset(
        league_id=league.id,
        title="Final, live",
        origin=LIVE_ORIGIN,
        status=AssetStatus.PROCESSING,
        playable_at=utcnow(),
    )
    db.add(asset)
    db.flush()
    asset.master_key = f"live/{asset.id}/master.m3u8"
    db.add(
        LiveStream(
            id=asset.id, league_id=league.id, state=state, started_at=utcnow(), dvr_window_s=1800
        )
    )
    db.commit()
    store = store_of(client)
    prefix = f"live/{asset.id}"
    store.put_bytes(f"{prefix}/master.m3u8", MASTER)
    store.put_bytes(f"{prefix}/dvr.m3u8", DVR_MASTER)
    for name in ("live", "dvr"):
        store.put_bytes(f"{prefix}/360p/{name}.m3u8", MEDIA)
    store.put_bytes(f"{prefix}/360p/7.m4s", b"segment")
    return asset


@pytest.fixture
def licensed(db: Session, league: League) -> League:
    db.add(worldwide_live(league))
    db.commit()
    return league


def master_of(client: TestClient, asset_id: str) -> tuple[str, dict[str, object]]:
    response = client.post(f"/v1/playback/{asset_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return str(body["master_url"]).removeprefix("http://testserver"), body


def test_a_stream_on_air_is_in_the_catalog_as_live(
    client: TestClient, db: Session, licensed: League
) -> None:
    live = add_live(client, db, licensed)
    clip = add_asset(db, licensed, title="A goal")
    items = client.get("/v1/highlights").json()["items"]
    assert {item["id"]: item["is_live"] for item in items} == {live.id: True, clip.id: False}
    only_live = client.get("/v1/highlights", params={"live": "true"}).json()["items"]
    assert [item["id"] for item in only_live] == [live.id]
    no_live = client.get("/v1/highlights", params={"live": "false"}).json()["items"]
    assert [item["id"] for item in no_live] == [clip.id]


def test_an_ended_stream_is_not_live_any_more(
    client: TestClient, db: Session, licensed: League
) -> None:
    ended = add_live(client, db, licensed, LiveState.ENDED)
    items = client.get("/v1/highlights").json()["items"]
    assert [(item["id"], item["is_live"]) for item in items] == [(ended.id, False)]
    _master, body = master_of(client, ended.id)
    live = body["live"]
    assert isinstance(live, dict)
    assert live["on_air"] is False  # its DVR (with ENDLIST) still plays until the replay is ready


def test_live_playback_gives_the_live_edge_and_the_dvr_master(
    client: TestClient, db: Session, licensed: League
) -> None:
    live = add_live(client, db, licensed)
    master, body = master_of(client, live.id)
    info = body["live"]
    assert isinstance(info, dict)
    assert info["dvr_window_s"] == 1800
    assert info["on_air"] is True
    assert str(info["dvr_url"]).endswith("/dvr.m3u8")
    assert client.get(master).content == MASTER
    dvr = client.get(str(info["dvr_url"]).removeprefix("http://testserver"))
    assert dvr.content == DVR_MASTER
    base = master.rsplit("/", 1)[0]
    playlist = client.get(f"{base}/360p/live.m3u8")
    assert playlist.status_code == 200
    assert playlist.headers["cache-control"] == "private, no-cache"
    assert "immutable" in client.get(f"{base}/360p/7.m4s").headers["cache-control"]


def test_a_highlight_license_does_not_cover_a_live_stream(
    client: TestClient, db: Session, league: League
) -> None:
    live = add_live(client, db, league)  # the league has only its worldwide highlights grant
    assert client.get("/v1/highlights").json()["items"] == []
    refused = client.post(f"/v1/playback/{live.id}")
    assert refused.status_code == 451


def test_a_live_playlist_is_cached_briefly_so_new_segments_show_at_once(
    client: TestClient, db: Session, licensed: League
) -> None:
    live = add_live(client, db, licensed)
    base = master_of(client, live.id)[0].rsplit("/", 1)[0]
    assert client.get(f"{base}/360p/live.m3u8").content == MEDIA
    grown = MEDIA + b"#EXTINF:1.000,\n8.m4s\n"
    store_of(client).put_bytes(f"live/{live.id}/360p/live.m3u8", grown)
    time.sleep(0.3)
    assert client.get(f"{base}/360p/live.m3u8").content == grown


def test_viewers_are_counted_across_playbacks_without_a_write_per_request(
    client: TestClient, db: Session, licensed: League
) -> None:
    live = add_live(client, db, licensed)
    redis.Redis.from_url(REDIS_TEST_URL).delete(count_key(live.id))
    app = client.app
    assert isinstance(app, FastAPI)
    app.state.live_viewers = LiveViewers(redis.Redis.from_url(REDIS_TEST_URL), flush_every_s=0.2)
    bases = [master_of(client, live.id)[0].rsplit("/", 1)[0] for _ in range(3)]
    deadline = time.monotonic() + 5
    count = 0
    while time.monotonic() < deadline and count != 3:
        for base in bases:
            client.get(f"{base}/360p/live.m3u8")
        time.sleep(0.25)
        count = app.state.live_viewers.count(live.id)
    assert count == 3


# --- blackouts: a separate app that places loopback viewers in GB ------------------------------


@pytest.fixture
def gb_client(tmp_path: Path, pg_url: str, sessions: object) -> TestClient:
    settings: Settings = make_settings(tmp_path, pg_url, dev_loopback_country="GB")
    app = create_app(settings)
    app.state.sessionmaker = sessions
    return TestClient(app)


def test_a_live_blackout_applies_to_every_playlist_request(
    gb_client: TestClient, db: Session, licensed: League
) -> None:
    with gb_client:
        live = add_live(gb_client, db, licensed)
        base = master_of(gb_client, live.id)[0].rsplit("/", 1)[0]
        assert gb_client.get(f"{base}/360p/live.m3u8").status_code == 200
        db.add(RightsBlackout(scope_type="league", scope_id=str(licensed.id), countries=["GB"]))
        db.commit()
        app = gb_client.app
        assert isinstance(app, FastAPI)
        app.state.rights_cache.invalidate()
        time.sleep(0.4)
        blocked = gb_client.get(f"{base}/360p/live.m3u8")
        assert blocked.status_code == 451
        assert blocked.json()["error"]["details"]["reason"] == "blackout"
        assert gb_client.get(f"{base}/360p/7.m4s").status_code == 451
