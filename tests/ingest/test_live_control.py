"""The database side of the live task (claim, heartbeat, state changes), and the sweepers
leaving streams on air alone."""

from __future__ import annotations

import subprocess  # noqa: TID251 - a process that has exited, for its pid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.events import LIVE_ALERT, LIVE_ENDED, LIVE_STARTED
from core.models import Asset, AssetStatus, Event, League, LiveState, LiveStream, utcnow
from core.settings import Settings
from core.storage import LocalObjectStore
from ingest.lifecycle import reconcile_storage, watchdog
from ingest.live_control import DbLiveControl, claim_stream, holder_gone, holder_token
from ingest.live_streams import LIVE_REPLAY_TASK
from ingest.uploads import PROCESS_TASK
from tests.queues import forget_sent, sent
from transcode.errors import TranscodeError

TASK = "task-1"


@pytest.fixture
def stream(db: Session, league: League) -> LiveStream:
    asset = Asset(league=league, title="Derby", origin="live", status=AssetStatus.UPLOADING)
    db.add(asset)
    db.flush()
    row = LiveStream(id=asset.id, league_id=league.id, state=LiveState.CONNECTING)
    row.publishing, row.sessions = True, 1
    db.add(row)
    db.commit()
    return row


@pytest.fixture(autouse=True)
def _leave_no_tasks_behind(queue: redis.Redis, db: Session) -> Iterator[None]:
    yield
    ids = set(db.scalars(select(Asset.id))) | set(db.scalars(select(Event.id)))
    for name, task in (
        ("transcode", LIVE_REPLAY_TASK),
        ("transcode", PROCESS_TASK),
        ("ingest", "ingest.fan_out_event"),
    ):
        forget_sent(queue, name, task, ids)


def control(sessions: sessionmaker[Session], stream: LiveStream, task: str = TASK) -> DbLiveControl:
    return DbLiveControl(sessions, Settings(live_takeover_after_s=8), stream.id, task)


def test_a_task_claims_a_free_stream_and_a_duplicate_leaves_it(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream
) -> None:
    assert control(sessions, stream).claim()
    assert not control(sessions, stream, "task-2").claim()
    # The same message redelivered after its worker died claims it again at once.
    assert control(sessions, stream).claim()
    db.refresh(stream)
    assert stream.task_id == TASK


def test_a_stale_holder_is_taken_over_and_its_next_heartbeat_fails(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream
) -> None:
    old = control(sessions, stream)
    assert old.claim()
    assert old.heartbeat({"encoder_speed": 1.0})
    with sessions() as session:
        assert claim_stream(session, stream.id, "task-2", utcnow() + timedelta(seconds=9), 8)
        session.commit()
    assert not old.heartbeat({})
    db.refresh(stream)
    assert stream.task_id == "task-2"


def test_a_holder_process_gone_from_this_host_is_replaced_at_once(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream
) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    dead = holder_token("task-1").rsplit(":", 1)[0] + f":{child.pid}"
    assert holder_gone(dead)
    assert not holder_gone(holder_token("task-1"))  # this very process
    assert not holder_gone(f"task-1@another-host:{child.pid}")
    assert control(sessions, stream, dead).claim()
    assert control(sessions, stream, holder_token("task-1")).claim()  # heartbeat still fresh
    assert not control(sessions, stream, "task-3@another-host:1").claim()
    db.refresh(stream)
    assert stream.task_id == holder_token("task-1")


def test_no_task_claims_an_ended_stream(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream
) -> None:
    stream.state = LiveState.ENDED
    db.commit()
    assert not control(sessions, stream).claim()


def test_heartbeat_writes_health_with_the_viewer_count(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream, queue: redis.Redis
) -> None:
    queue.set(f"live:viewers:{stream.id}", 7, ex=30)
    live = DbLiveControl(sessions, Settings(live_takeover_after_s=8), stream.id, TASK, queue)
    assert live.claim()
    assert live.heartbeat({"encoder_speed": 0.99})
    db.refresh(stream)
    assert stream.health == {"encoder_speed": 0.99, "viewers": 7}
    assert stream.heartbeat_at is not None


def test_going_live_ending_and_alerts_are_events(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream, queue: redis.Redis
) -> None:
    live = control(sessions, stream)
    live.went_live(f"live/{stream.id}/master.m3u8")
    live.went_live(f"live/{stream.id}/master.m3u8")  # a takeover says it again: no new event
    live.alert("behind_real_time", True, {"encoder_speed": 0.8})
    live.finished(None)
    db.expire_all()
    row = db.get_one(LiveStream, stream.id)
    assert row.state is LiveState.ENDED
    assert row.started_at is not None
    assert row.ended_at is not None
    assert row.asset.status is AssetStatus.PROCESSING
    assert row.asset.master_key == f"live/{stream.id}/master.m3u8"
    assert row.asset.playable_at is not None
    events = db.scalars(select(Event).where(Event.subject_id == stream.id).order_by(Event.id))
    assert [e.type for e in events] == [LIVE_STARTED, LIVE_ALERT, LIVE_ENDED]
    assert [args for _raw, args in sent(queue, "transcode", LIVE_REPLAY_TASK)] == [[stream.id]]


def test_an_unrecoverable_error_leaves_the_stream_errored(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream, queue: redis.Redis
) -> None:
    control(sessions, stream).finished(TranscodeError("The feed is unreadable.", code="bad_feed"))
    db.expire_all()
    row = db.get_one(LiveStream, stream.id)
    assert (row.state, row.error_code, row.error_message) == (
        LiveState.ERRORED,
        "bad_feed",
        "The feed is unreadable.",
    )
    assert not sent(queue, "transcode", LIVE_REPLAY_TASK)


# --- the sweepers -----------------------------------------------------------------------------


def test_the_watchdog_leaves_a_stream_on_air_alone(db: Session, stream: LiveStream) -> None:
    asset = db.get_one(Asset, stream.id)
    asset.status, asset.attempt = AssetStatus.PROCESSING, 1
    db.commit()
    later = utcnow() + timedelta(hours=3)
    report = watchdog(db, later, stuck_after_s=900, queued_after_s=1800)
    assert report.requeued == []
    db.commit()
    # Over, but its replay has no source yet: still nothing to re-queue.
    stream.state = LiveState.ENDED
    db.commit()
    assert watchdog(db, later, stuck_after_s=900, queued_after_s=1800).requeued == []
    db.commit()
    # Once the replay has its source, the asset is an ordinary one again.
    asset.source_key = f"sources/{asset.id}/replay.mp4"
    db.commit()
    report = watchdog(db, later, stuck_after_s=900, queued_after_s=1800)
    db.commit()
    assert report.requeued == [asset.id]


def test_the_reconciler_keeps_a_streams_objects_until_its_asset_is_deleted(
    db: Session, sessions: sessionmaker[Session], stream: LiveStream, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path)
    keys = [f"live/{stream.id}/master.m3u8", f"live/{stream.id}/360p/0.m4s"]
    for key in keys:
        store.put_bytes(key, b"x")
    later = utcnow() + timedelta(days=3)
    reconcile_storage(sessions, store, later)
    assert sorted(store.list_keys("live/")) == sorted(keys)
    db.get_one(Asset, stream.id).status = AssetStatus.DELETED
    db.commit()
    report = reconcile_storage(sessions, store, later)
    assert report.deleted_prefixes == [f"live/{stream.id}/"]
    assert list(store.list_keys("live/")) == []
