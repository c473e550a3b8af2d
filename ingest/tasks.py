"""Celery tasks of the processing pipeline. Thin: they take IDs and call transcode.publish.

They live in ingest, above both transcode and rights, because processing composes the two:
transcode makes the renditions and the rights module's clip limits gate their publication.
The task keeps its name ``transcode.process_asset`` (and so its queue, ``transcode``)."""

from __future__ import annotations

from functools import lru_cache

from celery import Task

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker
from core.errors import Retryable
from core.storage import make_object_store
from rights.clip_limits import check_clip
from transcode.publish import Toolbox
from transcode.publish import process_asset as run_processing


@lru_cache(maxsize=1)
def _toolbox() -> Toolbox:
    settings = app_settings()
    return Toolbox(
        sessions=make_sessionmaker(engine_for(settings.db_url)),
        store=make_object_store(settings),
        ffmpeg_bin=settings.ffmpeg_bin,
        ffprobe_bin=settings.ffprobe_bin,
        timeout_s=settings.transcode_timeout_s,
        gate=check_clip,
    )


@app.task(name="transcode.process_asset", bind=True, max_retries=3, acks_late=True)
def process_asset(self: Task[[str], None], asset_id: str) -> None:
    """Probe, transcode and publish one asset; retried only for retryable failures."""
    try:
        run_processing(_toolbox(), asset_id)
    except Retryable as exc:
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1)) from exc
