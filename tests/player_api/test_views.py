"""POST /v1/views/{token}: a view counts once per playback, in the test Redis; the beat task
moves the counts into assets.view_count with one UPDATE per asset."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import app as celery_app
from core.celery_app import celery_config
from core.models import Asset, League
from core.settings import Settings
from player_api import view_tasks
from player_api.views import PENDING_KEY, SEEN_PREFIX, ViewCounter, counter_for
from rights import tokens
from tests.conftest import REDIS_TEST_URL
from tests.player_api.fan_fixtures import clip


def _clean(client: redis.Redis) -> None:
    for key in client.scan_iter(match=SEEN_PREFIX + "*"):
        client.delete(key)
    client.delete(PENDING_KEY)


@pytest.fixture
def views_redis() -> Iterator[redis.Redis]:
    """The test Redis with no view keys before or after the test."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    _clean(client)
    yield client
    _clean(client)
    client.close()


@pytest.fixture
def counter(views_redis: redis.Redis) -> ViewCounter:
    return ViewCounter(views_redis)


def view_path(client: TestClient, asset_id: str) -> str:
    response = client.post(f"/v1/playback/{asset_id}")
    assert response.status_code == 200, response.text
    view_url = response.json()["view_url"]
    assert isinstance(view_url, str)
    return urlsplit(view_url).path


def report(client: TestClient, path: str) -> bool:
    response = client.post(path)
    assert response.status_code == 202, response.text
    counted = response.json()["counted"]
    assert isinstance(counted, bool)
    return counted


def test_a_playback_counts_once(
    client: TestClient, db: Session, league: League, counter: ViewCounter
) -> None:
    asset = clip(db, league, "watched")
    first = view_path(client, asset.id)
    assert report(client, first) is True
    assert report(client, first) is False
    assert report(client, first) is False
    assert counter.pending() == {asset.id: 1}
    second = view_path(client, asset.id)  # another playback: another view
    assert report(client, second) is True
    assert counter.pending() == {asset.id: 2}
    db.refresh(asset)
    assert asset.view_count == 0  # nothing written per view


def test_the_seen_key_expires_with_the_token(
    client: TestClient, db: Session, league: League, counter: ViewCounter, settings: Settings
) -> None:
    asset = clip(db, league, "watched")
    path = view_path(client, asset.id)
    report(client, path)
    token = path.rsplit("/", 1)[1]
    ttl = counter._client.ttl(counter.seen_key(token))
    assert isinstance(ttl, int)
    limit = settings.playback_token_ttl_s + settings.token_leeway_s
    assert limit - 60 < ttl <= limit
    assert token not in str(counter._client.keys(SEEN_PREFIX + "*"))  # only a digest


@pytest.mark.usefixtures("views_redis")
@pytest.mark.parametrize("token", ["nonsense", "a.b.c", "k1.e30.xyz"])
def test_invalid_token_is_403(client: TestClient, token: str) -> None:
    response = client.post(f"/v1/views/{token}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_token"


def test_expired_token_is_403(
    client: TestClient, app: FastAPI, db: Session, league: League, counter: ViewCounter
) -> None:
    asset = clip(db, league, "old")
    claims = {"a": asset.id, "p": f"hls/{asset.id}/1", "s": "x"}
    expired = tokens.sign(app.state.signing_keys, claims, ttl_s=-31)
    response = client.post(f"/v1/views/{expired}")
    assert response.status_code == 403
    assert "expired" in response.json()["error"]["message"]
    assert counter.pending() == {}


def test_redis_down_loses_the_view_not_the_request(
    client: TestClient, app: FastAPI, db: Session, league: League
) -> None:
    asset = clip(db, league, "watched")
    path = view_path(client, asset.id)
    app.state.view_counter = counter_for("redis://127.0.0.1:1/0")  # nothing listens there
    assert report(client, path) is False


def test_flush_moves_counts_into_the_database(
    client: TestClient,
    db: Session,
    league: League,
    sessions: sessionmaker[Session],
    counter: ViewCounter,
) -> None:
    popular = clip(db, league, "popular", views=5)
    quiet = clip(db, league, "quiet", minutes=1)
    for _ in range(3):
        report(client, view_path(client, popular.id))
    report(client, view_path(client, quiet.id))
    counter.count("token-of-a-deleted-asset", "f" * 32, ttl_s=60)

    assert view_tasks.flush_views(sessions, counter) == 2  # rows updated
    assert counter.pending() == {}
    db.expire_all()
    assert db.scalar(select(Asset.view_count).where(Asset.id == popular.id)) == 8
    assert db.scalar(select(Asset.view_count).where(Asset.id == quiet.id)) == 1
    assert view_tasks.flush_views(sessions, counter) == 0  # nothing counted twice
    assert db.scalar(select(Asset.view_count).where(Asset.id == popular.id)) == 8

    items = client.get("/v1/highlights", params={"sort": "most_watched"}).json()["items"]
    assert [(i["id"], i["views"]) for i in items] == [(popular.id, 8), (quiet.id, 1)]


def test_a_failed_flush_puts_the_counts_back(
    db: Session, league: League, counter: ViewCounter, sessions: sessionmaker[Session]
) -> None:
    asset = clip(db, league, "watched")
    counter.count("t1", asset.id, ttl_s=60)
    counter.count("t2", asset.id, ttl_s=60)
    nowhere = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(OperationalError, match=r"127\.0\.0\.1"):
        view_tasks.flush_views(sessionmaker(bind=nowhere), counter)
    nowhere.dispose()
    counter.count("t3", asset.id, ttl_s=60)  # counted meanwhile: added, not overwritten
    assert counter.pending() == {asset.id: 3}
    assert view_tasks.flush_views(sessions, counter) == 1
    assert db.scalar(select(Asset.view_count).where(Asset.id == asset.id)) == 3


def test_taking_is_atomic_with_later_counts(counter: ViewCounter) -> None:
    counter.count("a", "asset1", ttl_s=60)
    assert counter.take_pending() == {"asset1": 1}
    counter.count("b", "asset1", ttl_s=60)
    assert counter.take_pending() == {"asset1": 1}
    assert counter.take_pending() == {}


def test_flush_task_is_registered_and_scheduled(settings: Settings) -> None:
    assert "player_api.view_tasks" in celery_app.conf.include
    assert view_tasks.FLUSH_TASK in celery_app.tasks
    schedule = celery_config(settings)["beat_schedule"]
    entry = next(e for e in schedule.values() if e["task"] == view_tasks.FLUSH_TASK)
    assert entry["schedule"] == 30.0
