"""The demo seed: fixtures, teams in three languages, matches around now, and clips with
tags, teams, a match and translations; seeding twice adds nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
    LIVE_ORIGIN,
    Asset,
    AssetTranslation,
    Competition,
    League,
    LiveState,
    LiveStream,
    Match,
    RightsGrant,
    Season,
    Team,
    utcnow,
)
from core.settings import Settings
from core.storage import LocalObjectStore
from ingest.live_streams import stream_for_key
from player_api.sports import MatchStatus, match_status
from web.demo import (
    BUNNY,
    CLIPS,
    DEMO_LANGS,
    MATCHES,
    TEAMS,
    DemoClip,
    DemoSeed,
    demo_publish_command,
    seed_demo,
)

# The demo's clips, each a one-second 160x90 clip (its text and links unchanged).
TINY = tuple(
    dataclasses.replace(clip, video=clip.video.split("=s=")[0] + "=s=160x90:r=15", seconds=1)
    for clip in CLIPS
)


def counts(db: Session) -> dict[str, int]:
    models = (League, Competition, Season, Team, Match, Asset, AssetTranslation)
    return {m.__name__: db.scalar(select(func.count()).select_from(m)) or 0 for m in models}


def seed_all(
    db: Session, settings: Settings, tmp_path: Path, clips: tuple[DemoClip, ...] = TINY
) -> DemoSeed:
    store = LocalObjectStore(tmp_path / "store")
    result = seed_demo(db, store, settings=settings, clips=clips)
    db.commit()
    return result


def seed(
    db: Session, settings: Settings, tmp_path: Path, clips: tuple[DemoClip, ...] = TINY
) -> list[str]:
    return seed_all(db, settings, tmp_path, clips).queued


@pytest.fixture
def seeded(db: Session, settings: Settings, tmp_path: Path) -> list[str]:
    return seed(db, settings, tmp_path)


def demo_assets(db: Session) -> list[Asset]:
    """The demo's clips (its live stream's item aside)."""
    league = db.scalars(select(League).where(League.slug == "demo")).one()
    clips = select(Asset).where(Asset.league_id == league.id, Asset.origin != LIVE_ORIGIN)
    return list(db.scalars(clips))


def test_every_clip_is_queued_and_described_in_three_languages(
    db: Session, seeded: list[str]
) -> None:
    assets = demo_assets(db)
    expected_titles = {c.title for c in TINY} | ({BUNNY.title} if len(seeded) == 4 else set())
    assert {a.title for a in assets} == expected_titles
    assert sorted(seeded) == sorted(a.id for a in assets)
    for asset in assets:
        assert {asset.lang, *(t.lang for t in asset.translations)} == set(DEMO_LANGS), asset.title
        assert all(t.title and t.description for t in asset.translations)
        assert asset.tags, asset.title
        assert len(asset.linked_teams) == 2, asset.title
        assert asset.match_id is not None, asset.title
    beater = next(a for a in assets if a.title == "Buzzer beater")
    titles = {t.lang: t.title for t in beater.translations}
    assert titles == {"zh-Hans": "压哨绝杀", "sv": "Avgörande skott vid slutsignalen"}


@pytest.mark.usefixtures("seeded")
def test_matches_are_finished_live_and_upcoming(db: Session) -> None:
    now = utcnow()
    matches = list(db.scalars(select(Match)))
    statuses = sorted(match_status(m.kickoff, m.final_whistle, now) for m in matches)
    assert statuses == sorted(
        [MatchStatus.FINISHED, MatchStatus.LIVE, MatchStatus.UPCOMING, MatchStatus.UPCOMING]
    )
    assert all(m.home_team_id and m.away_team_id for m in matches)
    upcoming = [m for m in matches if m.kickoff and m.kickoff > now]
    assert all(m.kickoff and m.kickoff < now + timedelta(days=7) for m in upcoming)
    final = next(m for m in matches if m.final_whistle is not None)
    assert {a.title for a in demo_assets(db) if a.match_id == final.id} == {c.title for c in CLIPS}


@pytest.mark.usefixtures("seeded")
def test_teams_have_names_in_three_languages(db: Session) -> None:
    teams = list(db.scalars(select(Team)))
    assert sorted(t.slug for t in teams) == sorted(t.slug for t in TEAMS)
    assert all(set(DEMO_LANGS) <= set(t.names) for t in teams)
    assert {t.names["sv"] for t in teams} >= {"Hamnhökarna", "Toppbjörnarna"}


def test_seeding_twice_adds_nothing_and_keeps_the_live_match_live(
    db: Session, settings: Settings, tmp_path: Path, seeded: list[str]
) -> None:
    before = counts(db)
    assert before["Match"] == len(MATCHES)
    assert seed(db, settings, tmp_path) == []  # nothing new to queue
    assert counts(db) == before
    live = [
        m
        for m in db.scalars(select(Match))
        if match_status(m.kickoff, m.final_whistle, utcnow()) is MatchStatus.LIVE
    ]
    assert len(live) == 1
    assert len(seeded) >= len(TINY)


def test_the_demo_has_a_live_stream_for_its_live_match_with_a_new_key_each_run(
    db: Session, settings: Settings, tmp_path: Path
) -> None:
    first = seed_all(db, settings, tmp_path)
    stream = db.get_one(LiveStream, first.live_stream_id)
    assert stream.state is LiveState.IDLE
    assert stream_for_key(db, first.stream_key) == stream
    asset = stream.asset
    assert {asset.lang, *(t.lang for t in asset.translations)} == set(DEMO_LANGS)
    match = db.get_one(Match, asset.match_id)
    assert match_status(match.kickoff, match.final_whistle, utcnow()) is MatchStatus.LIVE
    licenses = db.scalars(select(RightsGrant.license_type).where(RightsGrant.worldwide))
    assert set(licenses) == {"highlights", "live"}
    second = seed_all(db, settings, tmp_path)
    assert second.live_stream_id == first.live_stream_id
    assert stream_for_key(db, first.stream_key) is None  # rotated: keys are shown once
    assert stream_for_key(db, second.stream_key) == stream
    command = demo_publish_command(settings.rtmp_public_url, second.stream_key)
    assert command.endswith(f"-f flv {settings.rtmp_public_url}/{second.stream_key}")


@pytest.mark.usefixtures("seeded")
def test_fans_see_the_demo_in_their_language(client: TestClient) -> None:
    teams = client.get("/v1/leagues/demo/teams", params={"lang": "zh-Hans"}).json()
    assert {t["name"] for t in teams["items"]} == {"港湾雄鹰", "北极光", "河城流浪者", "峰顶熊"}
    schedule = client.get("/v1/schedule", headers={"Accept-Language": "sv"}).json()
    (live,) = schedule["live"]
    assert (live["home"]["name"], live["away"]["name"]) == ("Älvstadens Vandrare", "Toppbjörnarna")
    assert len(schedule["upcoming"]) == 2
    leagues = client.get("/v1/leagues").json()["items"]
    demo = next(lg for lg in leagues if lg["slug"] == "demo")
    assert {c["slug"] for c in demo["competitions"]} == {"premier-division", "demo-cup"}
