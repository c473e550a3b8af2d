"""Leagues, teams, matches and the schedule: the queries with fixed clocks, and the endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import Competition, League, Match, Season, Team, utcnow
from player_api import sports
from player_api.sports import MatchFilter, MatchStatus
from tests.published import add_asset

NOW = datetime(2026, 5, 1, 19, 0, tzinfo=UTC)
NAMES = {"zh-Hans": "港湾雄鹰", "sv": "Hamnhökarna", "en": "Harbour Hawks"}


@dataclass
class World:
    league: League
    cup: Competition
    hawks: Team
    bears: Team
    matches: dict[str, Match]


def add_team(db: Session, league: League, slug: str, name: str, **names: str) -> Team:
    team = Team(league_id=league.id, slug=slug, name=name, names=dict(names))
    db.add(team)
    db.flush()
    return team


def add_match(
    db: Session, season: Season, home: Team | None, away: Team | None, kickoff: datetime | None,
    whistle: datetime | None = None,
) -> Match:  # fmt: skip
    match = Match(
        season_id=season.id,
        home=home.name if home else "Visitors XI",
        away=away.name if away else "Guests FC",
        home_team_id=home.id if home else None,
        away_team_id=away.id if away else None,
        kickoff=kickoff,
        final_whistle=whistle,
    )
    db.add(match)
    db.flush()
    return match


def build_world(db: Session, league: League, now: datetime) -> World:
    cup = Competition(league_id=league.id, slug="cup", name="Test Cup")
    db.add(cup)
    db.flush()
    season = Season(competition_id=cup.id, name="2026")
    db.add(season)
    db.flush()
    hawks = add_team(
        db, league, "hawks", "Harbour Hawks", **{"zh-Hans": "港湾雄鹰", "sv": "Hamnhökarna"}
    )
    bears = add_team(db, league, "bears", "Summit Bears", sv="Toppbjörnarna")
    hours = timedelta(hours=1)
    matches = {
        "finished": add_match(db, season, hawks, bears, now - 48 * hours, now - 46 * hours),
        "finished_no_whistle": add_match(db, season, bears, None, now - 3 * hours),
        "live": add_match(db, season, bears, hawks, now - hours / 2),
        "live_long": add_match(db, season, hawks, None, now - 3 * hours, now + hours),
        "soon": add_match(db, season, hawks, bears, now + 24 * hours),
        "later": add_match(db, season, None, bears, now + 72 * hours),
        "next_month": add_match(db, season, bears, hawks, now + 30 * 24 * hours),
        "unscheduled": add_match(db, season, None, None, None),
    }
    db.commit()
    return World(league, cup, hawks, bears, matches)


@pytest.fixture
def world(db: Session, league: League) -> World:
    return build_world(db, league, utcnow())


def ids(rows: Sequence[sports.MatchRow]) -> list[int]:
    return [row.match.id for row in rows]


# --- queries with a fixed clock ---------------------------------------------------------------


@pytest.mark.parametrize("status", list(MatchStatus))
def test_status_filter_agrees_with_match_status(
    db: Session, league: League, status: MatchStatus
) -> None:
    world = build_world(db, league, NOW)
    rows = sports.list_matches(db, MatchFilter(status=status), NOW, 100)
    expected = {
        m.id
        for m in world.matches.values()
        if sports.match_status(m.kickoff, m.final_whistle, NOW) is status
    }
    assert set(ids(rows)) == expected
    assert expected, "every status has a match in the world"


def test_upcoming_soonest_first_finished_latest_first(db: Session, league: League) -> None:
    m = build_world(db, league, NOW).matches
    upcoming = sports.list_matches(db, MatchFilter(status=MatchStatus.UPCOMING), NOW, 100)
    assert ids(upcoming) == [m["soon"].id, m["later"].id, m["next_month"].id, m["unscheduled"].id]
    finished = sports.list_matches(db, MatchFilter(status=MatchStatus.FINISHED), NOW, 100)
    assert ids(finished) == [m["finished_no_whistle"].id, m["finished"].id]


def test_team_filter_matches_home_or_away(db: Session, league: League) -> None:
    world = build_world(db, league, NOW)
    rows = sports.list_matches(db, MatchFilter(team_ids=[world.hawks.id]), NOW, 100)
    expected = {
        m.id for m in world.matches.values() if world.hawks.id in (m.home_team_id, m.away_team_id)
    }
    assert set(ids(rows)) == expected


def test_schedule_is_live_and_the_next_seven_days(db: Session, league: League) -> None:
    m = build_world(db, league, NOW).matches
    live, upcoming = sports.schedule(db, NOW)
    assert set(ids(live)) == {m["live"].id, m["live_long"].id}
    # Next month's match and the unscheduled one are not in the window.
    assert ids(upcoming) == [m["soon"].id, m["later"].id]


def test_schedule_window_edges(db: Session, league: League) -> None:
    world = build_world(db, league, NOW)
    season = world.matches["soon"].season
    edge = add_match(db, season, None, None, NOW + sports.SCHEDULE_AHEAD)
    past_edge = add_match(
        db, season, None, None, NOW + sports.SCHEDULE_AHEAD + timedelta(seconds=1)
    )
    _live, upcoming = sports.schedule(db, NOW)
    assert edge.id in ids(upcoming)
    assert past_edge.id not in ids(upcoming)


# --- endpoints --------------------------------------------------------------------------------


@pytest.mark.usefixtures("world", "other_league")
def test_leagues_list_with_competitions(client: TestClient) -> None:
    response = client.get("/v1/leagues")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=30"
    items = {item["slug"]: item for item in response.json()["items"]}
    assert items["premier"]["competitions"] == [{"slug": "cup", "name": "Test Cup"}]
    assert items["other"] == {"slug": "other", "name": "Other League", "competitions": []}


def test_league_detail_teams_and_latest(client: TestClient, db: Session, world: World) -> None:
    clip = add_asset(db, world.league, title="Buzzer beater", ready_at=utcnow())
    response = client.get("/v1/leagues/premier", params={"lang": "sv"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["slug"] == "premier"
    assert body["lang"] == "sv"
    assert body["teams"] == [
        {"slug": "hawks", "name": "Hamnhökarna"},
        {"slug": "bears", "name": "Toppbjörnarna"},
    ]
    assert [h["id"] for h in body["latest"]] == [clip.id]
    # The latest list depends on the viewer's region: never in a shared cache.
    assert response.headers["cache-control"] == "private, max-age=30"
    assert response.headers["content-language"] == "sv"
    assert "Accept-Language" in response.headers["vary"]


@pytest.mark.parametrize(
    "path",
    ["/v1/leagues/nope", "/v1/leagues/nope/teams", "/v1/leagues/nope/teams/hawks",
     "/v1/leagues/premier/teams/nope", "/v1/matches?league=nope", "/v1/matches?team=nope",
     "/v1/matches/999999"],
)  # fmt: skip
@pytest.mark.usefixtures("world")
def test_unknown_names_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "headers", "hawks", "lang"),
    [
        ({"lang": "zh-Hans"}, {}, "港湾雄鹰", "zh-Hans"),
        ({"lang": "zh-Hans-CN"}, {}, "港湾雄鹰", "zh-Hans"),  # region dropped
        ({}, {"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"}, "Hamnhökarna", "sv"),
        ({}, {"Accept-Language": "fr;q=1,zh-Hans;q=0.8"}, "港湾雄鹰", "zh-Hans"),  # 2nd choice
        ({"lang": "sv"}, {"Accept-Language": "zh-Hans"}, "Hamnhökarna", "sv"),  # lang wins
        ({"lang": "de"}, {}, "Harbour Hawks", "en"),  # no German: the league's spelling
        ({}, {}, "Harbour Hawks", "en"),
    ],
)
@pytest.mark.usefixtures("world")
def test_team_names_are_localised(
    client: TestClient, params: dict[str, str], headers: dict[str, str], hawks: str,
    lang: str,
) -> None:  # fmt: skip
    response = client.get("/v1/leagues/premier/teams", params=params, headers=headers)
    assert response.status_code == 200, response.text
    names = {item["slug"]: item["name"] for item in response.json()["items"]}
    assert names["hawks"] == hawks
    assert response.json()["lang"] == lang
    assert response.headers["content-language"] == lang


@pytest.mark.usefixtures("world")
def test_team_name_without_translations_falls_back(client: TestClient) -> None:
    response = client.get("/v1/leagues/premier/teams", params={"lang": "zh-Hans"})
    names = {item["slug"]: item["name"] for item in response.json()["items"]}
    assert names["bears"] == "Summit Bears"  # only Swedish is known besides the own name


def test_team_detail_matches_and_latest(client: TestClient, db: Session, world: World) -> None:
    m = world.matches
    shown = add_asset(db, world.league, title="Hawks goal", ready_at=utcnow())
    shown.linked_teams.append(world.hawks)
    add_asset(db, world.league, title="Bears only", ready_at=utcnow()).linked_teams.append(
        world.bears
    )
    db.commit()
    response = client.get("/v1/leagues/premier/teams/hawks", params={"lang": "zh-Hans"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "港湾雄鹰"
    assert body["league"] == {"slug": "premier", "name": world.league.name}
    statuses = [(match["id"], match["status"]) for match in body["matches"]]
    assert statuses[:2] == [(m["live_long"].id, "live"), (m["live"].id, "live")]
    assert (m["soon"].id, "upcoming") in statuses
    assert (m["finished"].id, "finished") in statuses
    assert [h["id"] for h in body["latest"]] == [shown.id]


def test_matches_list_shape_and_filters(client: TestClient, world: World) -> None:
    m = world.matches
    response = client.get("/v1/matches", params={"status": "live", "team": "bears"})
    assert response.status_code == 200, response.text
    (live,) = response.json()["items"]
    assert live == {
        "id": m["live"].id,
        "league": {"slug": "premier", "name": world.league.name},
        "competition": {"slug": "cup", "name": "Test Cup"},
        "home": {"slug": "bears", "name": "Summit Bears"},
        "away": {"slug": "hawks", "name": "Harbour Hawks"},
        "kickoff": live["kickoff"],
        "status": "live",
    }
    assert datetime.fromisoformat(live["kickoff"]) == m["live"].kickoff
    assert response.headers["cache-control"] == "public, max-age=30"


def test_matches_without_teams_keep_their_names(client: TestClient, world: World) -> None:
    response = client.get("/v1/matches", params={"league": "premier", "status": "upcoming"})
    later = next(i for i in response.json()["items"] if i["id"] == world.matches["later"].id)
    assert later["home"] == {"slug": None, "name": "Visitors XI"}


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=halftime", "status"), ("limit=0", "limit"), ("limit=101", "limit"),
     ("league=" + "x" * 65, "league")],
)  # fmt: skip
def test_matches_bad_parameters_are_422(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/v1/matches?{query}")
    assert response.status_code == 422, response.text
    assert field in response.text


def test_matches_limit_bounds(client: TestClient, world: World) -> None:
    assert len(client.get("/v1/matches?limit=1").json()["items"]) == 1
    assert len(client.get("/v1/matches?limit=100").json()["items"]) == len(world.matches)


def test_match_detail_with_its_highlights(client: TestClient, db: Session, world: World) -> None:
    match = world.matches["finished"]
    mine = add_asset(db, world.league, title="From the final", ready_at=utcnow(), match_id=match.id)
    add_asset(
        db, world.league, title="Other match", ready_at=utcnow(), match_id=world.matches["live"].id
    )
    response = client.get(f"/v1/matches/{match.id}", params={"lang": "sv"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "finished"
    assert body["home"] == {"slug": "hawks", "name": "Hamnhökarna"}
    assert [h["id"] for h in body["highlights"]] == [mine.id]


def test_match_id_out_of_range_is_422(client: TestClient) -> None:
    assert client.get(f"/v1/matches/{2**40}").status_code == 422


def test_schedule_endpoint(client: TestClient, world: World) -> None:
    m = world.matches
    response = client.get("/v1/schedule", headers={"Accept-Language": "sv"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {i["id"] for i in body["live"]} == {m["live"].id, m["live_long"].id}
    assert [i["id"] for i in body["upcoming"]] == [m["soon"].id, m["later"].id]
    assert body["upcoming"][0]["home"]["name"] == "Hamnhökarna"
    assert body["lang"] == "sv"


def test_blocked_highlights_are_not_listed(client: TestClient, db: Session) -> None:
    unlicensed = League(slug="dark", name="No Rights League")
    db.add(unlicensed)
    db.flush()
    clip = add_asset(db, unlicensed, title="Nobody may watch", ready_at=utcnow())
    response = client.get("/v1/leagues/dark")
    assert response.status_code == 200, response.text
    assert clip.id not in [h["id"] for h in response.json()["latest"]]
    assert response.json()["latest"] == []
