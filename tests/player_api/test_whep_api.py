"""WHEP preview at the API: who may preview, a stream on air, the playback rights check
(451 from an unlicensed country), the viewer cap counted across processes, and DELETE.

A request that passes every check goes on to open the stream's feed from the RTMP edge;
here no edge runs (the pull URL points at a closed port), so it ends in 409 "feed not
reachable", which proves the checks before it passed. Media flows in the end-to-end test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.models import League, LiveState, LiveStream, RightsGrant, Role
from core.settings import Settings
from core.webrtc_sessions import SessionDirectory, SessionRecord
from player_api.whep import WhepViewers
from tests.conftest import REDIS_TEST_URL, bearer, make_settings
from tests.functional.stack import free_port
from tests.webrtc_peers import viewer_offer_sdp
from web.app import create_app

CITY_DB = Path(__file__).resolve().parents[3] / "shared" / "geoip" / "GeoIP2-City-Test.mmdb"
GB_IP, SE_IP = "81.2.69.142", "89.160.20.112"
SDP = {"Content-Type": "application/sdp"}


@pytest.fixture(scope="module")
def offer() -> str:
    return viewer_offer_sdp()


@pytest.fixture
def whep_settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(
        tmp_path,
        pg_url,
        webrtc_host_addresses=["127.0.0.1"],
        whep_max_viewers=2,
        geoip_city_db=CITY_DB,
        rtmp_pull_url=f"rtmp://127.0.0.1:{free_port()}/live",
    )


@pytest.fixture
def whep_app(whep_settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = create_app(whep_settings)
    app.state.sessionmaker = sessions
    return app


@pytest.fixture
def from_gb(whep_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(whep_app, client=(GB_IP, 50000)) as client:
        yield client


@pytest.fixture
def live_grant_gb(db: Session, league: League) -> None:
    db.add(
        RightsGrant(
            scope_type="league",
            scope_id=str(league.id),
            license_type="live",
            status="approved",
            territories=["GB"],
        )
    )
    db.commit()


def key_for(db: Session, role: Role, leagues: list[League] | None = None) -> str:
    _key, secret = create_api_key(db, role=role, leagues=leagues or [], name=str(role))
    db.commit()
    return secret


def on_air_stream(client: TestClient, db: Session, partner_key: str, *, on_air: bool = True) -> str:
    body = {"league": "premier", "title": "Final, live"}
    stream_id = str(client.post("/v1/live", json=body, headers=bearer(partner_key)).json()["id"])
    if on_air:
        stream = db.get_one(LiveStream, stream_id)
        stream.publishing, stream.state = True, LiveState.CONNECTING
        db.commit()
    return stream_id


def whep(
    client: TestClient, stream_id: str, key: str | None, offer: str
) -> tuple[int, dict[str, Any]]:
    headers = {**SDP, **(bearer(key) if key else {})}
    response = client.post(f"/v1/live/{stream_id}/whep", content=offer, headers=headers)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def viewers(app: FastAPI) -> WhepViewers:
    held = app.state.whep
    assert isinstance(held, WhepViewers)
    return held


@pytest.mark.usefixtures("live_grant_gb")
def test_only_preview_roles_of_the_league_may_preview(
    from_gb: TestClient,
    whep_app: FastAPI,
    db: Session,
    league: League,
    other_league: League,
    partner_key: str,
    offer: str,
) -> None:
    stream_id = on_air_stream(from_gb, db, partner_key)
    fan = key_for(db, Role.FAN)
    stranger = key_for(db, Role.PARTNER, [other_league])
    assert whep(from_gb, stream_id, None, offer)[0] == 401
    assert whep(from_gb, stream_id, fan, offer)[0] == 403
    assert whep(from_gb, stream_id, stranger, offer)[0] == 404
    for allowed in (
        partner_key,
        key_for(db, Role.RIGHTS_MANAGER, [league]),
        key_for(db, Role.MODERATOR),
        key_for(db, Role.ADMIN),
    ):
        status, body = whep(from_gb, stream_id, allowed, offer)
        assert (status, body["error"]["code"]) == (409, "conflict")
        assert "feed is not reachable" in body["error"]["message"]
    assert len(viewers(whep_app)) == 0
    assert viewers(whep_app).feeds() == 0


@pytest.mark.usefixtures("live_grant_gb")
def test_a_stream_not_on_air_cannot_be_previewed(
    from_gb: TestClient, db: Session, partner_key: str, offer: str
) -> None:
    stream_id = on_air_stream(from_gb, db, partner_key, on_air=False)
    status, body = whep(from_gb, stream_id, partner_key, offer)
    assert status == 409
    assert "not on air" in body["error"]["message"]


@pytest.mark.usefixtures("live_grant_gb")
def test_a_viewer_outside_the_licensed_territory_gets_451(
    whep_app: FastAPI, db: Session, partner_key: str, offer: str
) -> None:
    with TestClient(whep_app, client=(SE_IP, 50000)) as from_se:
        stream_id = on_air_stream(from_se, db, partner_key)
        status, body = whep(from_se, stream_id, partner_key, offer)
    assert status == 451
    assert body["error"]["code"] == "not_available"
    assert body["error"]["details"]["reason"] == "territory_not_licensed"
    assert len(viewers(whep_app)) == 0


@pytest.mark.usefixtures("live_grant_gb")
def test_the_viewer_cap_counts_viewers_held_by_every_process(
    from_gb: TestClient, db: Session, partner_key: str, offer: str
) -> None:
    """Two viewers recorded by other API processes fill the cap of 2."""
    stream_id = on_air_stream(from_gb, db, partner_key)
    others = [(f"other-{n}", SessionRecord("whep", stream_id, "api_key:999")) for n in (1, 2)]

    async def record(add: bool) -> None:
        client = aioredis.Redis.from_url(REDIS_TEST_URL)
        directory = SessionDirectory(client)
        for session_id, rec in others:
            await (directory.add(session_id, rec) if add else directory.remove(session_id, rec))
        await client.aclose()

    asyncio.run(record(add=True))
    try:
        status, body = whep(from_gb, stream_id, partner_key, offer)
        assert (status, body["error"]["code"]) == (503, "capacity_reached")
        assert "maximum of 2 preview viewers" in body["error"]["message"]
    finally:
        asyncio.run(record(add=False))
    assert whep(from_gb, stream_id, partner_key, offer)[0] == 409  # past the cap: the feed


def test_delete_needs_the_viewer_who_started_it(from_gb: TestClient, partner_key: str) -> None:
    path = "/v1/live/some-stream/whep/no-such-session"
    assert from_gb.delete(path).status_code == 401
    response = from_gb.delete(path, headers=bearer(partner_key))
    assert response.status_code == 404
    assert json.loads(response.text)["error"]["code"] == "not_found"
    assert from_gb.patch(path, headers=bearer(partner_key)).status_code == 405
