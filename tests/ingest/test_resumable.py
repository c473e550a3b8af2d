"""Resumable uploads through the API, against PostgreSQL, Redis, the local store and a real
(moto) S3 server: parts PUT to the URLs the API hands out, as a partner's client would."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx2
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.auth import Principal, create_api_key
from core.celery_app import app as celery_app
from core.celery_app import celery_config
from core.models import Asset, AssetStatus, League, ResumableUpload, Role, utcnow
from core.settings import Settings
from core.storage import ObjectStore, S3ObjectStore, make_s3_client
from ingest import resumable
from ingest.uploads import PROCESS_TASK, UploadMeta
from tests.conftest import TEST_SECRET, bearer, make_settings
from tests.queues import forget_assets, queued_for
from tests.s3server import moto_s3_server

MIB = 1024 * 1024
PART = 5 * MIB  # S3's minimum part size, the smallest the settings allow
BOTH = pytest.mark.parametrize("backend", ["local", "s3"], indirect=True)


# --- fixtures: the app on either backend ------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, getattr(request, "param", "local"))


@pytest.fixture
def settings(backend: str, tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> Settings:
    """The conftest settings with 5 MiB parts, on the local store or on S3 (a fresh bucket)."""
    overrides: dict[str, object] = {"upload_part_bytes": PART}
    if backend == "s3":
        overrides |= {
            "storage_backend": "s3",
            "s3_endpoint_url": request.getfixturevalue("s3_endpoint"),
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_bucket": f"up-{uuid.uuid4().hex}",
        }
    return make_settings(tmp_path, pg_url, **overrides)


@pytest.fixture
def store(app: FastAPI) -> ObjectStore:
    found: ObjectStore = app.state.store
    if isinstance(found, S3ObjectStore):
        found.ensure_bucket()
    return found


@pytest.fixture(autouse=True)
def _leave_no_tasks_behind(queue: redis.Redis, db: Session) -> Iterator[None]:
    """Completing really queues the transcode; drop this test's messages afterwards."""
    yield
    forget_assets(queue, db)


# --- a partner's client ----------------------------------------------------------------------


def payload(size: int, seed: int = 7) -> bytes:
    # Varying bytes, so a part joined in the wrong place or order changes the hash.
    return (bytes((seed * i) % 251 for i in range(4096)) * (size // 4096 + 1))[:size]


def start(client: TestClient, key: str | None, size: int, **fields: Any) -> httpx2.Response:
    body = {
        "league": "premier",
        "title": "Late winner",
        "filename": "goal.mp4",
        "content_type": "video/mp4",
        "size": size,
        **fields,
    }
    return client.post("/v1/uploads", json=body, headers=bearer(key) if key else {})


def started(client: TestClient, key: str, size: int, **fields: Any) -> dict[str, Any]:
    response = start(client, key, size, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def part_urls(client: TestClient, key: str, upload_id: str, numbers: list[int]) -> dict[int, str]:
    response = client.post(
        f"/v1/uploads/{upload_id}/parts", json={"numbers": numbers}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    return {part["number"]: part["url"] for part in response.json()["parts"]}


def put(client: TestClient, url: str, data: bytes) -> httpx2.Response:
    """PUT to a part URL with no API key: the API's own (local) or S3's."""
    if url.startswith("http://testserver/"):
        return client.put(url, content=data)
    return httpx2.put(url, content=data, timeout=30)


def send_parts(
    client: TestClient, key: str, upload_id: str, data: bytes, numbers: list[int]
) -> list[str]:
    urls = part_urls(client, key, upload_id, numbers)
    etags = []
    for number in numbers:
        response = put(client, urls[number], data[(number - 1) * PART : number * PART])
        assert response.status_code == 200, response.text
        etags.append(response.headers["ETag"])
    return etags


def status_of(client: TestClient, key: str, upload_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/uploads/{upload_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def complete(client: TestClient, key: str, upload_id: str) -> httpx2.Response:
    return client.post(f"/v1/uploads/{upload_id}/complete", headers=bearer(key))


def leftover_parts(store: ObjectStore, settings: Settings, upload_id: str) -> list[str]:
    """What the store still holds of an upload's parts, on either backend."""
    if isinstance(store, S3ObjectStore):
        s3 = make_s3_client(settings)
        listing = s3.list_multipart_uploads(Bucket=settings.s3_bucket)
        return [upload["UploadId"] for upload in listing.get("Uploads", [])]
    return list(store.list_keys(f"uploads/{upload_id}/"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the whole flow --------------------------------------------------------------------------


@BOTH
def test_parts_complete_into_the_source_and_the_asset_is_queued(
    client: TestClient,
    partner_key: str,
    store: ObjectStore,
    settings: Settings,
    db: Session,
    queue: redis.Redis,
) -> None:
    data = payload(PART + 4321)
    created = started(client, partner_key, len(data), teams=["Reds", " Blues ", "Reds"])
    assert created["part_size"] == PART
    assert created["part_count"] == 2
    assert created["status"] == "open"
    asset = db.get(Asset, created["asset_id"])
    assert asset is not None
    assert (asset.status, asset.origin, asset.teams) == (
        AssetStatus.UPLOADING,
        "resumable",
        ["Reds", "Blues"],
    )

    etags = send_parts(client, partner_key, created["upload_id"], data, [1, 2])
    assert etags[1].strip('"') == hashlib.md5(data[PART:]).hexdigest()  # noqa: S324 - an ETag
    response = complete(client, partner_key, created["upload_id"])
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["status"], done["missing"], done["bytes_received"]) == ("completed", [], len(data))

    db.refresh(asset)
    assert asset.status is AssetStatus.QUEUED
    source = f"sources/{asset.id}/original"
    assert (asset.source_key, asset.source_size) == (source, len(data))
    assert sha256(b"".join(store.iter_range(source))) == sha256(data)
    assert leftover_parts(store, settings, created["upload_id"]) == []
    sent = queued_for(queue, asset.id)
    assert len(sent) == 1
    assert PROCESS_TASK in sent[0]


@BOTH
def test_a_dropped_connection_resumes_from_the_missing_parts(
    client: TestClient, partner_key: str, store: ObjectStore, queue: redis.Redis
) -> None:
    data = payload(2 * PART + 777, seed=11)
    created = started(client, partner_key, len(data))
    upload_id = created["upload_id"]
    assert created["part_count"] == 3
    send_parts(client, partner_key, upload_id, data, [1, 3])  # part 2 lost with the connection

    # The client restarts knowing nothing but the upload id: the server says what it has.
    before = status_of(client, partner_key, upload_id)
    assert before["missing"] == [2]
    assert [p["number"] for p in before["parts"]] == [1, 3]
    assert before["bytes_received"] == PART + 777
    early = complete(client, partner_key, upload_id)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "parts_missing"
    assert early.json()["error"]["details"] == {"missing": [2], "wrong_size": []}

    send_parts(client, partner_key, upload_id, data, before["missing"])
    first = complete(client, partner_key, upload_id)
    assert first.status_code == 200, first.text
    again = complete(client, partner_key, upload_id)
    assert again.status_code == 200
    assert again.json() == first.json()  # idempotent: same answer, nothing redone
    source = f"sources/{created['asset_id']}/original"
    assert sha256(b"".join(store.iter_range(source))) == sha256(data)
    assert len(queued_for(queue, created["asset_id"])) == 1  # queued once, not twice


def test_a_part_sent_again_replaces_the_earlier_one(client: TestClient, partner_key: str) -> None:
    data = payload(PART + 10)
    upload_id = started(client, partner_key, len(data))["upload_id"]
    url = part_urls(client, partner_key, upload_id, [2])[2]
    assert put(client, url, b"x" * 10).status_code == 200
    assert put(client, url, data[PART:]).status_code == 200
    parts = status_of(client, partner_key, upload_id)["parts"]
    assert parts == [{"number": 2, "size": 10, "etag": f'"{hashlib.md5(data[PART:]).hexdigest()}"'}]  # noqa: S324


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
@pytest.mark.usefixtures("store")
def test_s3_part_of_the_wrong_size_is_reported_and_blocks_completion(
    client: TestClient, partner_key: str
) -> None:
    """S3 takes any size in a part PUT; the status and complete catch it before S3 would."""
    data = payload(PART + 10)
    upload_id = started(client, partner_key, len(data))["upload_id"]
    urls = part_urls(client, partner_key, upload_id, [1, 2])
    put(client, urls[1], data[:100])  # a short first part
    put(client, urls[2], data[PART:])
    report = status_of(client, partner_key, upload_id)
    assert (report["missing"], report["wrong_size"]) == ([], [1])
    refused = complete(client, partner_key, upload_id)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["wrong_size"] == [1]


# --- signed part URLs (local store) ----------------------------------------------------------


def _with(url: str, **params: str) -> str:
    for name, value in params.items():
        url = re.sub(rf"{name}=[^&]*", f"{name}={value}", url)
    return url


def test_part_urls_carry_no_api_key_but_a_signature(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    url = part_urls(client, partner_key, upload_id, [1])[1]
    assert url.startswith(f"http://testserver/v1/uploads/{upload_id}/parts/1?exp=")
    assert partner_key not in url
    assert "sig=" in url


def test_a_tampered_signature_is_refused(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    url = part_urls(client, partner_key, upload_id, [1])[1]
    forged = _with(url, sig="0" * 64)
    response = client.put(forged, content=b"x" * 100)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"
    later = _with(url, exp=str(int(url.split("exp=")[1].split("&")[0]) + 3600))
    assert client.put(later, content=b"x" * 100).status_code == 403  # expiry is signed too
    assert status_of(client, partner_key, upload_id)["parts"] == []


def test_a_signature_is_bound_to_its_part_number(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, PART + 100)["upload_id"]
    url = part_urls(client, partner_key, upload_id, [2])[2]
    response = client.put(url.replace("/parts/2?", "/parts/1?"), content=b"x" * PART)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"


def test_an_expired_part_url_is_refused(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    past = int(utcnow().timestamp()) - 5
    signature = resumable.sign_part(TEST_SECRET.encode(), upload_id, 1, past)
    url = f"/v1/uploads/{upload_id}/parts/1?exp={past}&sig={signature}"
    response = client.put(url, content=b"x" * 100)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "url_expired"
    assert "ask for new part URLs" in response.json()["error"]["message"]


def test_an_oversize_part_is_refused(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, PART + 100)["upload_id"]
    urls = part_urls(client, partner_key, upload_id, [1, 2])
    response = client.put(urls[1], content=b"x" * (PART + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert client.put(urls[2], content=b"x" * 101).status_code == 413  # the last part too
    assert status_of(client, partner_key, upload_id)["parts"] == []


def test_only_the_last_part_may_be_short(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, PART + 100)["upload_id"]
    urls = part_urls(client, partner_key, upload_id, [1, 2])
    response = client.put(urls[1], content=b"x" * 100)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "wrong_part_size"
    assert client.put(urls[2], content=b"x" * 100).status_code == 200


def test_a_part_without_content_length_is_refused(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    url = part_urls(client, partner_key, upload_id, [1])[1]
    response = client.put(url, content=iter([b"x" * 100]))  # chunked: no Content-Length
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "length_required"


def test_part_numbers_are_checked(client: TestClient, partner_key: str) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    headers = bearer(partner_key)
    path = f"/v1/uploads/{upload_id}/parts"
    assert client.post(path, json={"numbers": [2]}, headers=headers).status_code == 422
    assert client.post(path, json={"numbers": []}, headers=headers).status_code == 422
    too_many = client.post(path, json={"numbers": [1] * 101}, headers=headers)
    assert too_many.status_code == 422


# --- refused at creation ---------------------------------------------------------------------


@pytest.mark.usefixtures("league")
def test_creation_limits(client: TestClient, partner_key: str, settings: Settings) -> None:
    empty = start(client, partner_key, 0)
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "empty_upload")
    huge = start(client, partner_key, settings.max_upload_bytes + 1)
    assert huge.status_code == 413
    assert str(settings.max_upload_bytes) in huge.json()["error"]["message"]
    text = start(client, partner_key, 100, content_type="text/plain")
    assert (text.status_code, text.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert start(client, partner_key, 100, title=" ").status_code == 422
    assert start(client, partner_key, 100, teams=["x" * 101]).status_code == 422


def test_more_than_ten_thousand_parts_is_refused(
    db: Session, store: ObjectStore, league: League
) -> None:
    admin = Principal(kind="api_key", id=1, role=Role.ADMIN)
    limits = resumable.UploadLimits(part_size=PART, expiry_s=60, max_bytes=10**15)
    new = resumable.NewUpload(UploadMeta(league=league.slug, title="t"), size=PART * 10_001)
    with pytest.raises(resumable.TooManyParts, match="10000 parts"):
        resumable.create_upload(db, store, admin, new, limits)


# --- who may call ----------------------------------------------------------------------------


@pytest.fixture
def other_partner(db: Session, other_league: League) -> str:
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    db.commit()
    return secret


@pytest.mark.usefixtures("league")
def test_anonymous_callers_are_refused(client: TestClient, partner_key: str) -> None:
    assert start(client, None, 100).status_code == 401
    upload_id = started(client, partner_key, 100)["upload_id"]
    assert client.get(f"/v1/uploads/{upload_id}").status_code == 401
    assert client.post(f"/v1/uploads/{upload_id}/parts", json={"numbers": [1]}).status_code == 401
    assert client.post(f"/v1/uploads/{upload_id}/complete").status_code == 401
    assert client.delete(f"/v1/uploads/{upload_id}").status_code == 401


def test_another_leagues_partner_is_refused(
    client: TestClient, partner_key: str, other_partner: str
) -> None:
    assert start(client, other_partner, 100).status_code == 403  # not their league
    upload_id = started(client, partner_key, 100)["upload_id"]
    headers = bearer(other_partner)
    assert client.get(f"/v1/uploads/{upload_id}", headers=headers).status_code == 403
    parts = client.post(f"/v1/uploads/{upload_id}/parts", json={"numbers": [1]}, headers=headers)
    assert parts.status_code == 403
    assert client.post(f"/v1/uploads/{upload_id}/complete", headers=headers).status_code == 403
    assert client.delete(f"/v1/uploads/{upload_id}", headers=headers).status_code == 403
    assert status_of(client, partner_key, upload_id)["status"] == "open"
    assert client.get("/v1/uploads/nope", headers=bearer(partner_key)).status_code == 404


# --- abort and expiry ------------------------------------------------------------------------


@BOTH
def test_abort_discards_the_parts_and_fails_the_asset(
    client: TestClient, partner_key: str, store: ObjectStore, settings: Settings, db: Session
) -> None:
    data = payload(PART + 10)
    created = started(client, partner_key, len(data))
    send_parts(client, partner_key, created["upload_id"], data, [1])
    response = client.delete(f"/v1/uploads/{created['upload_id']}", headers=bearer(partner_key))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "aborted"
    assert leftover_parts(store, settings, created["upload_id"]) == []
    asset = db.get(Asset, created["asset_id"])
    assert asset is not None
    db.refresh(asset)
    assert (asset.status, asset.error_code) == (AssetStatus.FAILED, "upload_aborted")
    closed = complete(client, partner_key, created["upload_id"])
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "upload_closed")


@BOTH
def test_expiry_cleans_up_abandoned_uploads(
    client: TestClient, partner_key: str, store: ObjectStore, settings: Settings, db: Session
) -> None:
    data = payload(PART + 10)
    abandoned = started(client, partner_key, len(data))
    fresh = started(client, partner_key, len(data))
    send_parts(client, partner_key, abandoned["upload_id"], data, [1])
    assert leftover_parts(store, settings, abandoned["upload_id"]) != []
    upload = db.get(ResumableUpload, abandoned["upload_id"])
    assert upload is not None
    upload.expires_at = utcnow() - timedelta(seconds=1)  # as if a day had passed
    db.commit()

    assert resumable.expire_uploads(db, store) == 1
    db.commit()
    report = status_of(client, partner_key, abandoned["upload_id"])
    assert (report["status"], report["parts"]) == ("expired", [])
    remaining = leftover_parts(store, settings, abandoned["upload_id"])
    if isinstance(store, S3ObjectStore):  # only the fresh upload's multipart upload is left
        assert len(remaining) == 1
    else:
        assert remaining == []
    asset = db.get(Asset, abandoned["asset_id"])
    assert asset is not None
    db.refresh(asset)
    assert (asset.status, asset.error_code) == (AssetStatus.FAILED, "upload_expired")
    assert "Start a new upload" in (asset.error_message or "")
    assert status_of(client, partner_key, fresh["upload_id"])["status"] == "open"
    assert resumable.expire_uploads(db, store) == 0  # nothing left to do


def test_an_open_upload_past_its_expiry_takes_no_more_parts(
    client: TestClient, partner_key: str, db: Session
) -> None:
    upload_id = started(client, partner_key, 100)["upload_id"]
    url = part_urls(client, partner_key, upload_id, [1])[1]
    upload = db.get(ResumableUpload, upload_id)
    assert upload is not None
    upload.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    response = client.put(url, content=b"x" * 100)  # the URL itself is still valid
    assert (response.status_code, response.json()["error"]["code"]) == (409, "upload_expired")


def test_the_expiry_task_is_registered_and_scheduled(settings: Settings) -> None:
    import ingest.upload_tasks  # noqa: F401 - registers the task, as the worker's include does

    assert "ingest.expire_uploads" in celery_app.tasks
    schedule = celery_config(settings)["beat_schedule"]
    assert any(entry["task"] == "ingest.expire_uploads" for entry in schedule.values())
