"""One processing attempt end to end in-process: real ffmpeg, PostgreSQL, the local store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import m3u8
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import StorageUnavailable
from core.models import Asset, AssetStatus, Event, League, utcnow
from core.storage import LocalObjectStore
from core.storage.s3 import S3ObjectStore, make_s3_client
from rights.clip_limits import ClipLimitExceeded
from tests.media import make_clip
from tests.s3server import closed_port, moto_settings
from transcode.publish import Toolbox, give_up, process_asset
from transcode.runner import run_ffmpeg


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
    # Nothing above the 360p source; testsrc2 at x264's default quality is too fat (0.28 bpp)
    # for its stream copy to stay on top, so the final ladder has an encoded 360p.
    assert [r.height for r in asset.renditions] == [360, 240]
    assert all("/ladder/" in r.playlist_key for r in asset.renditions)
    assert asset.playable_at is not None
    assert asset.ready_at is not None
    assert asset.playable_at <= asset.ready_at
    assert asset.poster_key == f"hls/{asset.id}/1/thumbs/poster.jpg"
    assert store.exists(asset.storyboard_key or "")


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


def editor_export(directory: Path, *, seconds: int, kbps: int, gop: int = 60) -> Path:
    """An 854x480 30 fps H.264 clip at a modest bitrate, as an editor exports for the web."""
    out = directory / f"export-{seconds}s-{kbps}k-g{gop}.mp4"
    run_ffmpeg(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{kbps}k", "-g", str(gop),
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)],
        timeout_s=60,
    )  # fmt: skip
    return out


def _events(db: Session, asset_id: str) -> list[str]:
    query = select(Event).where(Event.subject_id == asset_id).order_by(Event.id)
    return [event.type for event in db.scalars(query)]


def test_a_copyable_source_is_playable_before_the_ladder_and_announced_twice(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    asset = _queued(db, league, store, editor_export(tmp_path, seconds=3, kbps=600))
    process_asset(_tools(sessions, store), asset.id)
    db.refresh(asset)
    events = _events(db, asset.id)
    assert events[0] == "asset.playable"
    assert events[-1] == "asset.ready"
    master = m3u8.loads(store.get_bytes(asset.master_key or "").decode())
    uris = [p.uri for p in master.playlists]
    assert uris[0] == "src/v0/index.m3u8"  # the stream copy is the top rung
    assert all((uri or "").startswith("ladder/") for uri in uris[1:-1])
    assert master.playlists[-1].stream_info.codecs == "mp4a.40.2"  # audio-only for weak links
    assert [m.uri for m in master.media] == ["src/v1/index.m3u8"]  # audio encoded once


def test_encoded_rungs_cut_segments_where_the_copied_rung_does(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    source = editor_export(tmp_path, seconds=9, kbps=600, gop=30)
    asset = _queued(db, league, store, source)
    process_asset(replace(_tools(sessions, store), segment_s=2), asset.id)
    db.refresh(asset)
    prefix = (asset.master_key or "").rsplit("/", 1)[0]
    durations = {
        rendition.name: [
            round(s.duration or 0, 1)
            for s in m3u8.loads(store.get_bytes(rendition.playlist_key).decode()).segments
        ]
        for rendition in asset.renditions
    }
    assert len(durations) == 3  # 480p copied, 360p and 240p encoded
    assert len(set(map(tuple, durations.values()))) == 1, durations
    assert prefix.endswith("/1")


def test_a_source_that_cannot_be_copied_is_encoded_whole_and_published_once(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    source = tmp_path / "422.mkv"
    run_ffmpeg(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=426x240:rate=25:duration=2", "-c:v", "libx264",
         "-pix_fmt", "yuv422p", str(source)],
        timeout_s=60,
    )  # fmt: skip
    asset = _queued(db, league, store, source)
    process_asset(_tools(sessions, store), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.READY
    milestones = [e for e in _events(db, asset.id) if e != "asset.progress"]
    assert milestones == ["asset.ready"]  # no separate first-playable step
    assert asset.playable_at == asset.ready_at
    assert all(r.playlist_key.split("/")[3] == "ladder" for r in asset.renditions)


def test_a_duplicate_message_leaves_a_live_attempt_alone_but_a_redelivery_takes_over(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    asset = _queued(db, league, store, make_clip(tmp_path, seconds=2))
    asset.status, asset.task_id, asset.attempt = AssetStatus.PROCESSING, "task-1", 1
    asset.heartbeat_at = utcnow()
    db.commit()
    process_asset(_tools(sessions, store), asset.id, "task-2")
    db.refresh(asset)
    assert (asset.status, asset.attempt) == (AssetStatus.PROCESSING, 1)  # left alone
    process_asset(_tools(sessions, store), asset.id, "task-1")
    db.refresh(asset)
    assert (asset.status, asset.attempt) == (AssetStatus.READY, 2)


def test_an_asset_deleted_while_processing_stays_deleted(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    def delete_now(session: Session, asset_id: str, _d: float, _now: datetime) -> None:
        session.get_one(Asset, asset_id).status = AssetStatus.DELETED

    asset = _queued(db, league, store, make_clip(tmp_path, seconds=2))
    process_asset(replace(_tools(sessions, store), gate=delete_now), asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.DELETED
    assert asset.master_key is None


def test_an_unreachable_store_requeues_and_the_last_retry_fails_with_its_reason(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    asset = _queued(db, league, store, make_clip(tmp_path, seconds=1))
    settings = moto_settings(f"http://127.0.0.1:{closed_port()}", "nowhere")
    client = make_s3_client(settings, max_attempts=1, connect_timeout=1, read_timeout=1)
    down = replace(_tools(sessions, store), store=S3ObjectStore(client, "nowhere"))

    with pytest.raises(StorageUnavailable):
        process_asset(down, asset.id)
    db.refresh(asset)
    assert asset.status is AssetStatus.QUEUED  # back in line for the task's retry

    give_up(down, asset.id, StorageUnavailable("object store unreachable"))
    db.refresh(asset)
    assert (asset.status, asset.error_code) == (AssetStatus.FAILED, "storage_unavailable")
    assert "you can retry it later" in (asset.error_message or "")
    assert store.exists(asset.source_key or "")  # nothing the partner sent is lost


def test_an_attempt_overtaken_by_a_later_one_publishes_nothing(
    db: Session, sessions: sessionmaker[Session], league: League, store: LocalObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    def overtake(session: Session, asset_id: str, _d: float, _now: datetime) -> None:
        session.get_one(Asset, asset_id).attempt += 1  # the watchdog re-queued; it started

    asset = _queued(db, league, store, make_clip(tmp_path, seconds=2))
    process_asset(replace(_tools(sessions, store), gate=overtake), asset.id)
    db.refresh(asset)
    assert asset.master_key is None
    assert asset.status is AssetStatus.PROCESSING  # the later attempt's to finish
