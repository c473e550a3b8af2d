"""The ``ingest.expire_uploads`` Celery task run for real: its own sessions on the test
database (committed rows, removed afterwards) and the store its settings name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import configure_celery
from core.db import session_scope
from core.models import Asset, AssetStatus, League, ResumableUpload, utcnow
from core.settings import Settings
from core.storage import make_object_store
from ingest import upload_tasks
from ingest.resumable import part_key
from ingest.uploads import source_key


@pytest.fixture
def committed(pg_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit (the task opens its own connection and must see the rows)."""
    engine = create_engine(pg_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def abandoned(committed: sessionmaker[Session]) -> Iterator[ResumableUpload]:
    """An open upload that expired a minute ago, with its asset and league; deleted after."""
    with session_scope(committed) as session:
        league = League(slug=f"expiry-{uuid.uuid4().hex[:8]}", name="Expiry League")
        asset = Asset(league=league, title="Abandoned", origin="resumable")
        session.add(asset)
        session.flush()
        upload = ResumableUpload(
            id=uuid.uuid4().hex,
            asset_id=asset.id,
            league_id=league.id,
            declared_size=10,
            content_type="video/mp4",
            part_size=5 * 1024 * 1024,
            key=source_key(asset.id),
            status="open",
            created_at=utcnow() - timedelta(hours=24, minutes=1),
            expires_at=utcnow() - timedelta(minutes=1),
        )
        session.add(upload)
    yield upload
    with session_scope(committed) as session:
        session.execute(delete(Asset).where(Asset.id == upload.asset_id))  # cascades the upload
        session.execute(delete(League).where(League.id == upload.league_id))


def test_the_task_expires_abandoned_uploads(
    settings: Settings, committed: sessionmaker[Session], abandoned: ResumableUpload
) -> None:
    configure_celery(settings)  # the worker's configuration: this test's DB and store
    store = make_object_store(settings)
    store.put_bytes(part_key(abandoned.id, 1), b"0123456789")

    assert upload_tasks.expire_uploads.run() == 1

    assert list(store.list_keys(f"uploads/{abandoned.id}/")) == []
    with committed() as session:
        upload = session.get(ResumableUpload, abandoned.id)
        asset = session.get(Asset, abandoned.asset_id)
        assert upload is not None
        assert asset is not None
        assert upload.status == "expired"
        assert (asset.status, asset.error_code) == (AssetStatus.FAILED, "upload_expired")
        assert asset.error_message == (
            "The upload was not finished within 24 hours, so the parts received were deleted. "
            "Start a new upload to send this clip again."
        )
    assert upload_tasks.expire_uploads.run() == 0
