"""The database side of a live task: claiming a stream, heartbeats that notice a takeover,
and the state changes (live, ended, errored) with their events.

:class:`DbLiveControl` implements :class:`transcode.live_session.LiveControl`; every method
is one short transaction, so a live task never holds a connection between heartbeats.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import enqueue_after_commit
from core.db import session_scope
from core.events import LIVE_ALERT, LIVE_ENDED, LIVE_STARTED, emit
from core.logging import fields
from core.models import AssetStatus, LiveState, LiveStream, utcnow
from core.settings import Settings
from ingest.live_streams import LIVE_REPLAY_TASK, STARTABLE
from transcode.errors import TranscodeError
from transcode.live_session import PublisherStatus

log = logging.getLogger(__name__)


def viewers_key(stream_id: str) -> str:
    """Where the player API keeps a stream's viewer count (it writes, the task reads)."""
    return f"live:viewers:{stream_id}"


def claim_stream(
    session: Session, stream_id: str, task_id: str, now: datetime, takeover_after_s: float
) -> bool:
    """Make ``task_id`` the stream's live task, unless another task holds it with a fresh
    heartbeat (a duplicate message) or the stream is over. One conditional UPDATE, so two
    tasks racing for a stream cannot both win."""
    stale = now - timedelta(seconds=takeover_after_s)
    result = session.execute(
        update(LiveStream)
        .where(
            LiveStream.id == stream_id,
            LiveStream.state.in_(STARTABLE),
            or_(
                LiveStream.task_id.is_(None),
                LiveStream.task_id == task_id,
                LiveStream.heartbeat_at.is_(None),
                LiveStream.heartbeat_at < stale,
            ),
        )
        .values(task_id=task_id, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def holder_token(task_id: str) -> str:
    """What a live task writes in ``task_id``: the Celery task id, and the host and process
    running it, so that a successor on the same host can tell that it died."""
    return f"{task_id}@{socket.gethostname()[:16]}:{os.getpid()}"


def holder_gone(token: str) -> bool:
    """The token names a process of this host that no longer exists."""
    _, _, place = token.rpartition("@")
    host, _, pid = place.rpartition(":")
    if host != socket.gethostname()[:16] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _take(session: Session, stream_id: str, holder: str, token: str, now: datetime) -> bool:
    result = session.execute(
        update(LiveStream)
        .where(
            LiveStream.id == stream_id,
            LiveStream.state.in_(STARTABLE),
            LiveStream.task_id == holder,
        )
        .values(task_id=token, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def _rowcount(result: object) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


@dataclass
class DbLiveControl:
    """One live task's view of its stream row."""

    sessions: sessionmaker[Session]
    settings: Settings
    stream_id: str
    task_id: str
    viewers: redis.Redis | None = None

    def claim(self) -> bool:
        """Hold the stream: free, stale, or held by a process of this host that is gone (a
        pool process killed a moment ago: its heartbeat is still fresh, but no need to wait)."""
        now = utcnow()
        with session_scope(self.sessions) as session:
            if claim_stream(
                session, self.stream_id, self.task_id, now, self.settings.live_takeover_after_s
            ):
                return True
            holder = session.scalar(
                select(LiveStream.task_id).where(LiveStream.id == self.stream_id)
            )
            return (
                holder is not None
                and holder_gone(holder)
                and _take(session, self.stream_id, holder, self.task_id, now)
            )

    def stream_timing(self) -> tuple[float, int]:
        """The stream's segment length and DVR window (set when it was created)."""
        with session_scope(self.sessions) as session:
            stream = session.get_one(LiveStream, self.stream_id)
            return stream.segment_s, stream.dvr_window_s

    def status(self) -> PublisherStatus:
        with session_scope(self.sessions) as session:
            stream = session.get(LiveStream, self.stream_id)
            if stream is None:
                return PublisherStatus(False, 0, None, active=False, ladder=[])
            active = stream.state in STARTABLE and stream.asset.status is not AssetStatus.DELETED
            return PublisherStatus(
                stream.publishing,
                stream.sessions,
                stream.publisher_left_at,
                active=active,
                ladder=list(stream.ladder or []),
            )

    def heartbeat(self, health: dict[str, object]) -> bool:
        """Health and heartbeat, only while this task holds the stream (a task sent by
        ``send_live_task`` that has not claimed it yet leaves it to us)."""
        health = {**health, "viewers": self._viewers()}
        with session_scope(self.sessions) as session:
            result = session.execute(
                update(LiveStream)
                .where(
                    LiveStream.id == self.stream_id,
                    or_(LiveStream.task_id == self.task_id, LiveStream.task_id.is_(None)),
                )
                .values(task_id=self.task_id, heartbeat_at=utcnow(), health=health)
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result) == 1

    def _viewers(self) -> int:
        if self.viewers is None:
            return 0
        try:
            value = self.viewers.get(viewers_key(self.stream_id))
        except redis.RedisError:
            return 0
        try:
            return int(value) if isinstance(value, bytes | str | int) else 0
        except ValueError:
            return 0

    def save_ladder(self, ladder: list[dict[str, object]]) -> None:
        with session_scope(self.sessions) as session:
            session.get_one(LiveStream, self.stream_id).ladder = ladder

    def went_live(self, master_key: str) -> None:
        """State live, the asset playable at ``master_key``, ``live.started``: once."""
        now = utcnow()
        with session_scope(self.sessions) as session:
            stream = session.get_one(LiveStream, self.stream_id)
            asset = stream.asset
            if asset.status is AssetStatus.UPLOADING:
                asset.status, asset.master_key, asset.playable_at = (
                    AssetStatus.PROCESSING, master_key, now,
                )  # fmt: skip
            if stream.state is LiveState.LIVE:
                return
            stream.state = LiveState.LIVE
            stream.started_at = stream.started_at or now
            data: dict[str, object] = {"master_key": master_key, "ladder": stream.ladder}
            emit(session, stream.league_id, LIVE_STARTED, stream.id, data)

    def alert(self, name: str, active: bool, data: dict[str, object]) -> None:
        with session_scope(self.sessions) as session:
            stream = session.get_one(LiveStream, self.stream_id)
            payload: dict[str, object] = {"alert": name, "active": active, **data}
            emit(session, stream.league_id, LIVE_ALERT, stream.id, payload)
        log.info("live alert", extra=fields(stream_id=self.stream_id, alert=name, active=active))

    def finished(self, error: TranscodeError | None) -> None:
        """Ended (the replay task queued after the commit), or errored with a reason."""
        with session_scope(self.sessions) as session:
            stream = session.get_one(LiveStream, self.stream_id)
            if stream.state not in STARTABLE:
                return
            stream.ended_at, stream.publishing = utcnow(), False
            data: dict[str, object] = {"sessions": stream.sessions}
            if error is None:
                stream.state = LiveState.ENDED
                enqueue_replay(session, stream)
            else:
                stream.state = LiveState.ERRORED
                stream.error_code, stream.error_message = error.code, error.message
                data |= {"error": {"code": error.code, "message": error.message}}
            data["state"] = stream.state.value
            emit(session, stream.league_id, LIVE_ENDED, stream.id, data)


def enqueue_replay(session: Session, stream: LiveStream) -> None:
    """The stream's DVR becomes its full replay (``transcode.live_replay``), after commit."""
    enqueue_after_commit(session, LIVE_REPLAY_TASK, [stream.id])
