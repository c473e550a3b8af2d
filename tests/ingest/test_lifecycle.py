"""Deleting clips, the processing watchdog and the storage reconciler, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.auth import Principal, create_api_key, resolve_bearer
from core.errors import ObjectNotFound
from core.events import ASSET_DELETED, ASSET_FAILED
from core.models import Asset, AssetStatus, Event, League, ResumableUpload, Role, utcnow
from core.storage import LocalObjectStore, ObjectStore, S3ObjectStore, make_object_store
from ingest.lifecycle import (
    MAX_ATTEMPTS,
    MEDIA_ROOTS,
    RECONCILE_GRACE_S,
    STUCK_CODE,
    delete_asset,
    purge_asset,
    reconcile_storage,
    watchdog,
)
from ingest.resumable import part_key
from tests.conftest import bearer, store_of
from tests.queues import forget_sent, sent
from tests.s3server import moto_s3_server, moto_settings

STUCK_AFTER_S = 900
ROOTS = (*MEDIA_ROOTS, "uploads/")

# --- stores and the broker -------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_store(s3_endpoint: str) -> S3ObjectStore:
    store = make_object_store(moto_settings(s3_endpoint, f"test-{uuid.uuid4().hex}"))
    assert isinstance(store, S3ObjectStore)
    store.ensure_bucket()
    return store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend


@pytest.fixture(autouse=True)
def _leave_no_tasks_behind(queue: redis.Redis, db: Session) -> Iterator[None]:
    """Commits really reach the broker; drop this test's messages afterwards."""
    yield
    try:
        mine = set(db.scalars(select(Asset.id))) | set(db.scalars(select(Event.id)))
    except SQLAlchemyError:
        return
    for name, task in (
        ("transcode", "transcode.process_asset"),
        ("ingest", "ingest.purge_asset"),
        ("ingest", "ingest.fan_out_event"),
    ):
        forget_sent(queue, name, task, mine)


def make_asset(db: Session, league: League, status: AssetStatus, **values: object) -> Asset:
    asset = Asset(league=league, title="Late winner", status=status, **values)
    db.add(asset)
    db.commit()
    return asset


def put(store: ObjectStore, *keys: str) -> None:
    for key in keys:
        store.put_bytes(key, b"x")


def stored(store: ObjectStore) -> set[str]:
    return {key for root in ROOTS for key in store.list_keys(root)}


def media_of(asset_id: str) -> set[str]:
    return {
        f"hls/{asset_id}/1/master.m3u8",
        f"hls/{asset_id}/1/360p/seg-1.m4s",
        f"hls/{asset_id}/2/master.m3u8",
        f"sources/{asset_id}/original",
        f"thumbs/{asset_id}/poster.jpg",
    }


# --- deleting --------------------------------------------------------------------------------


def test_a_deleted_clip_is_gone_at_once_and_purged_after(
    client: TestClient, db: Session, sessions: sessionmaker[Session], league: League,
    partner_key: str, queue: redis.Redis,
) -> None:  # fmt: skip
    asset = make_asset(db, league, AssetStatus.READY, attempt=2)
    store = store_of(client)
    put(store, *media_of(asset.id))

    response = client.delete(f"/v1/assets/{asset.id}", headers=bearer(partner_key))
    assert response.status_code == 202
    assert response.json()["status"] == "deleted"
    assert client.get(f"/v1/assets/{asset.id}", headers=bearer(partner_key)).status_code == 404
    assert client.delete(f"/v1/assets/{asset.id}", headers=bearer(partner_key)).status_code == 404
    event = db.scalars(select(Event).where(Event.subject_id == asset.id)).one()
    assert event.type == ASSET_DELETED
    assert asset.id in [args[0] for _raw, args in sent(queue, "ingest", "ingest.purge_asset")]

    assert stored(store) == media_of(asset.id)  # the purge runs after the commit
    assert purge_asset(sessions, store, asset.id) == 5
    assert stored(store) == set()
    assert purge_asset(sessions, store, asset.id) == 0  # idempotent


def test_purge_removes_every_object_of_the_asset_only(
    db: Session, sessions: sessionmaker[Session], league: League, store: ObjectStore
) -> None:
    asset = make_asset(db, league, AssetStatus.UPLOADING)
    other = make_asset(db, league, AssetStatus.READY)
    upload = ResumableUpload(
        asset_id=asset.id, league_id=league.id, declared_size=10, content_type="video/mp4",
        part_size=5 * 1024 * 1024, key=f"sources/{asset.id}/original",
        s3_upload_id=store.create_multipart(f"sources/{asset.id}/original"),
        expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    db.add(upload)
    db.commit()
    put(store, *media_of(asset.id), part_key(upload.id, 1), *media_of(other.id))
    delete_asset(db, _admin(db), asset.id)
    db.commit()

    assert upload.status == "aborted"  # completing it can no longer queue the clip
    assert purge_asset(sessions, store, asset.id) == 6
    assert stored(store) == media_of(other.id)
    if upload.s3_upload_id is not None:
        with pytest.raises(ObjectNotFound):
            store.list_parts(upload.key, upload.s3_upload_id)


def test_purge_never_takes_a_live_asset(
    db: Session, sessions: sessionmaker[Session], league: League, local_store: ObjectStore
) -> None:
    asset = make_asset(db, league, AssetStatus.READY)
    put(local_store, *media_of(asset.id))
    assert purge_asset(sessions, local_store, asset.id) == 0
    assert stored(local_store) == media_of(asset.id)


def test_only_the_leagues_partners_delete_its_clips(
    client: TestClient, db: Session, league: League, other_league: League
) -> None:
    asset = make_asset(db, league, AssetStatus.READY)
    _key, other = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    _key, fan = create_api_key(db, role=Role.FAN)
    db.commit()
    assert client.delete(f"/v1/assets/{asset.id}").status_code == 401
    assert client.delete(f"/v1/assets/{asset.id}", headers=bearer(other)).status_code == 403
    assert client.delete(f"/v1/assets/{asset.id}", headers=bearer(fan)).status_code == 403
    db.refresh(asset)
    assert asset.status is AssetStatus.READY


def _admin(db: Session) -> Principal:
    _key, secret = create_api_key(db, role=Role.ADMIN)
    return resolve_bearer(db, secret)


# --- watchdog --------------------------------------------------------------------------------


def run_watchdog(db: Session, now: datetime) -> tuple[list[str], list[str], list[str]]:
    report = watchdog(db, now, stuck_after_s=STUCK_AFTER_S, queued_after_s=2 * STUCK_AFTER_S)
    db.commit()
    return report.requeued, report.failed, report.resent


def test_a_silent_attempt_is_requeued_and_a_live_one_left_alone(
    db: Session, league: League, queue: redis.Redis
) -> None:
    now = utcnow() + timedelta(hours=1)
    silent = make_asset(db, league, AssetStatus.PROCESSING, attempt=1)
    live = make_asset(db, league, AssetStatus.PROCESSING, attempt=1)
    live.heartbeat_at = now - timedelta(seconds=5)
    db.commit()

    assert run_watchdog(db, now) == ([silent.id], [], [])
    db.refresh(silent)
    db.refresh(live)
    assert silent.status is AssetStatus.QUEUED
    assert live.status is AssetStatus.PROCESSING
    assert silent.id in [
        args[0] for _raw, args in sent(queue, "transcode", "transcode.process_asset")
    ]


def test_a_stale_heartbeat_of_a_fresh_attempt_does_not_count(db: Session, league: League) -> None:
    now = utcnow()
    # The last attempt's heartbeat, but the row moved to processing just now.
    asset = make_asset(db, league, AssetStatus.PROCESSING, attempt=2,
                       heartbeat_at=now - timedelta(hours=2))  # fmt: skip
    assert run_watchdog(db, now) == ([], [], [])
    db.refresh(asset)
    assert asset.status is AssetStatus.PROCESSING


def test_the_third_silent_attempt_fails_as_stuck(db: Session, league: League) -> None:
    now = utcnow() + timedelta(hours=1)
    asset = make_asset(db, league, AssetStatus.PROCESSING, attempt=MAX_ATTEMPTS,
                       heartbeat_at=now - timedelta(hours=1))  # fmt: skip
    assert run_watchdog(db, now) == ([], [asset.id], [])
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == STUCK_CODE
    assert "stopped responding" in (asset.error_message or "")
    event = db.scalars(select(Event).where(Event.subject_id == asset.id)).one()
    assert (event.type, event.data["code"]) == (ASSET_FAILED, STUCK_CODE)


def test_a_lost_queue_message_is_sent_again_once_per_period(
    db: Session, league: League, queue: redis.Redis
) -> None:
    now = utcnow() + timedelta(hours=1)
    forgotten = make_asset(db, league, AssetStatus.QUEUED)
    recent = make_asset(db, league, AssetStatus.QUEUED, updated_at=now - timedelta(minutes=1))
    assert run_watchdog(db, now) == ([], [], [forgotten.id])
    assert forgotten.id in [
        args[0] for _raw, args in sent(queue, "transcode", "transcode.process_asset")
    ]
    assert run_watchdog(db, now + timedelta(minutes=1)) == ([], [], [])
    later = now + timedelta(seconds=2 * STUCK_AFTER_S + 60)
    assert run_watchdog(db, later) == ([], [], [recent.id, forgotten.id])


# --- reconciler ------------------------------------------------------------------------------


def test_the_reconciler_removes_orphans_and_lost_attempts_and_keeps_what_plays(
    db: Session, sessions: sessionmaker[Session], league: League, store: ObjectStore
) -> None:
    now = utcnow()
    ready = make_asset(db, league, AssetStatus.READY, attempt=2)
    ready.master_key = f"hls/{ready.id}/2/master.m3u8"
    running = make_asset(db, league, AssetStatus.PROCESSING, attempt=3)
    deleted = make_asset(db, league, AssetStatus.DELETED, attempt=1)
    db.commit()
    orphan = uuid.uuid4().hex
    keep = {
        f"hls/{ready.id}/2/master.m3u8", f"hls/{ready.id}/2/360p/seg-1.m4s",
        f"sources/{ready.id}/original", f"thumbs/{ready.id}/poster.jpg",
        f"hls/{running.id}/3/360p/seg-1.m4s", f"sources/{running.id}/original",
        f"work/{running.id}/3/chunks/00000.mov",  # chunks of the attempt in progress
    }  # fmt: skip
    superseded = {
        f"hls/{ready.id}/1/master.m3u8", f"hls/{running.id}/2/360p/seg-1.m4s",
        f"work/{ready.id}/2/job.json",  # chunk work a crashed join left behind
    }  # fmt: skip
    put(store, *keep, *superseded, *media_of(deleted.id))
    put(store, f"hls/{orphan}/1/master.m3u8", f"sources/{orphan}/original")

    # Within the grace period only a deleted asset's objects go; the orphan is marked.
    first = reconcile_storage(sessions, store, now)
    assert first.deleted_objects == 5
    assert first.waiting_orphans == 2
    assert stored(store) == keep | superseded | {
        f"hls/{orphan}/1/master.m3u8",
        f"sources/{orphan}/original",
    }

    newcomer = uuid.uuid4().hex  # an upload that started after the first run
    put(store, f"sources/{newcomer}/original")
    later = now + timedelta(seconds=RECONCILE_GRACE_S + 60)
    second = reconcile_storage(sessions, store, later)
    assert stored(store) == keep | {f"sources/{newcomer}/original"}
    assert sorted(second.deleted_prefixes) == sorted(
        [
            f"hls/{ready.id}/1/", f"hls/{running.id}/2/", f"work/{ready.id}/2/",
            f"hls/{orphan}/1/", f"sources/{orphan}/",
        ]
    )  # fmt: skip
    assert second.waiting_orphans == 1
