"""The chunk tasks called in order, as the chord would run them: real ffmpeg, PostgreSQL and
the local store (a worker per task would only add a broker between the same calls)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest
from celery import chord
from celery.canvas import Signature
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import ROUTES, TASK_MODULES
from core.models import Asset, AssetStatus, Event, League
from core.storage import LocalObjectStore
from ingest.chunk_tasks import (
    ENCODE_TASK,
    JOIN_TASK,
    ChunkTools,
    chunked_signature,
    encode_chunk,
    fail_attempt,
    publisher_for,
    run_encode,
    run_join,
)
from tests.transcode.test_chunks import LADDER, OPTIONS, SOURCE_S, keyed_source
from transcode.chunks import ChunkJob, split_and_upload, work_prefix
from transcode.commands import HlsOptions
from transcode.errors import FFmpegFailed
from transcode.ladder import renditions_for
from transcode.master import rung_from_ffmpeg_master
from transcode.probe import probe
from transcode.quick import COPY_AUDIO_PLAYLIST, COPY_MASTER, remux_command
from transcode.runner import run_ffmpeg

TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Prepared:
    asset: Asset
    tools: ChunkTools
    store: LocalObjectStore
    n_chunks: int


@pytest.fixture
def prepared(
    db: Session, sessions: sessionmaker[Session], league: League, tmp_path: Path
) -> Prepared:
    """An asset mid-attempt whose 6 s source is split and stored, as the processing task
    leaves it before starting the chord."""
    store = LocalObjectStore(tmp_path / "media")
    source = keyed_source(tmp_path)
    asset = Asset(league=league, title="Long match", status=AssetStatus.PROCESSING, attempt=1)
    db.add(asset)
    db.flush()
    asset.source_key = f"sources/{asset.id}/original"
    store.put_file(asset.source_key, source)
    db.commit()
    info = probe(source, ffprobe_bin="ffprobe", timeout_s=TIMEOUT_S)
    job = ChunkJob(asset.source_key, info, tuple(renditions_for(info, LADDER)), OPTIONS, True)
    stored = split_and_upload(
        store, work_prefix(asset.id, 1), source, tmp_path / "split", job,
        ffmpeg_bin="ffmpeg", chunk_s=2, timeout_s=TIMEOUT_S,
    )  # fmt: skip
    tools = ChunkTools(sessions, store, "ffmpeg", TIMEOUT_S, work_dir=tmp_path)
    return Prepared(asset, tools, store, len(stored.chunk_keys))


def test_chunks_then_join_publish_a_ready_ladder(db: Session, prepared: Prepared) -> None:
    asset, tools, store = prepared.asset, prepared.tools, prepared.store
    assert prepared.n_chunks >= 3
    chunk_keys = list(store.list_keys(f"work/{asset.id}/1/chunks/"))
    assert chunk_keys == [f"work/{asset.id}/1/chunks/{i:05d}.mov" for i in range(prepared.n_chunks)]
    for index in range(prepared.n_chunks):
        assert run_encode(tools, asset.id, 1, index)
    db.refresh(asset)
    assert asset.progress == 90  # every chunk counted, the join still to come
    assert run_join(tools, asset.id, 1, publisher_for(tools, asset.id, 1))

    db.refresh(asset)
    assert asset.status is AssetStatus.READY
    assert asset.master_key == f"hls/{asset.id}/1/master.m3u8"
    assert [(r.name, r.width, r.height) for r in asset.renditions] == [
        ("180p", 320, 180),
        ("144p", 256, 144),
    ]
    master = m3u8.loads(store.get_bytes(asset.master_key).decode())
    assert [p.uri for p in master.playlists][:2] == ["ladder/v0/index.m3u8", "ladder/v1/index.m3u8"]
    assert [m.uri for m in master.media] == ["ladder/v2/index.m3u8"]
    for rendition in asset.renditions:
        playlist = m3u8.loads(store.get_bytes(rendition.playlist_key).decode())
        assert sum(s.duration or 0.0 for s in playlist.segments) == pytest.approx(SOURCE_S, abs=0.1)
        for segment in playlist.segments:  # every segment named is stored
            assert store.exists(rendition.playlist_key.rsplit("/", 1)[0] + f"/{segment.uri}")
    assert list(store.list_keys(f"work/{asset.id}/")) == []  # working objects removed
    events = db.scalars(select(Event.type).where(Event.subject_id == asset.id)).all()
    assert "asset.ready" in events


def test_the_join_keeps_a_copied_top_rung_and_its_audio(
    db: Session, sessions: sessionmaker[Session], league: League, tmp_path: Path
) -> None:
    """The quick path: the source was stream-copied and published first; the chunks encode
    only the rungs below it, at its keyframes, without audio, and the final master has all."""
    store = LocalObjectStore(tmp_path / "media")
    source = keyed_source(tmp_path)
    asset = Asset(league=league, title="Quick", status=AssetStatus.PROCESSING, attempt=1)
    db.add(asset)
    db.commit()
    out = tmp_path / "out"
    run_ffmpeg(remux_command("ffmpeg", source, out, has_audio=True, segment_s=2), timeout_s=60)
    for path in (out / "src").rglob("*.m*"):
        store.put_file(f"hls/{asset.id}/1/{path.relative_to(out).as_posix()}", path)
    info = probe(source, ffprobe_bin="ffprobe", timeout_s=TIMEOUT_S)
    copied = rung_from_ffmpeg_master(out, COPY_MASTER, "180p", info.fps)
    job = ChunkJob(
        "unused: no audio to encode", info, tuple(renditions_for(info, LADDER[1:])),
        HlsOptions(segment_s=2, keyframes="source"), with_audio=False,
        kept_rungs=(copied,), kept_audio=COPY_AUDIO_PLAYLIST,
    )  # fmt: skip
    stored = split_and_upload(
        store, work_prefix(asset.id, 1), source, tmp_path / "split", job,
        ffmpeg_bin="ffmpeg", chunk_s=2, timeout_s=TIMEOUT_S,
    )  # fmt: skip
    tools = ChunkTools(sessions, store, "ffmpeg", TIMEOUT_S, work_dir=tmp_path)
    for index in range(len(stored.chunk_keys)):
        run_encode(tools, asset.id, 1, index)
    assert run_join(tools, asset.id, 1, publisher_for(tools, asset.id, 1))

    db.refresh(asset)
    assert [(r.name, r.height) for r in asset.renditions] == [("180p", 180), ("144p", 144)]
    assert asset.renditions[0].playlist_key == f"hls/{asset.id}/1/src/v0/index.m3u8"
    master = m3u8.loads(store.get_bytes(asset.master_key or "").decode())
    assert [m.uri for m in master.media] == [COPY_AUDIO_PLAYLIST]
    assert not any(
        key.startswith(f"hls/{asset.id}/1/ladder/v1/") for key in store.list_keys("hls/")
    )

    def durations(key: str) -> list[float]:
        playlist = m3u8.loads(store.get_bytes(key).decode())
        return [round(s.duration or 0.0, 3) for s in playlist.segments]

    copied_key, encoded_key = (r.playlist_key for r in asset.renditions)
    assert durations(encoded_key) == durations(copied_key)  # segments line up across rungs


def test_tasks_of_a_superseded_attempt_do_nothing(db: Session, prepared: Prepared) -> None:
    asset, tools, store = prepared.asset, prepared.tools, prepared.store
    asset.attempt = 2  # re-processing started meanwhile
    db.commit()
    assert not run_encode(tools, asset.id, 1, 0)
    assert list(store.list_keys(f"work/{asset.id}/1/enc/")) == []
    assert not run_join(tools, asset.id, 1, publisher_for(tools, asset.id, 1))
    db.refresh(asset)
    assert asset.status is AssetStatus.PROCESSING
    assert asset.master_key is None
    assert list(store.list_keys(f"work/{asset.id}/1/")) == []


def test_a_chunk_ffmpeg_cannot_encode_fails_the_asset(db: Session, prepared: Prepared) -> None:
    asset, tools, store = prepared.asset, prepared.tools, prepared.store
    store.put_bytes(f"work/{asset.id}/1/chunks/00001.mov", b"\0" * 4096)  # damaged in transit
    with pytest.raises(FFmpegFailed) as failure:
        run_encode(tools, asset.id, 1, 1)
    fail_attempt(tools, asset.id, 1, failure.value)
    db.refresh(asset)
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "ffmpeg_failed"
    assert list(store.list_keys(f"work/{asset.id}/")) == []
    assert store.exists(asset.source_key or "")  # the partner's source is kept for a retry


def test_the_chord_encodes_every_chunk_then_joins() -> None:
    signature = chunked_signature("asset-1", 3, 4)
    assert isinstance(signature, chord)
    header = list(signature.tasks)
    assert [task.name for task in header] == [ENCODE_TASK] * 4
    assert [tuple(task.args) for task in header] == [("asset-1", 3, i) for i in range(4)]
    body: Signature[None] = signature.body
    assert (body.name, tuple(body.args), body.immutable) == (JOIN_TASK, ("asset-1", 3), True)
    assert encode_chunk.ignore_result is False  # the chord counts results in Redis
    assert ROUTES["transcode.*"] == {"queue": "transcode"}  # both names route there
    assert "ingest.chunk_tasks" in TASK_MODULES


@pytest.mark.parametrize("n_chunks", [0, 1001])
def test_the_chord_refuses_absurd_chunk_counts(n_chunks: int) -> None:
    with pytest.raises(ValueError, match="n_chunks"):
        chunked_signature("asset-1", 1, n_chunks)
