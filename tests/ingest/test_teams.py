"""A league's teams (``POST /v1/leagues/{slug}/teams``), a clip's teams (``PUT
/v1/assets/{id}/teams``), and feed items' team names linked to the league's teams."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import create_api_key
from core.models import Asset, League, LeagueFeed, Role, Team
from core.settings import Settings
from ingest.feed_poll import ingest_entries
from ingest.feeds import FeedEntry
from ingest.pull import pull_limits
from ingest.teams import link_named_teams
from tests.conftest import bearer, make_settings
from tests.published import add_asset

HAWKS = {
    "slug": "hawks",
    "name": "Harbour Hawks",
    "names": {"zh-Hans": "港湾雄鹰", "sv": "Hamnhökarna"},
}


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, pg_url, pull_allowed_networks=["127.0.0.0/8"])


def add_team(db: Session, league: League, slug: str, name: str, **names: str) -> Team:
    team = Team(league_id=league.id, slug=slug, name=name, names=dict(names))
    db.add(team)
    db.commit()
    return team


# --- creating teams ---------------------------------------------------------------------------


def test_partner_creates_a_team_fans_then_see(
    client: TestClient, db: Session, league: League, partner_key: str
) -> None:
    response = client.post("/v1/leagues/premier/teams", json=HAWKS, headers=bearer(partner_key))
    assert response.status_code == 201, response.text
    team = db.get_one(Team, response.json()["id"])
    assert (team.league_id, team.slug, team.name) == (league.id, "hawks", "Harbour Hawks")
    assert team.names == HAWKS["names"]
    listed = client.get("/v1/leagues/premier/teams", params={"lang": "sv"}).json()["items"]
    assert listed == [{"slug": "hawks", "name": "Hamnhökarna"}]


def test_a_taken_slug_is_409(client: TestClient, partner_key: str) -> None:
    client.post("/v1/leagues/premier/teams", json=HAWKS, headers=bearer(partner_key))
    again = client.post("/v1/leagues/premier/teams", json=HAWKS, headers=bearer(partner_key))
    assert again.status_code == 409
    assert "hawks" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**HAWKS, "slug": "Bad Slug"}, "slug"),
        ({**HAWKS, "name": ""}, "name"),
        ({**HAWKS, "names": {"not a tag!": "x"}}, "not a language tag"),
        ({**HAWKS, "names": {"sv": "   "}}, "1 to 200"),
        ({**HAWKS, "names": {f"x{i}": "n" for i in range(31)}}, "at most 30"),
    ],
)
def test_bad_team_input_is_422(
    client: TestClient, partner_key: str, body: dict[str, object], needle: str
) -> None:
    response = client.post("/v1/leagues/premier/teams", json=body, headers=bearer(partner_key))
    assert response.status_code == 422, response.text
    assert needle in response.text


@pytest.mark.usefixtures("other_league")
def test_teams_of_another_league_are_refused(client: TestClient, partner_key: str) -> None:
    response = client.post("/v1/leagues/other/teams", json=HAWKS, headers=bearer(partner_key))
    assert response.status_code == 403
    assert (
        client.post("/v1/leagues/nope/teams", json=HAWKS, headers=bearer(partner_key)).status_code
        == 404
    )
    assert client.post("/v1/leagues/premier/teams", json=HAWKS).status_code == 401


# --- a clip's teams ---------------------------------------------------------------------------


def test_partner_sets_and_clears_a_clips_teams(
    client: TestClient, db: Session, league: League, partner_key: str
) -> None:
    add_team(db, league, "hawks", "Harbour Hawks")
    add_team(db, league, "bears", "Summit Bears")
    clip = add_asset(db, league, title="Derby")
    url = f"/v1/assets/{clip.id}/teams"
    response = client.put(
        url, json={"teams": ["bears", "hawks", "bears"]}, headers=bearer(partner_key)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"teams": ["bears", "hawks"]}
    db.expire_all()
    assert sorted(t.slug for t in db.get_one(Asset, clip.id).linked_teams) == ["bears", "hawks"]
    cleared = client.put(url, json={"teams": []}, headers=bearer(partner_key))
    assert cleared.json() == {"teams": []}
    db.expire_all()
    assert db.get_one(Asset, clip.id).linked_teams == []


def test_unknown_or_foreign_team_slugs_are_named(
    client: TestClient, db: Session, league: League, other_league: League, partner_key: str
) -> None:
    add_team(db, league, "hawks", "Harbour Hawks")
    add_team(db, other_league, "lions", "Other Lions")
    clip = add_asset(db, league, title="Derby")
    response = client.put(
        f"/v1/assets/{clip.id}/teams", json={"teams": ["hawks", "lions", "ghosts"]},
        headers=bearer(partner_key),
    )  # fmt: skip
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_team"
    assert error["details"] == {"unknown": ["lions", "ghosts"]}
    db.expire_all()
    assert db.get_one(Asset, clip.id).linked_teams == []


def test_clip_teams_limits_and_rights(
    client: TestClient, db: Session, league: League, other_league: League, partner_key: str
) -> None:
    clip = add_asset(db, other_league, title="Not ours")
    ours = add_asset(db, league, title="Ours")
    too_many = {"teams": [f"t{i}" for i in range(11)]}
    assert (
        client.put(
            f"/v1/assets/{ours.id}/teams", json=too_many, headers=bearer(partner_key)
        ).status_code
        == 422
    )
    assert (
        client.put(
            f"/v1/assets/{clip.id}/teams", json={"teams": []}, headers=bearer(partner_key)
        ).status_code
        == 403
    )
    assert (
        client.put(
            "/v1/assets/nope/teams", json={"teams": []}, headers=bearer(partner_key)
        ).status_code
        == 404
    )
    _key, fan_secret = create_api_key(db, role=Role.FAN, leagues=[league], name="fan")
    db.commit()
    assert (
        client.put(
            f"/v1/assets/{ours.id}/teams", json={"teams": []}, headers=bearer(fan_secret)
        ).status_code
        == 403
    )


# --- names from feeds -------------------------------------------------------------------------


def test_delivered_names_link_by_slug_name_or_translation(
    db: Session, league: League, other_league: League
) -> None:
    hawks = add_team(db, league, "hawks", "Harbour Hawks", sv="Hamnhökarna")
    bears = add_team(db, league, "bears", "Summit Bears", **{"zh-Hans": "峰顶熊"})
    rovers = add_team(db, league, "rovers", "River City Rovers")
    add_team(db, other_league, "lions", "Lions")
    clip = add_asset(db, league, title="Derby")
    clip.teams = ["  harbour   HAWKS ", "峰顶熊", "Lions", "Nobody FC"]
    added = link_named_teams(db, clip)
    assert {t.id for t in added} == {hawks.id, bears.id}
    clip.teams = ["rovers", "Hamnhökarna"]
    assert [t.id for t in link_named_teams(db, clip)] == [rovers.id]  # hawks already linked
    assert {t.id for t in clip.linked_teams} == {hawks.id, bears.id, rovers.id}


def test_feed_items_are_linked_to_the_leagues_teams(
    db: Session, league: League, settings: Settings
) -> None:
    hawks = add_team(db, league, "hawks", "Harbour Hawks")
    feed = LeagueFeed(league_id=league.id, url="http://127.0.0.1:9/feed.xml")
    db.add(feed)
    db.commit()
    entry = FeedEntry(
        guid="g-1", title="Derby goal", media_url="http://127.0.0.1:9/goal.mp4",
        media_type="video/mp4", teams=("Harbour Hawks", "Unknown United"),
    )  # fmt: skip
    result = ingest_entries(db, feed, [entry], pull_limits(settings))
    db.commit()
    assert result.ingested == 1
    asset = db.scalars(select(Asset).where(Asset.title == "Derby goal")).one()
    assert asset.teams == ["Harbour Hawks", "Unknown United"]  # as delivered
    assert [t.id for t in asset.linked_teams] == [hawks.id]
