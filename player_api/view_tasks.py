"""Beat task: move the view counts waiting in Redis into ``assets.view_count``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker, session_scope
from core.models import Asset
from player_api.views import ViewCounter, counter_for

FLUSH_TASK = "player_api.flush_views"


def store_counts(session: Session, counts: Mapping[str, int]) -> int:
    """One UPDATE per asset (views of a deleted asset are dropped); rows updated."""
    updated = 0
    for asset_id, views in sorted(counts.items()):  # a fixed order: no deadlock between flushes
        statement = (
            update(Asset)
            .where(Asset.id == asset_id)
            .values(view_count=Asset.view_count + views)
            .execution_options(synchronize_session=False)
        )
        result = cast(CursorResult[Any], session.execute(statement))
        updated += result.rowcount
    return updated


def flush_views(sessions: sessionmaker[Session], counter: ViewCounter) -> int:
    """Take the pending counts and store them in one transaction; if that fails they go back
    to Redis for the next flush, so no count is lost or stored twice."""
    counts = counter.take_pending()
    if not counts:
        return 0
    try:
        with session_scope(sessions) as session:
            return store_counts(session, counts)
    except BaseException:
        counter.restore(counts)
        raise


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return make_sessionmaker(engine_for(app_settings().db_url))


@lru_cache(maxsize=1)
def _counter() -> ViewCounter:
    return counter_for(app_settings().redis_url)


@app.task(name=FLUSH_TASK, ignore_result=True)
def flush_views_task() -> int:
    """Beat (every 30 s): pending view counts into the database."""
    return flush_views(_sessions(), _counter())
