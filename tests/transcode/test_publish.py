"""One processing attempt end to end in-process: real ffmpeg, PostgreSQL, the local store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.models import Asset, AssetStatus, League
from core.storage import LocalObjectStore
from rights.clip_limits import ClipLimitExceeded
from tests.media import make_clip
from transcode.publish import Toolbox, process_asset


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "media")


def _tools(sessions: sessionmaker[Session], store: LocalObjectStore) -> Toolbox:
    return Toolbox(
        sessions=sessions, store=store, ffmpeg_bin="ffmpeg", ffprobe_bin="ffprobe", timeout_s=60
    )


def _queued(db: Session, league: League, store: LocalObjectStore, source: Path) -> Asset:
    asset = Asset(league=league, title="Clip", status=AssetStatus.QUEUED)
    db.add(asset)
    db.flush()
    asset.source_key = f"sources/{asset.id}/original"
    store.put_file(asset.source_key, source)
    db.commit()
    return asset


def test_processing_publishes_a_ready_ladder(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    asset = _queued(db, league, store, make_clip(tmp_path, seconds=2))
    process_asset(_tools(sessions, store), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.READY
    assert asset.progress == 100
    assert asset.master_key == f"hls/{asset.id}/1/master.m3u8"
    assert store.get_bytes(asset.master_key).startswith(b"#EXTM3U")
    assert [r.height for r in asset.renditions] == [360]  # nothing above the 360p source


def test_a_refused_publication_fails_with_its_reason_and_leaves_nothing(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    def refuse(_s: Session, _id: str, duration_s: float, _now: datetime) -> None:
        raise ClipLimitExceeded(f"This clip is {duration_s:.0f} s long; at most 1 s.")

    asset = _queued(db, league, store, make_clip(tmp_path, seconds=2))
    process_asset(replace(_tools(sessions, store), gate=refuse), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "clip_limit_exceeded"
    assert "2 s long" in (asset.error_message or "")
    assert list(store.list_keys("hls/")) == []  # the attempt's renditions were removed
    assert store.exists(asset.source_key or "")  # the partner's source is kept for a retry


def test_non_media_fails_as_not_media(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"not a video at all" * 100)
    asset = _queued(db, league, store, bogus)
    process_asset(_tools(sessions, store), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "not_media"
    assert list(store.list_keys("hls/")) == []
