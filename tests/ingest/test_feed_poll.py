"""Polling league feeds against a real HTTP server on loopback and PostgreSQL: conditional
GETs, once-per-guid items, reasons for bad items, failures and backoff, claiming."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import (
    Asset,
    AssetStatus,
    FeedItem,
    League,
    LeagueFeed,
    Match,
)
from core.settings import Settings
from core.storage import LocalObjectStore
from ingest.feed_poll import PollTools, claim_due_feeds, poll_feed
from ingest.pull import PullTools, pull_limits, pull_source
from ingest.uploads import source_key
from tests.conftest import make_settings
from tests.ingest.feeds.server import Origin, Route
from tests.rights.conftest import scope_tree

NOW = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
MRSS = "application/rss+xml"
JSON_FEED = "application/feed+json"


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, pg_url, pull_allowed_networks=["127.0.0.0/8"])


@pytest.fixture
def tools(sessions: sessionmaker[Session], settings: Settings) -> PollTools:
    return PollTools(sessions, pull_limits(settings))


def _match(db: Session, league: League) -> Match:
    return scope_tree(db, league, home="Riverside FC", away="Harbour United")


def _feed(db: Session, league: League, url: str) -> LeagueFeed:
    feed = LeagueFeed(league_id=league.id, url=url, interval_s=300, next_poll_at=NOW)
    db.add(feed)
    db.commit()
    return feed


def _items(db: Session, feed: LeagueFeed) -> dict[str, FeedItem]:
    rows = db.scalars(select(FeedItem).where(FeedItem.feed_id == feed.id))
    return {item.guid: item for item in rows}


def test_mrss_items_become_assets_and_bad_ones_keep_their_reason(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    match = _match(db, league)
    feed = _feed(db, league, origin.feed("/feed.xml", "mrss.xml", MRSS, match=match.id))
    result = poll_feed(tools, feed.id, NOW)
    assert (result.status, result.ingested, result.failed) == ("ok", 2, 4)
    items = _items(db, feed)
    reasons = {guid: item.error_code for guid, item in items.items()}
    assert reasons == {
        "goal-1001": None, "save-1002": None, "photo-1003": "unsupported_type",
        "text-1004": "no_media_url", "live-1005": "unsupported_type",
        "internal-1006": "url_refused",
    }  # fmt: skip
    assert "169.254.169.254" in (items["internal-1006"].error_message or "")
    goal = db.get_one(Asset, items["goal-1001"].asset_id)
    assert goal.status is AssetStatus.UPLOADING
    assert (goal.origin, goal.source_url) == ("feed", f"{origin.base_url}/clips/goal.mp4")
    assert goal.title == "Late winner at the Riverside"
    assert goal.teams == ["Riverside FC", "Harbour United"]
    assert goal.published_at == datetime(2026, 11, 28, 17, 45, tzinfo=UTC)
    assert goal.match_id == match.id
    db.refresh(feed)
    assert (feed.items_found, feed.items_failed, feed.last_status) == (6, 4, "ok")
    assert feed.etag is not None
    assert feed.next_poll_at == NOW + timedelta(seconds=300)


def test_json_feed_items_become_assets(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    feed = _feed(db, league, origin.feed("/feed.json", "jsonfeed.json", JSON_FEED))
    result = poll_feed(tools, feed.id, NOW)
    assert (result.ingested, result.failed) == (2, 2)
    items = _items(db, feed)
    clearance = db.get_one(Asset, items["2002"].asset_id)
    # A relative attachment URL is resolved against the feed's own URL.
    assert clearance.source_url == f"{origin.base_url}/clips/clearance.mp4"
    assert clearance.teams == ["Riverside FC"]
    assert items["jf-2003"].error_code == "unsupported_type"
    assert items["jf-2004"].error_code == "no_media_url"


def test_a_match_of_another_league_is_not_linked(
    db: Session, league: League, other_league: League, tools: PollTools, origin: Origin
) -> None:
    foreign = _match(db, other_league)
    feed = _feed(db, league, origin.feed("/feed.json", "jsonfeed.json", JSON_FEED, foreign.id))
    poll_feed(tools, feed.id, NOW)
    kick = db.get_one(Asset, _items(db, feed)["jf-2001"].asset_id)
    assert kick.match_id is None


def test_a_conditional_get_sends_the_etag_and_a_304_creates_nothing(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    feed = _feed(db, league, origin.feed("/feed.xml", "mrss.xml", MRSS))
    poll_feed(tools, feed.id, NOW)
    db.refresh(feed)
    etag = feed.etag
    assets_before = db.scalar(select(func.count(Asset.id)))
    result = poll_feed(tools, feed.id, NOW + timedelta(minutes=5))
    assert result.status == "not_modified"
    assert origin.headers_of("/feed.xml")[-1]["if-none-match"] == etag
    assert db.scalar(select(func.count(Asset.id))) == assets_before
    db.refresh(feed)
    assert (feed.last_status, feed.items_found) == ("not_modified", 6)


def test_the_same_guid_is_ingested_once_across_polls(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    feed = _feed(db, league, origin.feed("/feed.json", "jsonfeed.json", JSON_FEED))
    poll_feed(tools, feed.id, NOW)
    # The document changes (new ETag) but keeps its items: nothing is ingested twice.
    route = origin.routes["/feed.json"]
    origin.routes["/feed.json"] = Route(route.body + b"\n", content_type=JSON_FEED)
    result = poll_feed(tools, feed.id, NOW + timedelta(minutes=5))
    assert (result.status, result.ingested, result.failed) == ("ok", 0, 0)
    assert len(_items(db, feed)) == 4
    assert db.scalar(select(func.count(Asset.id)).where(Asset.origin == "feed")) == 2


def test_a_failing_feed_records_the_error_and_backs_off(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    origin.routes["/broken.xml"] = Route(b"oops", status=500)
    feed = _feed(db, league, f"{origin.base_url}/broken.xml")
    assert poll_feed(tools, feed.id, NOW).status == "download_failed"
    db.refresh(feed)
    assert "HTTP 500" in (feed.last_error or "")
    assert feed.next_poll_at == NOW + timedelta(seconds=300)
    later = NOW + timedelta(seconds=300)
    poll_feed(tools, feed.id, later)
    db.refresh(feed)
    assert feed.next_poll_at == later + timedelta(seconds=600)  # doubled after a second failure


def test_an_entity_bomb_feed_is_refused(
    db: Session, league: League, tools: PollTools, origin: Origin
) -> None:
    feed = _feed(db, league, origin.feed("/bomb.xml", "bomb.xml", MRSS))
    assert poll_feed(tools, feed.id, NOW).status == "feed_invalid"
    db.refresh(feed)
    assert "DTD or entities" in (feed.last_error or "")
    assert _items(db, feed) == {}


def test_a_feed_on_loopback_is_refused_by_default(
    tmp_path: Path, pg_url: str, db: Session, league: League, sessions: sessionmaker[Session],
    origin: Origin,
) -> None:  # fmt: skip
    feed = _feed(db, league, origin.feed("/feed.xml", "mrss.xml", MRSS))
    defaults = PollTools(sessions, pull_limits(make_settings(tmp_path, pg_url)))
    assert poll_feed(defaults, feed.id, NOW).status == "url_refused"
    assert origin.seen == []


def test_polled_items_are_pulled_into_the_store(
    db: Session, league: League, tools: PollTools, origin: Origin, clip: bytes, settings: Settings
) -> None:
    feed = _feed(db, league, origin.feed("/feed.xml", "mrss.xml", MRSS))
    poll_feed(tools, feed.id, NOW)
    asset_id = _items(db, feed)["save-1002"].asset_id
    assert asset_id is not None
    store = LocalObjectStore(settings.local_media_dir)
    pull_source(PullTools(tools.sessions, store, tools.limits), asset_id)
    asset = db.get_one(Asset, asset_id)
    db.refresh(asset)
    assert asset.status is AssetStatus.QUEUED
    assert store.get_bytes(source_key(asset_id)) == clip


def test_claiming_moves_due_feeds_forward_once(db: Session, league: League) -> None:
    due = _feed(db, league, "https://feeds.example/a.xml")
    paused = _feed(db, league, "https://feeds.example/b.xml")
    paused.active = False
    later = _feed(db, league, "https://feeds.example/c.xml")
    later.next_poll_at = NOW + timedelta(hours=1)
    db.commit()
    assert claim_due_feeds(db, NOW) == [due.id]
    db.commit()
    assert due.next_poll_at == NOW + timedelta(seconds=300)
    assert claim_due_feeds(db, NOW) == []  # a second beat finds nothing due


# --- concurrency, on committed rows (separate connections, cleaned up after) ------------------


@pytest.fixture
def committed(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(pg_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    yield factory
    with factory.begin() as session:
        league_id = session.scalar(select(League.id).where(League.slug == "race"))
        session.execute(delete(Asset).where(Asset.league_id == league_id))
        session.execute(delete(League).where(League.id == league_id))
    engine.dispose()


def test_concurrent_polls_ingest_each_item_once(
    committed: sessionmaker[Session], settings: Settings, origin: Origin
) -> None:
    url = origin.feed("/feed.xml", "mrss.xml", MRSS)
    with committed.begin() as session:
        league = League(slug="race", name="Race")
        session.add(league)
        session.flush()
        feed = LeagueFeed(league_id=league.id, url=url, next_poll_at=NOW)
        session.add(feed)
    tools = PollTools(committed, pull_limits(settings))
    threads = [threading.Thread(target=poll_feed, args=(tools, feed.id, NOW)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with committed() as session:
        assert session.scalar(select(func.count(FeedItem.id)).filter_by(feed_id=feed.id)) == 6
        assert session.scalar(select(func.count(Asset.id)).filter_by(league_id=league.id)) == 2
        assert session.get_one(LeagueFeed, feed.id).items_found == 6
