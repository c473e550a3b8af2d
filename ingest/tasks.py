"""Celery tasks of the processing pipeline. Thin: they take IDs and call transcode.publish.

They live in ingest, above both transcode and rights, because processing composes the two:
transcode makes the renditions and the rights module's clip limits gate their publication.
The task keeps its name ``transcode.process_asset`` (and so its queue, ``transcode``)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from celery import Task
from sqlalchemy.orm import Session

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker
from core.errors import Retryable
from core.models import LIVE_ORIGIN, Asset
from core.storage import make_object_store
from ingest.chunk_tasks import start_chunked
from rights.clip_limits import check_clip
from transcode.publish import Chunking, Toolbox, give_up
from transcode.publish import process_asset as run_processing
from transcode.validate import InputLimits


def _clip_gate(session: Session, asset_id: str, duration_s: float, now: datetime) -> None:
    """The licence's clip limits, for clips only: a live stream's replay is the stream
    itself (its live licence covers it), not a clip cut from it."""
    if session.get_one(Asset, asset_id).origin == LIVE_ORIGIN:
        return
    check_clip(session, asset_id, duration_s, now)


@lru_cache(maxsize=1)
def _toolbox() -> Toolbox:
    settings = app_settings()
    return Toolbox(
        sessions=make_sessionmaker(engine_for(settings.db_url)),
        store=make_object_store(settings),
        ffmpeg_bin=settings.ffmpeg_bin,
        ffprobe_bin=settings.ffprobe_bin,
        timeout_s=settings.transcode_timeout_s,
        gate=_clip_gate,
        segment_s=settings.hls_segment_s,
        limits=InputLimits.from_settings(settings),
        stuck_after_s=settings.stuck_after_s,
        chunking=Chunking(settings.chunk_threshold_s, settings.chunk_length_s, start_chunked),
    )


@app.task(name="transcode.process_asset", bind=True, max_retries=3, acks_late=True)
def process_asset(self: Task[[str], None], asset_id: str) -> None:
    """Probe, transcode and publish one asset; retried only for retryable failures."""
    try:
        run_processing(_toolbox(), asset_id, self.request.id)
    except Retryable as exc:
        if self.request.retries >= (self.max_retries or 0):
            give_up(_toolbox(), asset_id, exc)
            return
        # Exponential backoff (10 s, 20 s, 40 s): a store or database blip usually passes.
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc
