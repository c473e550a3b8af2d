"""POST /v1/assets and GET /v1/assets/{id} against PostgreSQL, Redis and the local store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
import redis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import core.auth
import core.celery_app
from core.auth import create_api_key, create_user, sign_in
from core.models import Asset, AssetStatus, League, Role
from ingest.uploads import PROCESS_TASK, queue_processing
from tests.conftest import bearer, make_settings, store_of
from tests.queues import forget, forget_assets, queued_for
from web.app import create_app

CLIP = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
SMALL_LIMIT = 1000
FORM_OVERHEAD = 64 * 1024


def upload(
    client: TestClient,
    key: str | None,
    *,
    content: bytes = CLIP,
    content_type: str = "video/mp4",
    **form: str,
) -> httpx2.Response:
    data = {"league": "premier", "title": "Late winner", **form}
    headers = bearer(key) if key else {}
    files = {"file": ("goal.mp4", content, content_type)}
    return client.post("/v1/assets", data=data, files=files, headers=headers)


def stored_sources(client: TestClient) -> list[str]:
    return list(store_of(client).list_keys("sources/"))


def asset_count(db: Session) -> int:
    return len(list(db.scalars(select(Asset.id))))


@pytest.fixture(autouse=True)
def _leave_no_tasks_behind(queue: redis.Redis, db: Session) -> Iterator[None]:
    """Uploads really reach the broker; drop this test's messages so the queue stays clean."""
    yield
    forget_assets(queue, db)


# --- a successful upload ---------------------------------------------------------------------


def test_partner_upload_is_stored_and_queued(
    client: TestClient, partner_key: str, db: Session, queue: redis.Redis
) -> None:
    response = upload(client, partner_key, description="Stoppage time")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["league"] == "premier"
    assert body["title"] == "Late winner"
    assert body["description"] == "Stoppage time"
    assert body["error"] is None
    asset = db.get(Asset, body["id"])
    assert asset is not None
    assert asset.status is AssetStatus.QUEUED
    assert asset.source_size == len(CLIP)
    assert asset.source_filename == "goal.mp4"
    assert asset.source_key == f"sources/{asset.id}/original"
    assert store_of(client).get_bytes(asset.source_key) == CLIP
    # The commit sent the transcode task to the broker, naming the new asset.
    sent = queued_for(queue, asset.id)
    try:
        assert len(sent) == 1
        assert PROCESS_TASK in sent[0]
    finally:
        forget(queue, "transcode", sent)


def test_admin_may_upload_to_any_league(client: TestClient, db: Session, league: League) -> None:
    _key, secret = create_api_key(db, role=Role.ADMIN, name="ops")
    db.commit()
    response = upload(client, secret)
    assert response.status_code == 201, response.text
    assert response.json()["league"] == league.slug


def test_generic_binary_type_is_accepted(client: TestClient, partner_key: str) -> None:
    response = upload(client, partner_key, content_type="application/octet-stream")
    assert response.status_code == 201, response.text


def test_title_is_trimmed(client: TestClient, partner_key: str) -> None:
    response = upload(client, partner_key, title="  Late winner  ")
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Late winner"


# --- who may upload --------------------------------------------------------------------------


@pytest.mark.usefixtures("league")
def test_upload_without_auth_is_401(client: TestClient, db: Session) -> None:
    response = upload(client, None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    assert asset_count(db) == 0
    assert stored_sources(client) == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer cs_key_not-a-real-key",
        "Bearer cs_ses_not-a-real-session",
        "Bearer something-else",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
@pytest.mark.usefixtures("league")
def test_upload_with_a_bad_credential_is_401(
    client: TestClient, db: Session, authorization: str
) -> None:
    files = {"file": ("goal.mp4", CLIP, "video/mp4")}
    data = {"league": "premier", "title": "Late winner"}
    response = client.post(
        "/v1/assets", data=data, files=files, headers={"Authorization": authorization}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    assert asset_count(db) == 0


def test_revoked_key_is_401(client: TestClient, db: Session, league: League) -> None:
    key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league])
    key.revoked_at = datetime.now(UTC)
    db.commit()
    response = upload(client, secret)
    assert response.status_code == 401
    assert asset_count(db) == 0


@pytest.fixture
def fan_token(db: Session, monkeypatch: pytest.MonkeyPatch) -> str:
    # Still argon2id, with cheap parameters (the production cost is ~0.25 s per hash here).
    monkeypatch.setattr(
        core.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    create_user(db, email="fan@example.com", handle="fan1", password="correct horse")
    token = sign_in(db, email="fan@example.com", password="correct horse", ttl=timedelta(hours=1))
    db.commit()
    return token


@pytest.mark.usefixtures("league")
def test_fan_session_is_403(client: TestClient, db: Session, fan_token: str) -> None:
    response = upload(client, fan_token)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert asset_count(db) == 0
    assert stored_sources(client) == []


@pytest.mark.usefixtures("league")
def test_partner_of_another_league_is_403(client: TestClient, db: Session) -> None:
    other = League(slug="other", name="Other")
    db.add(other)
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[other])
    db.commit()
    response = upload(client, secret)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert asset_count(db) == 0
    assert stored_sources(client) == []
    media = store_of(client).root
    assert not (media / "sources").exists() or not any((media / "sources").rglob("*"))


def test_unknown_league_is_404(client: TestClient, partner_key: str, db: Session) -> None:
    response = upload(client, partner_key, league="no-such-league")
    assert response.status_code == 404
    body = response.json()["error"]
    assert body["code"] == "not_found"
    assert "no-such-league" in body["message"]
    assert asset_count(db) == 0


# --- what may be uploaded --------------------------------------------------------------------


def test_missing_fields_are_422_naming_them(
    client: TestClient, partner_key: str, db: Session
) -> None:
    response = client.post(
        "/v1/assets", data={"description": "no title"}, headers=bearer(partner_key)
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    for field in ("file", "league", "title"):
        assert field in error["message"]
    assert {d["field"] for d in error["details"]} >= {"file", "league", "title"}
    assert asset_count(db) == 0


def test_missing_file_alone_is_named(client: TestClient, partner_key: str) -> None:
    data = {"league": "premier", "title": "Late winner"}
    response = client.post("/v1/assets", data=data, headers=bearer(partner_key))
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "file" in message
    assert "title" not in message


def test_title_over_300_characters_is_422(
    client: TestClient, partner_key: str, db: Session
) -> None:
    response = upload(client, partner_key, title="x" * 301)
    assert response.status_code == 422
    assert "title" in response.json()["error"]["message"]
    assert asset_count(db) == 0
    assert stored_sources(client) == []


def test_title_of_exactly_300_characters_is_accepted(client: TestClient, partner_key: str) -> None:
    response = upload(client, partner_key, title="x" * 300)
    assert response.status_code == 201, response.text


def test_blank_title_is_422(client: TestClient, partner_key: str, db: Session) -> None:
    response = upload(client, partner_key, title="   ")
    assert response.status_code == 422
    assert "title" in response.json()["error"]["message"]
    assert asset_count(db) == 0


def test_description_over_5000_characters_is_422(client: TestClient, partner_key: str) -> None:
    response = upload(client, partner_key, description="d" * 5001)
    assert response.status_code == 422
    assert "description" in response.json()["error"]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "image/png", "application/json"])
def test_non_video_type_is_415(
    client: TestClient, partner_key: str, db: Session, content_type: str
) -> None:
    response = upload(client, partner_key, content_type=content_type)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert content_type in error["message"]
    assert asset_count(db) == 0
    assert stored_sources(client) == []


# --- size limits -----------------------------------------------------------------------------


@pytest.fixture
def small_client(
    tmp_path: Path, pg_url: str, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    """An app whose upload limit is SMALL_LIMIT bytes."""
    app = create_app(make_settings(tmp_path, pg_url, max_upload_bytes=SMALL_LIMIT))
    app.state.sessionmaker = sessions
    with TestClient(app) as test_client:
        yield test_client


def test_upload_at_the_limit_is_accepted(
    small_client: TestClient, partner_key: str, db: Session
) -> None:
    response = upload(small_client, partner_key, content=b"v" * SMALL_LIMIT)
    assert response.status_code == 201, response.text
    assert asset_count(db) == 1


def test_declared_oversized_upload_is_413_at_once(
    small_client: TestClient, partner_key: str, db: Session
) -> None:
    content = b"v" * (SMALL_LIMIT + FORM_OVERHEAD + 1)
    response = upload(small_client, partner_key, content=content)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert str(SMALL_LIMIT) in error["message"]
    assert asset_count(db) == 0
    assert stored_sources(small_client) == []


@pytest.mark.parametrize("size", [SMALL_LIMIT + 1, SMALL_LIMIT + 5000, SMALL_LIMIT + FORM_OVERHEAD])
def test_body_just_over_the_limit_is_413_and_leaves_nothing(
    small_client: TestClient, partner_key: str, db: Session, size: int
) -> None:
    response = upload(small_client, partner_key, content=b"v" * size)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert str(SMALL_LIMIT) in error["message"]
    assert asset_count(db) == 0
    assert stored_sources(small_client) == []
    # Not even a partial write is left in the media directory.
    root = store_of(small_client).root
    assert [p for p in root.rglob("*") if p.is_file()] == []


def _chunked_form(file_size: int, boundary: str = "courtside-test-boundary") -> Iterator[bytes]:
    """A multipart upload sent without Content-Length (Transfer-Encoding: chunked)."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="league"\r\n\r\npremier\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nChunked\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    sent = 0
    while sent < file_size:
        chunk = b"v" * min(4096, file_size - sent)
        sent += len(chunk)
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def _post_chunked(client: TestClient, key: str, file_size: int) -> httpx2.Response:
    headers = {
        **bearer(key),
        "Content-Type": "multipart/form-data; boundary=courtside-test-boundary",
    }
    return client.post("/v1/assets", content=_chunked_form(file_size), headers=headers)


def test_chunked_upload_within_the_limit_is_accepted(
    small_client: TestClient, partner_key: str, db: Session
) -> None:
    response = _post_chunked(small_client, partner_key, SMALL_LIMIT)
    assert response.status_code == 201, response.text
    assert asset_count(db) == 1


def test_chunked_upload_just_over_the_limit_is_413(
    small_client: TestClient, partner_key: str, db: Session
) -> None:
    response = _post_chunked(small_client, partner_key, SMALL_LIMIT + 1)
    assert response.status_code == 413, response.text
    assert asset_count(db) == 0
    assert stored_sources(small_client) == []


def test_chunked_body_over_the_hard_cap_is_413(
    small_client: TestClient, partner_key: str, db: Session
) -> None:
    response = _post_chunked(small_client, partner_key, SMALL_LIMIT + FORM_OVERHEAD + 4096)
    assert response.status_code == 413, response.text
    assert str(SMALL_LIMIT) in response.json()["error"]["message"]
    assert asset_count(db) == 0
    assert stored_sources(small_client) == []


# --- queued only after commit ----------------------------------------------------------------


class SentTasks:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[object]]] = []

    def __call__(self, name: str, args: list[object] | None = None, **_: object) -> None:
        self.sent.append((name, list(args or [])))


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    recorder = SentTasks()
    monkeypatch.setattr(core.celery_app.app, "send_task", recorder)
    return recorder


def _new_asset(session: Session, league: League) -> Asset:
    asset = Asset(league_id=league.id, title="clip")
    session.add(asset)
    session.flush()
    return asset


def test_rollback_sends_nothing_and_commit_sends_the_task(
    sessions: sessionmaker[Session], league: League, sent_tasks: SentTasks
) -> None:
    with sessions() as session:
        dropped = _new_asset(session, league)
        queue_processing(session, dropped)
        assert sent_tasks.sent == []  # nothing before the commit
        session.rollback()
        assert sent_tasks.sent == []
        kept = _new_asset(session, league)
        queue_processing(session, kept)
        assert sent_tasks.sent == []
        session.commit()
    assert sent_tasks.sent == [(PROCESS_TASK, [kept.id])]


def test_commit_after_rollback_does_not_resend(
    sessions: sessionmaker[Session], league: League, sent_tasks: SentTasks
) -> None:
    with sessions() as session:
        asset = _new_asset(session, league)
        queue_processing(session, asset)
        session.commit()
        session.commit()
    assert sent_tasks.sent == [(PROCESS_TASK, [asset.id])]


def test_rolled_back_upload_is_not_queued(
    sessions: sessionmaker[Session], league: League, queue: redis.Redis
) -> None:
    """Against the real broker: a rolled-back session leaves nothing on the transcode queue."""
    with sessions() as session:
        asset = _new_asset(session, league)
        queue_processing(session, asset)
        session.rollback()
        session.commit()  # an empty later commit must not flush the dropped task
    assert queued_for(queue, asset.id) == []


def test_rejected_upload_is_not_queued(
    small_client: TestClient, partner_key: str, sent_tasks: SentTasks
) -> None:
    response = upload(small_client, partner_key, content=b"v" * (SMALL_LIMIT + 1))
    assert response.status_code == 413
    response = upload(small_client, partner_key, content_type="text/plain")
    assert response.status_code == 415
    assert sent_tasks.sent == []


# --- GET /v1/assets/{id} ---------------------------------------------------------------------


@pytest.fixture
def failed_asset(db: Session, league: League) -> Asset:
    asset = Asset(
        league_id=league.id,
        title="Corner kick",
        status=AssetStatus.FAILED,
        progress=40,
        error_code="not_media",
        error_message="the file is not a video",
    )
    db.add(asset)
    db.commit()
    return asset


def test_partner_sees_status_progress_and_error(
    client: TestClient, partner_key: str, failed_asset: Asset
) -> None:
    response = client.get(f"/v1/assets/{failed_asset.id}", headers=bearer(partner_key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == failed_asset.id
    assert body["status"] == "failed"
    assert body["progress"] == 40
    assert body["error"] == {"code": "not_media", "message": "the file is not a video"}
    assert body["league"] == "premier"
    assert body["renditions"] == []


def test_uploaded_asset_can_be_polled(client: TestClient, partner_key: str) -> None:
    created = upload(client, partner_key).json()
    response = client.get(f"/v1/assets/{created['id']}", headers=bearer(partner_key))
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["progress"] == 0


def test_partner_of_another_league_cannot_see_asset(
    client: TestClient, db: Session, failed_asset: Asset
) -> None:
    other = League(slug="other", name="Other")
    db.add(other)
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[other])
    db.commit()
    response = client.get(f"/v1/assets/{failed_asset.id}", headers=bearer(secret))
    assert response.status_code == 403
    assert "not_media" not in response.text


def test_fan_cannot_see_asset(client: TestClient, failed_asset: Asset, fan_token: str) -> None:
    response = client.get(f"/v1/assets/{failed_asset.id}", headers=bearer(fan_token))
    assert response.status_code == 403
    assert "not_media" not in response.text


def test_admin_sees_any_league_asset(client: TestClient, db: Session, failed_asset: Asset) -> None:
    _key, secret = create_api_key(db, role=Role.ADMIN)
    db.commit()
    response = client.get(f"/v1/assets/{failed_asset.id}", headers=bearer(secret))
    assert response.status_code == 200
    assert response.json()["error"]["code"] == "not_media"


def test_anonymous_cannot_see_asset(client: TestClient, failed_asset: Asset) -> None:
    response = client.get(f"/v1/assets/{failed_asset.id}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not_media" not in response.text


def test_unknown_asset_is_404(client: TestClient, partner_key: str) -> None:
    response = client.get("/v1/assets/0123456789abcdef", headers=bearer(partner_key))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_deleted_asset_is_404(
    client: TestClient, partner_key: str, db: Session, failed_asset: Asset
) -> None:
    failed_asset.status = AssetStatus.DELETED
    db.commit()
    response = client.get(f"/v1/assets/{failed_asset.id}", headers=bearer(partner_key))
    assert response.status_code == 404
