"""Pulling a clip from a URL: the API (validation, access) and the task's work against a real
HTTP server on loopback, PostgreSQL and the local store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.models import Asset, AssetStatus, League, Role
from core.settings import Settings
from core.storage import LocalObjectStore
from ingest.pull import PullInterrupted, PullTools, pull_limits, pull_source
from ingest.uploads import source_key
from tests.conftest import bearer, make_settings
from tests.ingest.feeds.server import Origin, Route

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    """The suite's settings with loopback exempt from the pull refusal (off by default)."""
    return make_settings(tmp_path, pg_url, pull_allowed_networks=LOOPBACK)


@pytest.fixture
def tools(sessions: sessionmaker[Session], settings: Settings) -> PullTools:
    return PullTools(sessions, LocalObjectStore(settings.local_media_dir), pull_limits(settings))


def _pending(db: Session, league: League, url: str) -> Asset:
    asset = Asset(league=league, title="Goal", status=AssetStatus.UPLOADING, source_url=url,
                  origin="url")  # fmt: skip
    db.add(asset)
    db.commit()
    return asset


def _pull(client: TestClient, key: str, url: str, **extra: object) -> dict[str, object]:
    body = {"league": "premier", "title": "Late winner", "url": url, **extra}
    response = client.post("/v1/assets/pull", json=body, headers=bearer(key))
    result: dict[str, object] = response.json()
    result["_status"] = response.status_code
    return result


def test_a_pull_request_creates_an_uploading_asset(
    client: TestClient, db: Session, partner_key: str, origin: Origin
) -> None:
    url = f"{origin.base_url}/clips/goal.mp4"
    body = _pull(client, partner_key, url, teams=["Riverside FC", " Riverside  FC "])
    assert body["_status"] == 202
    assert body["status"] == "uploading"
    asset = db.get_one(Asset, body["id"])
    assert (asset.origin, asset.source_url) == ("url", url)
    assert asset.teams == ["Riverside FC"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/clip.mp4",
        "http://[fd00:ec2::254]/clip.mp4",
        "http://2852039166/latest/meta-data/",  # 169.254.169.254 as one number
        "file:///etc/passwd",
        "http://user:secret@cdn.example.com/clip.mp4",
    ],
)
def test_refused_urls_are_refused_at_once(
    client: TestClient, db: Session, partner_key: str, url: str
) -> None:
    body = _pull(client, partner_key, url)
    assert body["_status"] == 422
    assert body["error"]["code"] == "url_refused"  # type: ignore[index]
    assert db.query(Asset).count() == 0


def test_loopback_is_refused_with_the_default_settings(
    tmp_path: Path, pg_url: str, db: Session, league: League, sessions: sessionmaker[Session],
    origin: Origin,
) -> None:  # fmt: skip
    defaults = make_settings(tmp_path, pg_url)
    assert defaults.pull_allowed_networks == []
    asset = _pending(db, league, f"{origin.base_url}/clips/goal.mp4")
    store = LocalObjectStore(defaults.local_media_dir)
    pull_source(PullTools(sessions, store, pull_limits(defaults)), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "url_refused"
    assert "not a public internet address" in (asset.error_message or "")
    assert origin.seen == []  # nothing was fetched


@pytest.mark.usefixtures("league")
def test_pulls_need_a_partner_of_the_league(
    client: TestClient, db: Session, other_league: League
) -> None:
    body = {"league": "premier", "title": "t", "url": "https://cdn.example.com/a.mp4"}
    assert client.post("/v1/assets/pull", json=body).status_code == 401
    _key, other = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    db.commit()
    response = client.post("/v1/assets/pull", json=body, headers=bearer(other))
    assert response.status_code == 403


def test_the_pull_stores_the_bytes_and_queues_processing(
    db: Session, league: League, tools: PullTools, origin: Origin, clip: bytes
) -> None:
    asset = _pending(db, league, f"{origin.base_url}/clips/goal.mp4")
    pull_source(tools, asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.QUEUED
    assert asset.source_key == source_key(asset.id)
    assert asset.source_size == len(clip)
    assert tools.store.get_bytes(source_key(asset.id)) == clip


def test_a_second_delivery_of_the_task_does_nothing(
    db: Session, league: League, tools: PullTools, origin: Origin
) -> None:
    asset = _pending(db, league, f"{origin.base_url}/clips/goal.mp4")
    pull_source(tools, asset.id)
    pull_source(tools, asset.id)
    assert len(origin.headers_of("/clips/goal.mp4")) == 1


def test_an_http_error_fails_the_asset_with_the_status(
    db: Session, league: League, tools: PullTools, origin: Origin
) -> None:
    asset = _pending(db, league, f"{origin.base_url}/clips/missing.mp4")
    pull_source(tools, asset.id, final=False)  # a 404 is not worth retrying
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "download_failed"
    assert "HTTP 404" in (asset.error_message or "")


def test_a_file_over_the_limit_fails_as_too_large(
    db: Session, league: League, tools: PullTools, origin: Origin
) -> None:
    asset = _pending(db, league, f"{origin.base_url}/clips/goal.mp4")
    small = replace(tools, limits=replace(tools.limits, max_bytes=1000))
    pull_source(small, asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "too_large"
    assert "1000 bytes" in (asset.error_message or "")
    assert not tools.store.exists(source_key(asset.id))


def test_connection_errors_are_retried_then_fail(
    db: Session, league: League, tools: PullTools, origin: Origin
) -> None:
    origin.routes["/clips/flaky.mp4"] = Route(b"busy", status=503)
    asset = _pending(db, league, f"{origin.base_url}/clips/flaky.mp4")
    with pytest.raises(PullInterrupted, match="HTTP 503"):
        pull_source(tools, asset.id, final=False)
    db.refresh(asset)
    assert asset.status.value == "uploading"  # still waiting for the retry
    pull_source(tools, asset.id, final=True)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "download_failed"
    assert "HTTP 503" in (asset.error_message or "")


def test_a_refused_connection_is_retryable(db: Session, league: League, tools: PullTools) -> None:
    asset = _pending(db, league, "http://127.0.0.1:9/clip.mp4")
    with pytest.raises(PullInterrupted, match="refused"):
        pull_source(tools, asset.id, final=False)
