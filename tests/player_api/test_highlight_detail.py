"""GET /v1/highlights/{id} (with related clips), its poster, and what POST /v1/playback adds
for the player: poster, storyboard under the token path, and the view report URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.models import Asset, AssetStatus, League, RightsGrant
from tests.conftest import make_settings, store_of
from tests.player_api.fan_fixtures import add_match, add_team, clip
from tests.published import add_asset
from web.app import create_app

POSTER = b"\xff\xd8\xff\xe0 poster jpeg"
SPRITE = b"\xff\xd8\xff\xe0 sprite sheet"
VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard_1.jpg#xywh=0,0,160,90\n"


def local(url: str) -> str:
    return urlsplit(url).path


def detail(client: TestClient, asset_id: str, **params: str) -> dict[str, object]:
    response = client.get(f"/v1/highlights/{asset_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def related_ids(body: dict[str, object]) -> list[str]:
    related = body["related"]
    assert isinstance(related, list)
    return [item["id"] for item in related]


# --- detail and related ----------------------------------------------------------------------


def test_detail_is_a_localised_highlight(client: TestClient, db: Session, league: League) -> None:
    asset = clip(db, league, "Late winner", translations={"zh-Hans": "绝杀"}, views=3)
    response = client.get(f"/v1/highlights/{asset.id}", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["lang"], body["title"], body["views"]) == (
        asset.id,
        "zh-Hans",
        "绝杀",
        3,
    )
    assert body["league"] == {"slug": "premier", "name": league.name}
    assert body["related"] == []
    assert response.headers["content-language"] == "zh-Hans"
    assert "accept-language" in response.headers["vary"].lower()
    assert detail(client, asset.id, lang="en")["title"] == "Late winner"
    again = client.get(
        f"/v1/highlights/{asset.id}",
        headers={"Accept-Language": "zh-CN", "If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304


def test_related_are_same_match_then_same_teams_then_same_league(
    client: TestClient, db: Session, league: League, other_league: League
) -> None:
    north = add_team(db, league, "north", "North City")
    south = add_team(db, league, "south", "South FC")
    east = add_team(db, league, "east", "East United")
    final = add_match(db, league, home=north, away=south)
    other_match = add_match(db, league, home=east, away=south)
    main = clip(db, league, "main", match=final, minutes=10)
    league_only = clip(db, league, "league only", minutes=50)  # newest, but least related
    same_match = clip(db, league, "same match", match=final, minutes=1)
    same_team = clip(db, league, "north linked", teams=[north], minutes=20)
    south_match = clip(db, league, "south played", match=other_match, minutes=30)
    clip(db, other_league, "elsewhere", minutes=40)
    unplayable = add_asset(db, league, title="failed", status=AssetStatus.FAILED)
    unplayable.match_id = final.id
    db.commit()

    body = detail(client, main.id)
    assert related_ids(body) == [same_match.id, south_match.id, same_team.id, league_only.id]
    assert related_ids(body)[0] == same_match.id
    related = body["related"]
    assert isinstance(related, list)
    assert related[0]["match"]["id"] == final.id
    assert "related" not in related[0]


def test_at_most_eight_related(client: TestClient, db: Session, league: League) -> None:
    main = clip(db, league, "main")
    for i in range(12):
        clip(db, league, f"c{i}", minutes=i + 1)
    assert len(related_ids(detail(client, main.id))) == 8


@pytest.mark.parametrize("status", [AssetStatus.QUEUED, AssetStatus.FAILED, AssetStatus.DELETED])
def test_unplayable_or_unknown_highlight_is_404(
    client: TestClient, db: Session, league: League, status: AssetStatus
) -> None:
    asset = add_asset(db, league, status=status)
    for asset_id in (asset.id, "0" * 32):
        response = client.get(f"/v1/highlights/{asset_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "highlight_not_found"
        assert client.get(f"/v1/highlights/{asset_id}/poster").status_code == 404


def test_highlight_licensed_nowhere_is_404(client: TestClient, db: Session) -> None:
    unlicensed = League(slug="nogrant", name="No grant")
    db.add(unlicensed)
    db.commit()
    asset = clip(db, unlicensed, "secret")
    assert client.get(f"/v1/highlights/{asset.id}").status_code == 404
    assert client.get("/v1/highlights").json()["items"] == []


# --- region blocks ---------------------------------------------------------------------------


@pytest.fixture
def from_britain(
    tmp_path: Path, pg_url: str, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    """A client on loopback that the app places in GB (dev_loopback_country)."""
    app = create_app(make_settings(tmp_path, pg_url, dev_loopback_country="GB"))
    app.state.sessionmaker = sessions
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client


@pytest.fixture
def swedish_league(db: Session) -> League:
    league = League(slug="allsvenskan", name="Allsvenskan")
    db.add(league)
    db.flush()
    db.add(
        RightsGrant(
            scope_type="league",
            scope_id=str(league.id),
            license_type="highlights",
            status="approved",
            territories=["SE"],
        )
    )
    db.commit()
    return league


def test_blocked_region_gets_451_with_the_reason(
    from_britain: TestClient, db: Session, swedish_league: League, league: League
) -> None:
    blocked = clip(db, swedish_league, "Mål!", lang="sv")
    blocked.poster_key = f"hls/{blocked.id}/1/thumbs/poster.jpg"
    open_clip = clip(db, league, "worldwide", minutes=1)
    db.commit()
    store_of(from_britain).put_bytes(blocked.poster_key, POSTER)

    response = from_britain.get(f"/v1/highlights/{blocked.id}")
    assert response.status_code == 451
    error = response.json()["error"]
    assert error["code"] == "not_available"
    assert error["details"]["reason"] == "territory_not_licensed"
    poster = from_britain.get(f"/v1/highlights/{blocked.id}/poster")
    assert poster.status_code == 451
    assert POSTER not in poster.content
    # Not listed, and not among the related clips of a clip that is watchable here.
    assert [i["id"] for i in from_britain.get("/v1/highlights").json()["items"]] == [open_clip.id]
    assert blocked.id not in related_ids(detail(from_britain, open_clip.id))


# --- poster ----------------------------------------------------------------------------------


def test_poster_is_streamed_with_a_public_cache_header(
    client: TestClient, db: Session, league: League
) -> None:
    asset = clip(db, league, "with poster")
    asset.poster_key = f"hls/{asset.id}/1/thumbs/poster.jpg"
    db.commit()
    store_of(client).put_bytes(asset.poster_key, POSTER)
    listed = client.get("/v1/highlights").json()["items"][0]
    response = client.get(local(listed["poster_url"]))
    assert response.status_code == 200
    assert response.content == POSTER
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "public, max-age=300"


def test_missing_poster_is_404(client: TestClient, db: Session, league: League) -> None:
    asset = clip(db, league, "no poster")
    response = client.get(f"/v1/highlights/{asset.id}/poster")
    assert response.status_code == 404
    assert "poster" in response.json()["error"]["message"]
    asset.poster_key = f"hls/{asset.id}/1/thumbs/poster.jpg"  # named, but not in the store
    db.commit()
    assert client.get(f"/v1/highlights/{asset.id}/poster").status_code == 404


# --- playback additions ----------------------------------------------------------------------


def published_with_thumbs(client: TestClient, asset: Asset, db: Session) -> None:
    prefix = f"hls/{asset.id}/1"
    store = store_of(client)
    store.put_bytes(f"{prefix}/master.m3u8", b"#EXTM3U\n")
    store.put_bytes(f"{prefix}/thumbs/poster.jpg", POSTER)
    store.put_bytes(f"{prefix}/thumbs/storyboard.vtt", VTT)
    store.put_bytes(f"{prefix}/thumbs/storyboard_1.jpg", SPRITE)
    asset.poster_key = f"{prefix}/thumbs/poster.jpg"
    asset.storyboard_key = f"{prefix}/thumbs/storyboard.vtt"
    db.commit()


def test_playback_gives_poster_storyboard_and_view_urls(
    client: TestClient, db: Session, league: League
) -> None:
    asset = clip(db, league, "thumbs")
    published_with_thumbs(client, asset, db)
    body = client.post(f"/v1/playback/{asset.id}").json()
    master = local(body["master_url"])
    base = master.rsplit("/", 1)[0]
    token = base.rsplit("/", 1)[1]
    assert local(body["storyboard_url"]) == f"{base}/thumbs/storyboard.vtt"
    assert local(body["poster_url"]) == f"/v1/highlights/{asset.id}/poster"
    assert local(body["view_url"]) == f"/v1/views/{token}"

    vtt = client.get(local(body["storyboard_url"]))
    assert vtt.status_code == 200
    assert vtt.content == VTT
    assert vtt.headers["content-type"].startswith("text/vtt")
    # The VTT names its sprite sheets relative to itself: they resolve under the token too.
    sprite = client.get(f"{base}/thumbs/storyboard_1.jpg")
    assert sprite.status_code == 200
    assert sprite.content == SPRITE
    assert sprite.headers["content-type"] == "image/jpeg"
    assert client.get(local(body["poster_url"])).content == POSTER


def test_playback_without_thumbnails_has_null_poster_and_storyboard(
    client: TestClient, db: Session, league: League
) -> None:
    asset = clip(db, league, "bare")
    body = client.post(f"/v1/playback/{asset.id}").json()
    assert body["poster_url"] is None
    assert body["storyboard_url"] is None
    assert "/v1/views/" in body["view_url"]
    assert body["master_url"].endswith("/master.m3u8")


def test_openapi_documents_the_highlight_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    example = components["Highlight"]["examples"][0]
    # FastAPI drops null values from the schema (storyboard_url is null in the catalog).
    assert set(example) | {"storyboard_url"} == set(components["Highlight"]["properties"])
    assert components["HighlightPage"]["examples"][0]["items"][0]["id"] == example["id"]
    assert "related" in components["HighlightDetail"]["properties"]
    paths = schema["paths"]
    assert "/v1/highlights/{asset_id}" in paths
    assert "451" in paths["/v1/highlights/{asset_id}"]["get"]["responses"]
    assert "/v1/views/{token}" in paths
