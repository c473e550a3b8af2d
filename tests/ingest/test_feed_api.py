"""The league feed API: register (validated like pulls), list, status, change, poll now,
delete; only the league's partners and admins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.models import League, LeagueFeed, Role
from core.settings import Settings
from ingest.feed_poll import PollTools, poll_feed
from ingest.pull import pull_limits
from tests.conftest import bearer, make_settings
from tests.ingest.feeds.server import Origin, serving

MRSS = "application/rss+xml"


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, pg_url, pull_allowed_networks=["127.0.0.0/8"])


@pytest.fixture
def origin() -> Iterator[Origin]:
    with serving() as served:
        yield served


def _register(client: TestClient, key: str, url: str, interval_s: int = 300) -> dict[str, object]:
    response = client.post(
        "/v1/leagues/premier/feeds",
        json={"url": url, "interval_s": interval_s},
        headers=bearer(key),
    )
    body: dict[str, object] = response.json()
    body["_status"] = response.status_code
    return body


def test_a_feed_is_registered_and_listed(client: TestClient, partner_key: str) -> None:
    created = _register(client, partner_key, "https://league.example/highlights.xml")
    assert created["_status"] == 201
    assert created["active"] is True
    assert created["last_status"] is None
    listed = client.get("/v1/leagues/premier/feeds", headers=bearer(partner_key)).json()
    assert [feed["id"] for feed in listed] == [created["id"]]


@pytest.mark.parametrize(
    ("url", "interval_s", "code"),
    [
        ("http://169.254.169.254/feed.xml", 300, "url_refused"),
        ("ftp://league.example/feed.xml", 300, "url_refused"),
        ("https://league.example/feed.xml", 10, "invalid_input"),  # below feed_min_interval_s
    ],
)
def test_bad_feeds_are_refused(
    client: TestClient, partner_key: str, url: str, interval_s: int, code: str
) -> None:
    body = _register(client, partner_key, url, interval_s)
    assert body["_status"] == 422
    assert body["error"]["code"] == code  # type: ignore[index]


def test_the_same_feed_twice_conflicts(client: TestClient, partner_key: str) -> None:
    _register(client, partner_key, "https://league.example/feed.xml")
    again = _register(client, partner_key, "https://league.example/feed.xml")
    assert again["_status"] == 409


def test_the_status_shows_counts_and_item_reasons(
    client: TestClient, partner_key: str, sessions: sessionmaker[Session], settings: Settings,
    origin: Origin,
) -> None:  # fmt: skip
    created = _register(client, partner_key, origin.feed("/feed.xml", "mrss.xml", MRSS))
    feed_id = int(str(created["id"]))
    poll_feed(PollTools(sessions, pull_limits(settings)), feed_id, datetime.now(UTC))
    status = client.get(f"/v1/feeds/{feed_id}", headers=bearer(partner_key)).json()
    assert (status["items_found"], status["items_failed"]) == (6, 4)
    assert status["last_status"] == "ok"
    assert status["last_polled_at"] is not None
    by_guid = {item["guid"]: item for item in status["recent_items"]}
    assert by_guid["goal-1001"]["status"] == "ingested"
    assert by_guid["goal-1001"]["asset_id"]
    assert by_guid["text-1004"]["error"]["code"] == "no_media_url"
    assert "no video URL" in by_guid["text-1004"]["error"]["message"]
    again = client.post(f"/v1/feeds/{feed_id}/poll", headers=bearer(partner_key))
    assert again.status_code == 409  # polled a moment ago
    assert "try again in" in again.json()["error"]["message"]


def test_a_feed_is_paused_rescheduled_polled_now_and_deleted(
    client: TestClient, db: Session, partner_key: str
) -> None:
    feed_id = _register(client, partner_key, "https://league.example/feed.xml")["id"]
    url, auth = f"/v1/feeds/{feed_id}", bearer(partner_key)
    changed = client.patch(url, json={"active": False, "interval_s": 900}, headers=auth)
    assert changed.status_code == 200
    assert (changed.json()["active"], changed.json()["interval_s"]) == (False, 900)
    too_fast = client.patch(url, json={"interval_s": 1}, headers=auth)
    assert too_fast.status_code == 422
    assert client.post(f"{url}/poll", headers=auth).status_code == 202
    assert client.delete(url, headers=auth).status_code == 204
    assert db.get(LeagueFeed, feed_id) is None
    assert client.get(url, headers=auth).status_code == 404


def test_feeds_belong_to_their_leagues_partners(
    client: TestClient, db: Session, partner_key: str, other_league: League
) -> None:
    feed_id = _register(client, partner_key, "https://league.example/feed.xml")["id"]
    _key, other = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    db.commit()
    assert client.get(f"/v1/feeds/{feed_id}").status_code == 401
    assert client.get(f"/v1/feeds/{feed_id}", headers=bearer(other)).status_code == 403
    assert client.delete(f"/v1/feeds/{feed_id}", headers=bearer(other)).status_code == 403
    assert client.get("/v1/leagues/premier/feeds", headers=bearer(other)).status_code == 403
    body = {"url": "https://x.example/f.xml", "interval_s": 300}
    response = client.post("/v1/leagues/premier/feeds", json=body, headers=bearer(other))
    assert response.status_code == 403
