"""The Celery app: queues, reliability settings, and enqueue-after-commit.

The app object exists at import (Celery needs a module-level name for task registration), but
it is configured only by ``configure_celery(settings)``: the API, the CLI and tests call it.
Tasks are found by module strings, so core never imports the packages above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery, signals
from kombu import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from core import logging as clog
from core.settings import Settings, get_settings

QUEUES = ("ingest", "transcode", "live", "default")
TASK_MODULES = [
    "ingest.tasks",
    "ingest.upload_tasks",
    "ingest.webhooks",
    "ingest.feed_tasks",
    "ingest.lifecycle",
    "ingest.chunk_tasks",
    "player_api.view_tasks",
    "ingest.live_supervisor",
    "ingest.live_clip_tasks",
    "ingest.live_tasks",
]
# Which queue each task goes to; a task not listed goes to "default".
# Live tasks run for hours: their own queue, so that a separate worker pool serves them.
ROUTES = {
    "transcode.run_live": {"queue": "live"},
    "transcode.*": {"queue": "transcode"},
    "ingest.*": {"queue": "ingest"},
}

app = Celery("courtside", include=TASK_MODULES)


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.redis_url,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "default",
        "task_routes": ROUTES,
        # A worker that dies mid-task leaves the message unacked, so another worker redoes it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message at a time per process: transcodes are long, fairness beats throughput.
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "task_ignore_result": True,
        "task_always_eager": settings.celery_always_eager,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "broker_transport_options": {"visibility_timeout": 4 * 3600},
        "beat_schedule": {
            # League feeds that are due (each claimed once, so beats never double-poll).
            "poll-due-feeds": {"task": "ingest.poll_due_feeds", "schedule": 30.0},
            # Abandoned resumable uploads: parts discarded, asset failed (upload_expired).
            "expire-uploads": {"task": "ingest.expire_uploads", "schedule": 600.0},
            # Webhook deliveries whose retry message was lost (a restarted broker, say).
            "retry-due-webhooks": {"task": "ingest.retry_due_webhooks", "schedule": 60.0},
            # Stuck processing re-queued or failed; lost queue messages re-sent.
            "asset-watchdog": {"task": "ingest.watchdog", "schedule": 60.0},
            # Objects of deleted or vanished assets, and superseded attempts.
            "reconcile-storage": {"task": "ingest.reconcile_storage", "schedule": 3600.0},
            # Views counted in Redis into assets.view_count (one UPDATE per asset).
            "flush-views": {"task": "player_api.flush_views", "schedule": 30.0},
            # Live streams on air whose live task went silent get a new one.
            "supervise-live": {"task": "ingest.supervise_live", "schedule": 3.0},
        },
    }


def configure_celery(settings: Settings) -> Celery:
    app.conf.update(celery_config(settings))
    app.conf["courtside_settings"] = settings
    return app


def app_settings() -> Settings:
    """The settings the app was configured with (tasks read them through this)."""
    settings = app.conf.get("courtside_settings")
    if settings is None:
        settings = get_settings()
        configure_celery(settings)
    assert isinstance(settings, Settings)  # noqa: S101 - set only by configure_celery
    return settings


_PENDING = "courtside_pending_tasks"


def enqueue_after_commit(session: Session, task_name: str, args: Sequence[object]) -> None:
    """Send ``task_name`` only once ``session`` commits, so a worker never sees a row that is
    not there yet; a rollback drops it."""
    pending: list[tuple[str, tuple[object, ...]]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending.append((task_name, tuple(args)))


def _send_pending(session: Session) -> None:
    pending = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    for task_name, args in pending:
        app.send_task(task_name, args=list(args))


def _drop_pending(session: Session) -> None:
    session.info[_PENDING] = []


@signals.task_prerun.connect
def _bind_task_id(task_id: str | None = None, **_: object) -> None:
    clog.task_id.set(task_id)


@signals.task_postrun.connect
def _unbind_task_id(**_: object) -> None:
    clog.task_id.set(None)
