"""Live streams for partners: creation for a league's match, stream keys, and the RTMP edge's
publish hooks.

A stream's catalog item is the Asset with the same id (origin ``live``), so rights,
translations, views and comments work on it unchanged. The stream key is a bearer secret
shown once: only its SHA-256 hash is stored. nginx-rtmp asks ``on_publish`` for every
publisher; the answer renames the stream from its key to its id, so the live workers pull
``<rtmp_pull_url>/<stream id>?pull=<token>`` (``on_play`` checks the token) and never need
the key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, hash_secret, require_league
from core.celery_app import enqueue_after_commit
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.events import LIVE_PUBLISHER_LEFT, LIVE_PUBLISHING, emit
from core.models import LIVE_ORIGIN, Asset, AssetStatus, LiveState, LiveStream, Match, utcnow
from core.settings import Settings
from ingest.uploads import league_by_slug

LIVE_TASK = "transcode.run_live"
# Sent (after commit) when a stream ends: its DVR becomes the full-replay asset.
LIVE_REPLAY_TASK = "transcode.live_replay"
STREAM_KEY_PREFIX = "cs_live_"
# The stream accepts a publisher in these states (``live``: one that dropped is returning).
STARTABLE = (LiveState.IDLE, LiveState.CONNECTING, LiveState.LIVE)
MAX_TITLE = 300


class PublishRefused(Forbidden):
    """The edge must refuse this publisher: unknown, revoked or rotated key, or a stream
    that cannot start (ended, or already has a publisher)."""

    code = "publish_refused"


@dataclass(frozen=True)
class NewStream:
    title: str
    description: str = ""
    lang: str = "en"
    match_id: int | None = None
    dvr_window_s: int | None = None


def new_stream_key() -> str:
    return STREAM_KEY_PREFIX + secrets.token_urlsafe(24)


def create_stream(
    session: Session, principal: Principal, settings: Settings, league_slug: str, data: NewStream
) -> tuple[LiveStream, str]:
    """A stream for one of the caller's leagues and its first key (returned once; the caller
    commits). **Who:** the league's partners, admins."""
    league = league_by_slug(session, league_slug)
    require_league(principal, league.id)
    if not data.title.strip() or len(data.title) > MAX_TITLE:
        raise InvalidInput(f"title must be 1 to {MAX_TITLE} characters")
    if data.match_id is not None:
        match = session.get(Match, data.match_id)
        if match is None or match.season.competition.league_id != league.id:
            raise InvalidInput(f"league '{league_slug}' has no match {data.match_id}")
    asset = Asset(
        league_id=league.id,
        title=data.title.strip(),
        description=data.description,
        lang=data.lang,
        match_id=data.match_id,
        origin=LIVE_ORIGIN,
        # Not in the catalog until its first segments are stored (then "processing": playable).
        status=AssetStatus.UPLOADING,
        created_by=principal.label,
    )
    session.add(asset)
    session.flush()
    stream = LiveStream(
        id=asset.id,
        league_id=league.id,
        dvr_window_s=data.dvr_window_s or settings.live_dvr_window_s,
        segment_s=settings.live_segment_s,
        created_by=principal.label,
    )
    session.add(stream)
    key = _set_key(stream, new_stream_key())
    session.flush()
    return stream, key


def _set_key(stream: LiveStream, key: str | None) -> str:
    stream.key_hash = hash_secret(key) if key else None
    stream.key_hint = key[-4:] if key else ""
    stream.key_created_at = utcnow() if key else None
    return key or ""


def get_stream(session: Session, principal: Principal, stream_id: str) -> LiveStream:
    """A stream of one of the caller's leagues (404 for any other, saying nothing of it)."""
    stream = session.get(LiveStream, stream_id)
    if stream is None:
        raise NotFound("no such live stream")
    try:
        require_league(principal, stream.league_id)
    except Forbidden:
        raise NotFound("no such live stream") from None
    return stream


def rotate_key(session: Session, principal: Principal, stream_id: str) -> tuple[LiveStream, str]:
    """A new key replaces the old one at once: the next publish must use it. A publisher
    already connected stays on air until it disconnects."""
    stream = get_stream(session, principal, stream_id)
    if stream.state in (LiveState.ENDED, LiveState.ERRORED):
        raise Conflict("this stream has ended; create a new one")
    return stream, _set_key(stream, new_stream_key())


def revoke_key(session: Session, principal: Principal, stream_id: str) -> LiveStream:
    """No key at all: every publish is refused until a rotation issues a new one."""
    stream = get_stream(session, principal, stream_id)
    _set_key(stream, None)
    return stream


def stream_for_key(session: Session, key: str) -> LiveStream | None:
    if not key.startswith(STREAM_KEY_PREFIX) or len(key) > 128:
        return None
    return session.scalar(select(LiveStream).where(LiveStream.key_hash == hash_secret(key)))


def hook_token(settings: Settings) -> str:
    """The secret nginx sends with each hook call (in the hook URL the project generates),
    derived from the server secret so there is nothing more to configure."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"courtside rtmp hooks", hashlib.sha256).hexdigest()[:40]


def check_hook_token(settings: Settings, given: str) -> None:
    if not hmac.compare_digest(given.encode(), hook_token(settings).encode()):
        raise Forbidden("not the RTMP edge")


def pull_token(settings: Settings, stream_id: str) -> str:
    """What a puller of ``stream_id`` from the edge must present (``on_play`` checks it):
    stream ids are public, so knowing one must not be enough to take the feed."""
    key = settings.secret_key.get_secret_value().encode()
    message = f"courtside rtmp pull {stream_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def pull_url(settings: Settings, stream_id: str) -> str:
    """Where the live workers and WHEP previews read a stream's feed from the edge."""
    base = settings.rtmp_pull_url.rstrip("/")
    return f"{base}/{stream_id}?pull={pull_token(settings, stream_id)}"


def check_puller(settings: Settings, stream_id: str, given: str) -> None:
    if not hmac.compare_digest(given.encode(), pull_token(settings, stream_id).encode()):
        raise Forbidden("this feed is for Courtside's own workers")


@dataclass(frozen=True)
class Publisher:
    key: str
    addr: str
    protocol: str  # "rtmp" | "whip"


def accept_publisher(
    session: Session, settings: Settings, publisher: Publisher, now: datetime
) -> LiveStream:
    """``on_publish``: allow a publisher with a valid key for a stream that may start, and
    make sure a live task runs for it. Raises PublishRefused otherwise."""
    stream = stream_for_key(session, publisher.key)
    if stream is None:
        raise PublishRefused("unknown or revoked stream key")
    if stream.state not in STARTABLE:
        raise PublishRefused(f"this stream is {stream.state}: it cannot start again")
    if stream.publishing:
        raise PublishRefused("this stream already has a publisher")
    stream.publishing = True
    stream.protocol = publisher.protocol
    stream.publisher_addr = publisher.addr[:64]
    stream.sessions += 1
    stream.publish_started_at, stream.publisher_left_at = now, None
    if stream.state is LiveState.IDLE:
        stream.state = LiveState.CONNECTING
    if not task_alive(stream, settings, now):
        send_live_task(session, stream, now)
    data: dict[str, object] = {"session": stream.sessions, "protocol": publisher.protocol}
    emit(session, stream.league_id, LIVE_PUBLISHING, stream.id, data)
    return stream


def publisher_left(session: Session, key: str, now: datetime) -> LiveStream | None:
    """``on_publish_done``: the live task notices and waits out the reconnect grace."""
    stream = stream_for_key(session, key)
    if stream is None or not stream.publishing:
        return None
    stream.publishing, stream.publisher_left_at = False, now
    emit(session, stream.league_id, LIVE_PUBLISHER_LEFT, stream.id, {"session": stream.sessions})
    return stream


def task_alive(stream: LiveStream, settings: Settings, now: datetime) -> bool:
    """A live task holds the stream (or one was sent for it) and was heard from recently."""
    beat = stream.heartbeat_at
    return beat is not None and now - beat < timedelta(seconds=settings.live_takeover_after_s)


def send_live_task(session: Session, stream: LiveStream, now: datetime) -> None:
    """Queue a live task that may claim the stream at once (no holder); the heartbeat is set
    so that nothing sends another before this one had time to start. A lost task that still
    runs finds it no longer holds the stream at its next heartbeat, and stops."""
    stream.task_id, stream.heartbeat_at = None, now
    enqueue_after_commit(session, LIVE_TASK, [stream.id])


def orphaned_streams(session: Session, settings: Settings, now: datetime) -> list[LiveStream]:
    """Streams with a publisher on air (or inside the reconnect grace) but no live task
    heard from lately: their worker was lost. Beat starts a new task for each."""
    candidates = session.scalars(
        select(LiveStream).where(LiveStream.state.in_(STARTABLE), LiveStream.sessions > 0)
    )
    grace = timedelta(seconds=settings.live_reconnect_grace_s)
    return [
        stream
        for stream in candidates
        if not task_alive(stream, settings, now)
        and (
            stream.publishing
            or (stream.publisher_left_at and now - stream.publisher_left_at < grace)
        )
    ]
