"""Events partners can hear about (webhooks): written in the caller's transaction (an outbox),
fanned out to endpoints by a task sent only after that transaction commits.

Every module that changes an asset's state calls :func:`emit`; none of them knows about
webhooks. The fan-out task lives in ``ingest.webhooks`` (found by name, as all tasks are).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.celery_app import enqueue_after_commit
from core.models import Event

FAN_OUT_TASK = "ingest.fan_out_event"

ASSET_READY = "asset.ready"
ASSET_FAILED = "asset.failed"
ASSET_PROGRESS = "asset.progress"
ASSET_PLAYABLE = "asset.playable"
ASSET_DELETED = "asset.deleted"
# Live streams: a publisher connected or left, the stream went on air or ended, and health
# alerts (no input, falling behind real time, dropped frames).
LIVE_PUBLISHING = "live.publishing"
LIVE_PUBLISHER_LEFT = "live.publisher_left"
LIVE_STARTED = "live.started"
LIVE_ENDED = "live.ended"
LIVE_ALERT = "live.alert"
EVENT_TYPES = (
    ASSET_READY, ASSET_FAILED, ASSET_PROGRESS, ASSET_PLAYABLE, ASSET_DELETED,
    LIVE_PUBLISHING, LIVE_PUBLISHER_LEFT, LIVE_STARTED, LIVE_ENDED, LIVE_ALERT,
)  # fmt: skip


def emit(
    session: Session, league_id: int, event_type: str, subject_id: str, data: dict[str, object]
) -> Event:
    """Record ``event_type`` about ``subject_id`` and deliver it once the session commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event = Event(league_id=league_id, type=event_type, subject_id=subject_id, data=data)
    session.add(event)
    session.flush()
    enqueue_after_commit(session, FAN_OUT_TASK, [event.id])
    return event
