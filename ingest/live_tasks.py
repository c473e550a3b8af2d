"""The live task: one per live stream, on the ``live`` queue, for as long as the stream runs.

Sent by ``on_publish`` (``ingest.live_streams.send_live_task``) and by the supervisor beat for
a stream whose task went silent. The holder is recorded as ``<task id>@<host>:<pid>``: a
message redelivered after its pool process was killed (``task_reject_on_worker_lost``) finds
that process gone on its own host and claims the stream at once; a task finding a fresh
heartbeat of a live holder (a duplicate, or a redelivery after the broker's visibility
timeout) leaves quietly. No automatic retries: a failure ends the stream as ``errored``.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import Task
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker
from core.logging import fields
from core.settings import Settings
from core.storage import ObjectStore, make_object_store
from ingest.live_control import DbLiveControl, holder_token
from ingest.live_streams import LIVE_TASK, pull_url
from transcode.live_session import LiveConfig, LiveTask

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return make_sessionmaker(engine_for(app_settings().db_url))


@lru_cache(maxsize=1)
def _store() -> ObjectStore:
    return make_object_store(app_settings())


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        app_settings().redis_url, socket_timeout=1, socket_connect_timeout=1
    )


def live_config(
    settings: Settings, stream_id: str, segment_s: float, dvr_window_s: int
) -> LiveConfig:
    """The live loop's settings for one stream (its own segment length and DVR window)."""
    return LiveConfig(
        stream_id=stream_id,
        input_url=pull_url(settings, stream_id),
        work_root=settings.var_dir / "live-work" / stream_id,
        ffmpeg_bin=settings.ffmpeg_bin,
        ffprobe_bin=settings.ffprobe_bin,
        segment_s=segment_s,
        window_segments=settings.live_window_segments,
        dvr_window_s=dvr_window_s,
        grace_s=settings.live_reconnect_grace_s,
        budget_cores=settings.live_cpu_budget_cores,
        stall_s=settings.live_stall_s,
    )


@app.task(name=LIVE_TASK, bind=True, acks_late=True)
def run_live(self: Task[[str], str], stream_id: str) -> str:
    """Claim the stream and run it until it ends or another task takes it over; returns
    ``duplicate``, ``ended``, ``errored``, ``lost`` or ``gone``."""
    settings = app_settings()
    token = holder_token(str(self.request.id))
    control = DbLiveControl(_sessions(), settings, stream_id, token, _redis())
    if not control.claim():
        log.info("live stream held by another task", extra=fields(stream_id=stream_id))
        return "duplicate"
    log.info("live stream claimed", extra=fields(stream_id=stream_id))
    segment_s, dvr_window_s = control.stream_timing()
    config = live_config(settings, stream_id, segment_s, dvr_window_s)
    outcome = LiveTask(config, _store(), control).run()
    log.info("live task done", extra=fields(stream_id=stream_id, outcome=outcome))
    return outcome
