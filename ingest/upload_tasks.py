"""Celery tasks for resumable uploads: the periodic sweep of abandoned ones (beat runs it)."""

from __future__ import annotations

import logging

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker, session_scope
from core.storage import make_object_store
from ingest.resumable import expire_uploads as expire

log = logging.getLogger(__name__)


@app.task(name="ingest.expire_uploads", acks_late=True, ignore_result=True)
def expire_uploads() -> int:
    """Abort open uploads past their expiry; returns how many were expired."""
    settings = app_settings()
    sessions = make_sessionmaker(engine_for(settings.db_url))
    with session_scope(sessions) as session:
        count = expire(session, make_object_store(settings))
    if count:
        log.info("expired %d abandoned uploads", count)
    return count
