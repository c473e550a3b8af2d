"""Celery tasks for clips from live and the live-to-VOD replay (queue ``transcode``).

Thin: they take IDs and call :mod:`ingest.live_clips`, which cuts with
:mod:`transcode.live_clip` and hands the source to ``transcode.process_asset``."""

from __future__ import annotations

from functools import lru_cache

from celery import Task

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker
from core.errors import Retryable
from core.storage import make_object_store
from ingest.live_clips import LIVE_CLIP_TASK, LiveTools, cut_clip, replay_stream
from ingest.live_streams import LIVE_REPLAY_TASK
from transcode.live_clip import CutTools


@lru_cache(maxsize=1)
def _tools() -> LiveTools:
    settings = app_settings()
    cut = CutTools(
        store=make_object_store(settings),
        ffmpeg_bin=settings.ffmpeg_bin,
        ffprobe_bin=settings.ffprobe_bin,
        timeout_s=settings.transcode_timeout_s,
    )
    return LiveTools(sessions=make_sessionmaker(engine_for(settings.db_url)), cut=cut)


def _backoff(task: Task[[str], None]) -> int:
    # 2 s, 4 s, 8 s: a clip is wanted within seconds, and a store blip usually passes.
    return int(2 * 2**task.request.retries)


@app.task(name=LIVE_CLIP_TASK, bind=True, max_retries=3, acks_late=True)
def live_clip(self: Task[[str], None], asset_id: str) -> None:
    """Cut a clip from live (the asset's span of its stream's DVR) and queue processing."""
    final = self.request.retries >= (self.max_retries or 0)
    try:
        cut_clip(_tools(), asset_id, final=final)
    except Retryable as exc:
        raise self.retry(exc=exc, countdown=_backoff(self)) from exc


@app.task(name=LIVE_REPLAY_TASK, bind=True, max_retries=3, acks_late=True)
def live_replay(self: Task[[str], None], stream_id: str) -> None:
    """An ended stream's whole DVR becomes its asset's source; processing follows."""
    try:
        replay_stream(_tools(), stream_id)
    except Retryable as exc:
        raise self.retry(exc=exc, countdown=_backoff(self)) from exc
