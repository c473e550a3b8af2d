"""Beat: live streams whose worker was lost get a new live task within seconds.

Celery redelivers a message whose worker process died (``task_reject_on_worker_lost``), but
not one whose whole worker machine vanished (the broker's visibility timeout is hours, for
long transcodes). A stream with a publisher on air and a stale heartbeat is therefore handed
to a new task here; the lost one, if it still runs, stops at its next heartbeat."""

from __future__ import annotations

import logging

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker, session_scope
from core.logging import fields
from core.models import utcnow
from ingest.live_streams import orphaned_streams, send_live_task

SUPERVISE_TASK = "ingest.supervise_live"
log = logging.getLogger(__name__)


@app.task(name=SUPERVISE_TASK)
def supervise_live_task() -> int:
    """Send a live task for every orphaned stream; returns how many."""
    settings = app_settings()
    now = utcnow()
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        orphans = orphaned_streams(session, settings, now)
        for stream in orphans:
            send_live_task(session, stream, now)
            log.warning("live stream taken over", extra=fields(stream_id=stream.id))
    return len(orphans)
