"""Celery tasks for pulls and league feeds (queue ``ingest``). Thin: they take IDs and call
:mod:`ingest.pull` and :mod:`ingest.feed_poll` with tools built from the settings."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from celery import Task

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker, session_scope
from core.storage import make_object_store
from ingest.feed_poll import PollTools, claim_due_feeds, poll_feed
from ingest.pull import PullInterrupted, PullTools, pull_limits, pull_source

PULL_RETRIES = 4


@lru_cache(maxsize=1)
def _pull_tools() -> PullTools:
    settings = app_settings()
    return PullTools(
        sessions=make_sessionmaker(engine_for(settings.db_url)),
        store=make_object_store(settings),
        limits=pull_limits(settings),
    )


def _poll_tools() -> PollTools:
    tools = _pull_tools()
    return PollTools(sessions=tools.sessions, limits=tools.limits)


def pull_backoff_s(retries: int) -> int:
    """15 s, 60 s, 4 min, 16 min: a flaky origin gets time to recover."""
    return int(15 * 4**retries)


@app.task(name="ingest.pull_asset", bind=True, max_retries=PULL_RETRIES, acks_late=True)
def pull_asset(self: Task[[str], None], asset_id: str) -> None:
    """Download an asset's ``source_url`` into the store and queue its processing; transient
    failures are retried with backoff, the last one fails the asset."""
    final = self.request.retries >= PULL_RETRIES
    try:
        pull_source(_pull_tools(), asset_id, final=final)
    except PullInterrupted as exc:
        raise self.retry(exc=exc, countdown=pull_backoff_s(self.request.retries)) from exc


@app.task(name="ingest.poll_feed", acks_late=True)
def poll_feed_task(feed_id: int) -> str:
    """Poll one league feed; returns the poll's status."""
    return poll_feed(_poll_tools(), feed_id, datetime.now(UTC)).status


@app.task(name="ingest.poll_due_feeds")
def poll_due_feeds() -> int:
    """Beat, every 30 s: claim the feeds that are due and enqueue a poll for each."""
    with session_scope(_pull_tools().sessions) as session:
        return len(claim_due_feeds(session, datetime.now(UTC)))
