"""GET /v1/highlights: filters, sorts, cursors, the Highlight shape, languages, ETags and the
number of SQL statements per request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session

from core.models import League
from tests.player_api.fan_fixtures import add_match, add_team, clip


def ids(client: TestClient, **params: str | int) -> list[str]:
    response = client.get("/v1/highlights", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- filters ---------------------------------------------------------------------------------


def test_filters_by_competition_match_and_team(
    client: TestClient, db: Session, league: League
) -> None:
    north = add_team(db, league, "north", "North City")
    south = add_team(db, league, "south", "South FC")
    east = add_team(db, league, "east", "East United")
    cup_final = add_match(db, league, home=north, away=south, competition="cup")
    derby = add_match(db, league, home=south, away=east, competition="league")
    in_final = clip(db, league, "final", match=cup_final)
    in_derby = clip(db, league, "derby", match=derby, minutes=1)
    linked = clip(db, league, "north training", teams=[north], minutes=2)
    clip(db, league, "unrelated", minutes=3)

    assert ids(client, competition="cup") == [in_final.id]
    assert ids(client, competition="league") == [in_derby.id]
    assert ids(client, match=cup_final.id) == [in_final.id]
    # A team's clips: linked to it, or of a match it played.
    assert ids(client, team="north") == [linked.id, in_final.id]
    assert ids(client, team="south") == [in_derby.id, in_final.id]
    assert ids(client, team="south", competition="league") == [in_derby.id]
    assert ids(client, team="south", league="other") == []


@pytest.mark.parametrize(
    "params",
    [{"league": "nobody"}, {"competition": "nope"}, {"team": "ghosts"}, {"match": 999999}],
)
def test_unknown_filter_values_give_an_empty_list(
    client: TestClient, db: Session, league: League, params: dict[str, str | int]
) -> None:
    clip(db, league, "something")
    response = client.get("/v1/highlights", params=params)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_tag_filter_matches_whole_tags_case_insensitively(
    client: TestClient, db: Session, league: League
) -> None:
    goal = clip(db, league, "goal", tags=["goal", "Last-Minute"])
    own = clip(db, league, "own goal", tags=["own-goal"], minutes=1)
    odd = clip(db, league, "odd", tags=['50% "quoted"', "进球"], minutes=2)
    assert ids(client, tag="goal") == [goal.id]
    assert ids(client, tag="GOAL") == [goal.id]
    assert ids(client, tag="last-minute") == [goal.id]
    assert ids(client, tag="own-goal") == [own.id]
    assert ids(client, tag='50% "quoted"') == [odd.id]
    assert ids(client, tag="进球") == [odd.id]
    assert ids(client, tag="%") == []
    assert ids(client, tag="go") == []


def test_free_text_searches_titles_and_descriptions_in_every_language(
    client: TestClient, db: Session, league: League
) -> None:
    en = clip(db, league, "Stunning volley", description="From 30 yards")
    sv = clip(db, league, "Mål i sista minuten", lang="sv", minutes=1)
    zh = clip(db, league, "Header", translations={"zh-Hans": "精彩头球"}, minutes=2)
    pct = clip(db, league, "100% effort", minutes=3)
    assert ids(client, q="VOLLEY") == [en.id]
    assert ids(client, q="30 yards") == [en.id]
    assert ids(client, q="sista") == [sv.id]
    assert ids(client, q="头球") == [zh.id]
    assert ids(client, q="100%") == [pct.id]
    assert ids(client, q="%") == [pct.id]  # a literal percent sign, not a wildcard
    assert ids(client, q="_") == []


def test_query_longer_than_100_characters_is_422(client: TestClient) -> None:
    assert client.get("/v1/highlights", params={"q": "x" * 100}).status_code == 200
    response = client.get("/v1/highlights", params={"q": "x" * 101})
    assert response.status_code == 422
    assert "q" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("sort", "oldest"), ("match", "abc"), ("league", "x" * 65), ("lang", "x" * 36)],
)
def test_bad_parameters_are_422(client: TestClient, name: str, value: str) -> None:
    response = client.get("/v1/highlights", params={name: value})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert name in response.json()["error"]["message"]


# --- sorting and cursors ---------------------------------------------------------------------


def walk(client: TestClient, limit: int, **params: str) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        query: dict[str, str | int] = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        body = client.get("/v1/highlights", params=query).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination does not terminate")


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_most_watched_pages_through_ties_exactly_once(
    client: TestClient, db: Session, league: League, limit: int
) -> None:
    views = [10, 10, 10, 3, 3, 0, 50]
    minutes = [0, 0, 5, 1, 1, 2, 3]
    assets = [
        clip(db, league, f"c{i}", views=v, minutes=m)
        for i, (v, m) in enumerate(zip(views, minutes, strict=True))
    ]
    expected = [
        a.id
        for a in sorted(assets, key=lambda a: (a.view_count, a.playable_at, a.id), reverse=True)
    ]
    assert walk(client, limit, sort="most_watched") == expected
    assert expected[0] == assets[6].id
    newest = [a.id for a in sorted(assets, key=lambda a: (a.playable_at, a.id), reverse=True)]
    assert walk(client, limit, sort="newest") == newest


def test_cursor_is_opaque_and_bound_to_its_sort(
    client: TestClient, db: Session, league: League
) -> None:
    for i in range(3):
        clip(db, league, f"c{i}", minutes=i, views=i)
    cursor = client.get("/v1/highlights", params={"limit": 1}).json()["next_cursor"]
    assert cursor is not None
    assert cursor.isascii()
    assert "2026" not in cursor  # no readable timestamp for clients to depend on
    response = client.get(
        "/v1/highlights", params={"limit": 1, "cursor": cursor, "sort": "most_watched"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",
        _b64([1, 2]),
        _b64({"s": "newest", "k": ["not a date", "abc"]}),
        _b64({"s": "newest", "k": ["2026-03-01T12:00:00+00:00"]}),
        _b64({"s": "newest", "k": ["2026-03-01T12:00:00+00:00", 5]}),
        _b64({"s": "most_watched", "k": ["x", "2026-03-01T12:00:00+00:00", "a"]}),
        _b64({"k": []}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_cursor_is_422(client: TestClient, cursor: str) -> None:
    response = client.get("/v1/highlights", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"
    assert "cursor" in response.json()["error"]["message"]


# --- the Highlight shape and languages -------------------------------------------------------


def test_highlight_carries_league_competition_teams_match_and_counts(
    client: TestClient, db: Session, league: League
) -> None:
    north = add_team(db, league, "north", "North City", **{"zh-Hans": "北城", "sv": "Norrstad"})
    south = add_team(db, league, "south", "South FC")
    kickoff = datetime.now(UTC) - timedelta(minutes=30)
    match = add_match(db, league, home=north, away=south, kickoff=kickoff)
    asset = clip(db, league, "Winner", match=match, tags=["goal"], views=7)
    asset.duration_s = 12.5
    asset.poster_key = f"hls/{asset.id}/1/thumbs/poster.jpg"
    db.commit()

    item = client.get("/v1/highlights").json()["items"][0]
    assert item["league"] == {"slug": "premier", "name": league.name}
    assert item["competition"] == {"slug": "cup", "name": "Cup"}
    assert item["teams"] == [
        {"slug": "north", "name": "North City"},
        {"slug": "south", "name": "South FC"},
    ]
    assert item["match"]["id"] == match.id
    assert (item["match"]["home"], item["match"]["away"]) == ("North City", "South FC")
    assert item["match"]["status"] == "live"
    assert datetime.fromisoformat(item["match"]["kickoff"]) == kickoff
    assert item["tags"] == ["goal"]
    assert item["views"] == 7
    assert item["duration_s"] == 12.5
    assert item["is_live"] is False
    assert item["storyboard_url"] is None
    assert item["poster_url"].endswith(f"/v1/highlights/{asset.id}/poster")
    assert item["playback_url"].endswith(f"/v1/playback/{asset.id}")

    zh = client.get("/v1/highlights", headers={"Accept-Language": "zh-CN"}).json()["items"][0]
    assert zh["teams"][0]["name"] == "北城"
    assert zh["match"]["home"] == "北城"
    assert zh["teams"][1]["name"] == "South FC"  # no Chinese name: its own


def test_clip_without_a_match_or_poster(client: TestClient, db: Session, league: League) -> None:
    clip(db, league, "solo")
    item = client.get("/v1/highlights").json()["items"][0]
    assert item["match"] is None
    assert item["competition"] is None
    assert item["teams"] == []
    assert item["poster_url"] is None


@pytest.fixture
def trilingual(db: Session, league: League) -> str:
    asset = clip(
        db, league, "Late winner", translations={"zh-Hans": "绝杀", "sv": "Sent avgörande"}
    )
    return asset.id


@pytest.mark.parametrize(
    ("headers", "params", "lang", "title"),
    [
        ({}, {}, "en", "Late winner"),
        ({"Accept-Language": "zh-Hans"}, {}, "zh-Hans", "绝杀"),
        ({"Accept-Language": "zh-CN,zh;q=0.9"}, {}, "zh-Hans", "绝杀"),
        ({"Accept-Language": "zh-TW"}, {}, "zh-Hans", "绝杀"),
        ({"Accept-Language": "zh"}, {}, "zh-Hans", "绝杀"),
        ({"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.8"}, {}, "sv", "Sent avgörande"),
        ({"Accept-Language": "en-GB"}, {}, "en", "Late winner"),
        ({"Accept-Language": "de-DE,fr;q=0.5"}, {}, "en", "Late winner"),
        ({"Accept-Language": "da, sv;q=0.5"}, {}, "sv", "Sent avgörande"),
        ({"Accept-Language": "sv"}, {"lang": "zh-Hans"}, "zh-Hans", "绝杀"),
        ({"Accept-Language": "en;q=0.1, sv;q=0.9"}, {}, "sv", "Sent avgörande"),
        ({"Accept-Language": ";;q=x,,<>"}, {}, "en", "Late winner"),
        ({"Accept-Language": "sv;q=0"}, {}, "en", "Late winner"),
    ],
)
def test_language_negotiation_and_fallbacks(
    client: TestClient,
    trilingual: str,
    headers: dict[str, str],
    params: dict[str, str],
    lang: str,
    title: str,
) -> None:
    response = client.get("/v1/highlights", headers=headers, params=params)
    item = response.json()["items"][0]
    assert (item["id"], item["lang"], item["title"]) == (trilingual, lang, title)
    assert response.headers["content-language"] == lang
    assert "accept-language" in response.headers["vary"].lower()


def test_own_language_is_the_fallback_for_a_non_english_clip(
    client: TestClient, db: Session, league: League
) -> None:
    clip(db, league, "Mål!", lang="sv", translations={"zh-Hans": "进球"})
    item = client.get("/v1/highlights", headers={"Accept-Language": "de"}).json()["items"][0]
    assert (item["lang"], item["title"]) == ("sv", "Mål!")


# --- caching ---------------------------------------------------------------------------------


def test_etag_gives_304_until_the_list_changes(
    client: TestClient, db: Session, league: League
) -> None:
    clip(db, league, "first")
    response = client.get("/v1/highlights")
    etag = response.headers["etag"]
    assert response.headers["cache-control"] == "private, max-age=10"
    again = client.get("/v1/highlights", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get("/v1/highlights", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    # Another language is another body, hence another ETag.
    swedish = client.get("/v1/highlights", headers={"If-None-Match": etag, "Accept-Language": "sv"})
    assert swedish.status_code == 304  # same body: the only clip is English-only
    clip(db, league, "second", minutes=5)
    changed = client.get("/v1/highlights", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(changed.json()["items"]) == 2


def test_etag_differs_by_language(client: TestClient, trilingual: str) -> None:
    en = client.get("/v1/highlights").headers["etag"]
    response = client.get("/v1/highlights", headers={"If-None-Match": en, "Accept-Language": "sv"})
    assert response.status_code == 200
    assert response.json()["items"][0]["id"] == trilingual
    assert response.headers["etag"] != en


# --- SQL statements per request --------------------------------------------------------------


@pytest.fixture
def statements(db_connection: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(db_connection, "before_cursor_execute", record)
    yield seen
    event.remove(db_connection, "before_cursor_execute", record)


def test_statements_per_request_do_not_grow_with_the_page(
    client: TestClient, db: Session, league: League, statements: list[str]
) -> None:
    teams = [add_team(db, league, f"t{i}", f"Team {i}", sv=f"Lag {i}") for i in range(4)]
    for i in range(20):
        match = add_match(db, league, home=teams[i % 4], away=teams[(i + 1) % 4])
        clip(db, league, f"c{i}", match=match, teams=teams[:2], translations={"sv": f"k{i}"})
    client.get("/v1/highlights")  # fills the rights cache

    counts = {}
    for limit in (2, 20):
        statements.clear()
        response = client.get("/v1/highlights", params={"limit": limit, "lang": "sv"})
        assert len(response.json()["items"]) == limit
        counts[limit] = len(statements)
    assert counts[2] == counts[20], statements
    # The assets, their translations, teams and live streams, the page's matches and their
    # teams, and the savepoint the test session wraps it in.
    assert counts[20] <= 8, [s[:60] for s in statements]
