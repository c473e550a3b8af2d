"""Clips from live and the live-to-VOD replay: requests, and the work their tasks do.

A clip from live is a new asset (origin ``live_clip``, the stream's league and match) whose
source is cut from the stream's DVR objects. Until it is cut the asset is ``uploading`` (its
source is being made, as for a pull from a URL) and ``source_url`` records the span as
``live-dvr:<stream id>?start=<ISO>&end=<ISO>``; then the source is stored like an upload's
and the regular pipeline (``transcode.process_asset``) takes over.

The replay of an ended stream becomes the source of the stream's own asset. The asset stays
playable from its DVR playlists meanwhile (its ``master_key`` is left alone until the VOD
publish replaces it), so processing is sent with a task id the asset already names: the
pipeline then takes the asset over although it is ``processing`` (the live stream's state).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy.orm import Session, lazyload, sessionmaker

from core.auth import Principal, require_role
from core.celery_app import app, enqueue_after_commit
from core.db import session_scope
from core.errors import (
    Conflict,
    CourtsideError,
    InvalidInput,
    NotFound,
    ObjectNotFound,
    PublishRefused,
    Retryable,
)
from core.events import ASSET_FAILED, emit
from core.logging import fields
from core.models import Asset, AssetStatus, LiveState, LiveStream, Role
from core.storage import ObjectStore
from ingest.live_streams import get_stream
from ingest.uploads import PROCESS_TASK, UploadMeta, check_meta, queue_processing, source_key
from rights.clip_limits import check_clip
from transcode.errors import TranscodeError
from transcode.live_clip import (
    CutTools,
    Dvr,
    NoDvr,
    OutsideWindow,
    check_span,
    cut_span,
    read_dvr,
    select,
)
from transcode.live_replay import StillLive, build_replay

log = logging.getLogger(__name__)

LIVE_CLIP_ORIGIN = "live_clip"
LIVE_CLIP_TASK = "transcode.live_clip"
SPAN_SCHEME = "live-dvr"
GONE = (
    "outside_dvr_window",
    "The part of the live recording this clip asked for is no longer stored (the DVR "
    "window moved on). Cut it again from what the stream still holds.",
)
CUT_FAILED = (
    "cut_failed",
    "We could not cut this clip from the live recording. We have been alerted; request it "
    "again, and contact support if it happens again.",
)
# Codes too vague to show a partner: the sentence's own code is used instead.
GENERIC_CODES = frozenset({"error", "not_found", "storage_error", "object_not_found"})


class ClipNotAllowed(InvalidInput):
    """The league's licence refuses this clip (length, total per match, delay after live);
    the code is the rights module's (``clip_limit_exceeded``, ``clip_too_early``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Span:
    """A clip's span of a stream, in program date time."""

    stream_id: str
    start: datetime
    end: datetime

    def uri(self) -> str:
        start, end = quote(self.start.isoformat()), quote(self.end.isoformat())
        return f"{SPAN_SCHEME}:{self.stream_id}?start={start}&end={end}"

    @classmethod
    def parse(cls, uri: str) -> Span:
        parts = urlsplit(uri)
        if parts.scheme != SPAN_SCHEME:
            raise InvalidInput(f"not a live span: {uri[:80]!r}")
        query = parse_qs(parts.query)
        start, end = (datetime.fromisoformat(query[name][0]) for name in ("start", "end"))
        return cls(parts.path, start, end)


@dataclass(frozen=True)
class ClipAsk:
    """What the partner asked: times as program date times, or seconds into the stream
    (counted from the first segment the DVR still holds)."""

    title: str
    description: str = ""
    start: datetime | None = None
    end: datetime | None = None
    start_s: float | None = None
    end_s: float | None = None

    def span(self, stream_id: str, dvr: Dvr) -> Span:
        if self.start is not None and self.end is not None:
            return Span(stream_id, self.start, self.end)
        if self.start_s is None or self.end_s is None:
            raise InvalidInput("give start and end, or start_s and end_s")
        origin = dvr.start
        return Span(
            stream_id,
            origin + timedelta(seconds=self.start_s),
            origin + timedelta(seconds=self.end_s),
        )


def request_clip(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    stream_id: str,
    ask: ClipAsk,
    *,
    max_s: float,
    now: datetime,
) -> Asset:
    """A new clip asset cut from the stream's DVR, queued (the caller commits). **Who:**
    partners of the stream's league, admins. Refused with the reason: a span outside what
    the DVR still stores, longer than ``max_s``, or one the league's clip limits forbid."""
    require_role(principal, Role.PARTNER)
    stream = get_stream(session, principal, stream_id)
    if stream.asset.status is AssetStatus.DELETED:
        raise NotFound("no such live stream")
    check_meta(UploadMeta(league="", title=ask.title, description=ask.description))
    dvr = _dvr(store, stream_id)
    span = ask.span(stream_id, dvr)
    duration_s = _checked_length(dvr, span, max_s)
    asset = _clip_asset(session, stream, span, ask, principal)
    try:
        check_clip(session, asset.id, duration_s, now)
    except PublishRefused as exc:
        raise ClipNotAllowed(exc.code, str(exc)) from None
    enqueue_after_commit(session, LIVE_CLIP_TASK, [asset.id])
    return asset


class NothingRecorded(Conflict):
    """The stream has no DVR to cut from (yet, or any more)."""

    code = "no_dvr"


def _dvr(store: ObjectStore, stream_id: str) -> Dvr:
    try:
        return read_dvr(store, stream_id)
    except NoDvr as exc:
        raise NothingRecorded(str(exc)) from None


def _checked_length(dvr: Dvr, span: Span, max_s: float) -> float:
    """The seconds of media the span holds; refuses one that is too long or not stored."""
    check_span(dvr, span.start, span.end)
    if (span.end - span.start).total_seconds() > max_s:
        raise OutsideWindow(f"a clip from live may last at most {max_s:g} s")
    return sum(piece.duration_s for piece in select(dvr, span.start, span.end))


def _clip_asset(
    session: Session, stream: LiveStream, span: Span, ask: ClipAsk, principal: Principal
) -> Asset:
    live = stream.asset
    asset = Asset(
        league_id=stream.league_id,
        match_id=live.match_id,
        title=ask.title.strip(),
        description=ask.description,
        lang=live.lang,
        teams=list(live.teams or []),
        origin=LIVE_CLIP_ORIGIN,
        status=AssetStatus.UPLOADING,
        source_url=span.uri(),
        created_by=principal.label,
    )
    session.add(asset)
    session.flush()
    return asset


# --- the tasks' work ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveTools:
    """What cutting needs, passed in (the Celery task builds it from settings)."""

    sessions: sessionmaker[Session]
    cut: CutTools
    work_dir: Path | None = None

    @property
    def store(self) -> ObjectStore:
        return self.cut.store


def cut_clip(tools: LiveTools, asset_id: str, *, final: bool = True) -> None:
    """Cut the asset's span from the DVR into its source and queue its processing. A
    redelivered task finds the asset no longer ``uploading`` and does nothing. A span no
    longer stored fails the clip with its reason; a store that is down raises
    :class:`~core.errors.Retryable` unless this is the ``final`` attempt, which fails it."""
    span = _pending_span(tools.sessions, asset_id)
    if span is None:
        return
    try:
        size = _cut_and_store(tools, asset_id, span)
    except (NoDvr, OutsideWindow, ObjectNotFound) as exc:
        _fail_clip(tools.sessions, asset_id, exc, GONE)
    except TranscodeError as exc:
        _fail_clip(tools.sessions, asset_id, exc, CUT_FAILED)
    except Retryable as exc:
        if not final:
            raise
        _fail_clip(tools.sessions, asset_id, exc, CUT_FAILED)
    except Exception as exc:
        _fail_clip(tools.sessions, asset_id, exc, CUT_FAILED)
        raise
    else:
        _mark_cut(tools.sessions, asset_id, size)


def _cut_and_store(tools: LiveTools, asset_id: str, span: Span) -> int:
    with tempfile.TemporaryDirectory(prefix="courtside-clip-", dir=tools.work_dir) as work:
        dvr = read_dvr(tools.store, span.stream_id)
        cut = cut_span(tools.cut, dvr, span.start, span.end, Path(work))
        tools.store.put_file(source_key(asset_id), cut.path, content_type="video/mp4")
        return cut.path.stat().st_size


def _pending_span(sessions: sessionmaker[Session], asset_id: str) -> Span | None:
    with session_scope(sessions) as session:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.status is not AssetStatus.UPLOADING:
            return None  # cut already (a redelivered message), failed, or deleted
        return Span.parse(asset.source_url or "")


def _locked(session: Session, asset_id: str) -> Asset | None:
    # The league is joined eagerly by default, and FOR UPDATE refuses an outer join.
    return session.get(Asset, asset_id, with_for_update=True, options=[lazyload(Asset.league)])


def _mark_cut(sessions: sessionmaker[Session], asset_id: str, size: int) -> None:
    with session_scope(sessions) as session:
        asset = _locked(session, asset_id)
        if asset is None or asset.status is not AssetStatus.UPLOADING:
            return
        asset.source_key, asset.source_size = source_key(asset_id), size
        queue_processing(session, asset)


def _fail_clip(
    sessions: sessionmaker[Session], asset_id: str, exc: Exception, why: tuple[str, str]
) -> None:
    """``failed`` with the error's code (or ``why``'s) and ``why``'s sentence for partners."""
    code = getattr(exc, "code", "") if isinstance(exc, CourtsideError) else ""
    code = code if code and code not in GENERIC_CODES else why[0]
    with session_scope(sessions) as session:
        asset = _locked(session, asset_id)
        if asset is None or asset.status is not AssetStatus.UPLOADING:
            return
        asset.status, asset.error_code, asset.error_message = AssetStatus.FAILED, code, why[1]
        emit(session, asset.league_id, ASSET_FAILED, asset.id, {"code": code, "message": why[1]})
    log.warning("clip from live failed", extra=fields(asset_id=asset_id, code=code))


def replay_stream(tools: LiveTools, stream_id: str) -> None:
    """Make an ended stream's DVR the source of its asset and send its processing. Done
    once: a redelivered task finds the source set (or the asset ready) and does nothing."""
    if not _replay_due(tools.sessions, stream_id):
        return
    with tempfile.TemporaryDirectory(prefix="courtside-replay-", dir=tools.work_dir) as work:
        try:
            cut = build_replay(tools.cut, stream_id, Path(work))
        except (NoDvr, StillLive) as exc:
            log.warning("no replay", extra=fields(asset_id=stream_id, reason=str(exc)))
            return
        tools.store.put_file(source_key(stream_id), cut.path, content_type="video/mp4")
        size = cut.path.stat().st_size
    process_id = _hand_over(tools.sessions, stream_id, size)
    if process_id is not None:
        app.send_task(PROCESS_TASK, args=[stream_id], task_id=process_id)


def _replay_due(sessions: sessionmaker[Session], stream_id: str) -> bool:
    with session_scope(sessions) as session:
        stream = session.get(LiveStream, stream_id)
        if stream is None or stream.state is not LiveState.ENDED:
            return False
        asset = stream.asset
        return asset.status not in (AssetStatus.READY, AssetStatus.DELETED) and not (
            asset.source_key
        )


def _hand_over(sessions: sessionmaker[Session], stream_id: str, size: int) -> str | None:
    """Point the asset at its source and name the processing task that may take it over;
    None if another delivery got there first (or it was deleted)."""
    with session_scope(sessions) as session:
        asset = _locked(session, stream_id)
        if asset is None or asset.source_key or asset.status is AssetStatus.DELETED:
            return None
        process_id = str(uuid.uuid4())
        asset.source_key, asset.source_size = source_key(stream_id), size
        asset.task_id = process_id
        if asset.status is not AssetStatus.PROCESSING:  # nothing playable yet: queue it
            asset.status = AssetStatus.QUEUED
    return process_id
