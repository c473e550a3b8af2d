"""A highlight's storyboard in the catalog: a public URL for its WebVTT and sprite sheets,
rights-checked like the poster."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Asset, League, RightsGrant
from tests.conftest import store_of
from tests.published import add_asset

VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard_1.jpg#xywh=0,0,160,90\n"


def with_storyboard(client: TestClient, db: Session, league: League) -> Asset:
    asset = add_asset(db, league, title="Storyboarded")
    asset.storyboard_key = f"hls/{asset.id}/1/thumbs/storyboard.vtt"
    db.commit()
    store = store_of(client)
    store.put_bytes(asset.storyboard_key, VTT)
    store.put_bytes(f"hls/{asset.id}/1/thumbs/storyboard_1.jpg", b"\xff\xd8sheet")
    return asset


def test_catalog_items_carry_a_storyboard_url_that_serves_the_vtt_and_its_sheets(
    client: TestClient, db: Session, league: League
) -> None:
    asset = with_storyboard(client, db, league)
    plain = add_asset(db, league, title="No storyboard")
    items = {i["id"]: i for i in client.get("/v1/highlights").json()["items"]}
    assert items[plain.id]["storyboard_url"] is None
    url = str(items[asset.id]["storyboard_url"])
    assert url.endswith(f"/v1/highlights/{asset.id}/storyboard/storyboard.vtt")
    vtt = client.get(url)
    assert vtt.status_code == 200
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.content == VTT
    sheet = client.get(url.replace("storyboard.vtt", "storyboard_1.jpg"))
    assert sheet.headers["content-type"] == "image/jpeg"
    assert sheet.content == b"\xff\xd8sheet"


def test_only_storyboard_files_are_served(client: TestClient, db: Session, league: League) -> None:
    asset = with_storyboard(client, db, league)
    base = f"/v1/highlights/{asset.id}/storyboard"
    for name in ("master.m3u8", "storyboard_9.jpg", "..%2Fmaster.m3u8", "storyboard.vtt.bak"):
        assert client.get(f"{base}/{name}").status_code == 404, name


def test_a_storyboard_is_not_available_where_the_clip_is_not(
    client: TestClient, db: Session, league: League
) -> None:
    asset = with_storyboard(client, db, league)
    grants = select(RightsGrant).where(RightsGrant.scope_id == str(league.id))
    for grant in db.scalars(grants):
        grant.status = "revoked"
    db.commit()
    app = client.app
    assert isinstance(app, FastAPI)
    app.state.rights_cache.invalidate()
    response = client.get(f"/v1/highlights/{asset.id}/storyboard/storyboard.vtt")
    # Licensed nowhere any more: as for the poster, the highlight does not exist for fans.
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "highlight_not_found"
