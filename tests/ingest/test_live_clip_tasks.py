"""The work of the live clip and replay tasks against PostgreSQL, the broker's Redis and a
local store holding the live fixture's DVR: sources stored, processing handed over, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from core.auth import Principal, create_api_key, resolve_bearer
from core.models import Asset, AssetStatus, League, LiveState, LiveStream, Role
from core.storage import LocalObjectStore
from ingest.lifecycle import watchdog
from ingest.live_clips import ClipAsk, LiveTools, cut_clip, replay_stream, request_clip
from ingest.live_streams import NewStream, create_stream
from ingest.uploads import PROCESS_TASK
from tests.conftest import make_settings
from tests.live_fixtures import render_sessions, write_live_layout
from tests.queues import forget, forget_assets, sent
from transcode.live_clip import CutTools

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_sessions(tmp_path_factory.mktemp("live-rendered"))


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.fixture
def tools(sessions: sessionmaker[Session], store: LocalObjectStore, tmp_path: Path) -> LiveTools:
    return LiveTools(sessions, CutTools(store), work_dir=tmp_path)


@pytest.fixture
def partner(db: Session, league: League) -> Principal:
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league], name="p")
    db.commit()
    return resolve_bearer(db, secret)


@pytest.fixture(autouse=True)
def tidy_queue(queue: redis.Redis, db: Session) -> Iterator[None]:
    yield
    forget_assets(queue, db)


def new_stream(
    db: Session, partner: Principal, store: LocalObjectStore, rendered: Path, tmp_path: Path
) -> LiveStream:
    settings = make_settings(tmp_path, "postgresql://unused")
    stream, _key = create_stream(db, partner, settings, "premier", NewStream(title="Final"))
    db.commit()
    write_live_layout(store, stream.id, rendered, start=T0, ended=True)
    return stream


def process_messages(queue: redis.Redis, asset_id: str) -> list[str]:
    return [raw for raw, args in sent(queue, "transcode", PROCESS_TASK) if args == [asset_id]]


def test_a_cut_clip_is_stored_as_its_source_and_queued_once(
    db: Session,
    partner: Principal,
    store: LocalObjectStore,
    rendered: Path,
    tmp_path: Path,
    tools: LiveTools,
    queue: redis.Redis,
) -> None:
    stream = new_stream(db, partner, store, rendered, tmp_path)
    ask = ClipAsk(title="Goal", start_s=1.4, end_s=5.6)
    asset = request_clip(db, store, partner, stream.id, ask, max_s=600, now=T0)
    db.commit()
    cut_clip(tools, asset.id)
    cut_clip(tools, asset.id)  # a redelivered message: nothing more
    db.expire_all()
    cut = db.get_one(Asset, asset.id)
    assert cut.status is AssetStatus.QUEUED
    assert cut.source_key == f"sources/{asset.id}/original"
    assert store.stat(cut.source_key).size == cut.source_size > 0
    assert len(process_messages(queue, asset.id)) == 1


@pytest.mark.parametrize(
    ("gone", "code"),
    [("", "no_dvr"), ("360p/2.m4s", "outside_dvr_window")],
    ids=["the-whole-recording", "a-segment-of-the-span"],
)
def test_a_clip_whose_recording_is_gone_fails_with_a_reason(
    db: Session,
    partner: Principal,
    store: LocalObjectStore,
    rendered: Path,
    tmp_path: Path,
    tools: LiveTools,
    gone: str,
    code: str,
) -> None:
    stream = new_stream(db, partner, store, rendered, tmp_path)
    asset = request_clip(
        db, store, partner, stream.id, ClipAsk("Goal", start_s=1, end_s=4), max_s=600, now=T0
    )
    db.commit()
    if gone:
        store.delete(f"live/{stream.id}/{gone}")
    else:
        store.delete_prefix(f"live/{stream.id}/")
    cut_clip(tools, asset.id)
    db.expire_all()
    failed = db.get_one(Asset, asset.id)
    assert failed.status is AssetStatus.FAILED
    assert failed.error_code == code
    assert "no longer stored" in (failed.error_message or "")


def on_air_asset(db: Session, stream: LiveStream, state: LiveState) -> None:
    stream.state = state
    asset = db.get_one(Asset, stream.id)
    asset.status, asset.master_key = AssetStatus.PROCESSING, f"live/{stream.id}/master.m3u8"
    db.commit()


def test_the_replay_becomes_the_streams_source_and_processing_is_handed_over(
    db: Session,
    partner: Principal,
    store: LocalObjectStore,
    rendered: Path,
    tmp_path: Path,
    tools: LiveTools,
    queue: redis.Redis,
) -> None:
    stream = new_stream(db, partner, store, rendered, tmp_path)
    on_air_asset(db, stream, LiveState.ENDED)
    replay_stream(tools, stream.id)
    replay_stream(tools, stream.id)  # redelivered: the source is there, nothing more
    db.expire_all()
    asset = db.get_one(Asset, stream.id)
    assert asset.source_key == f"sources/{stream.id}/original"
    # Still playable from the DVR until the VOD publish replaces the master.
    assert asset.status is AssetStatus.PROCESSING
    assert asset.master_key == f"live/{stream.id}/master.m3u8"
    messages = process_messages(queue, stream.id)
    assert len(messages) == 1
    assert json.loads(messages[0])["headers"]["id"] == asset.task_id
    forget(queue, "transcode", messages)


def test_a_stream_still_on_air_gets_no_replay(
    db: Session,
    partner: Principal,
    store: LocalObjectStore,
    rendered: Path,
    tmp_path: Path,
    tools: LiveTools,
    queue: redis.Redis,
) -> None:
    stream = new_stream(db, partner, store, rendered, tmp_path)
    on_air_asset(db, stream, LiveState.LIVE)
    replay_stream(tools, stream.id)
    db.expire_all()
    assert db.get_one(Asset, stream.id).source_key is None
    assert process_messages(queue, stream.id) == []


def test_the_watchdog_leaves_an_ended_stream_alone_until_its_replay_has_a_source(
    db: Session,
    partner: Principal,
    store: LocalObjectStore,
    rendered: Path,
    tmp_path: Path,
    tools: LiveTools,
    queue: redis.Redis,
) -> None:
    stream = new_stream(db, partner, store, rendered, tmp_path)
    on_air_asset(db, stream, LiveState.ENDED)
    later = datetime.now(UTC) + timedelta(hours=1)  # long silent, by the asset's clocks
    assert watchdog(db, later, stuck_after_s=900, queued_after_s=1800).requeued == []
    db.commit()
    replay_stream(tools, stream.id)
    forget(queue, "transcode", process_messages(queue, stream.id))
    db.expire_all()
    # With its source stored, a replay whose processing went silent is looked after again.
    assert watchdog(db, later, stuck_after_s=900, queued_after_s=1800).requeued == [stream.id]
    db.commit()
