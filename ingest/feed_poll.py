"""Polling league feeds: claim the due ones, fetch each conditionally, ingest new items once.

``claim_due_feeds`` moves each due feed's ``next_poll_at`` forward in the transaction that
selects it (rows locked with SKIP LOCKED), so two beats never enqueue the same poll.
``poll_feed`` fetches with ``If-None-Match``/``If-Modified-Since``, parses, and for each guid it
has not seen creates a :class:`FeedItem` and, when the item has a usable video, an asset that the
pull task fills. The feed's unique ``(feed_id, guid)`` makes concurrent polls ingest an item
once: the loser's insert fails in its own savepoint and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import enqueue_after_commit
from core.db import session_scope
from core.errors import CourtsideError, TooLarge
from core.models import Competition, FeedItem, League, LeagueFeed, Match, Season
from core.safe_http import FetchLimits, UrlRefused, check_url, open_url
from ingest.feeds import MAX_FEED_BYTES, FeedEntry, parse_feed
from ingest.pull import enqueue_pull, new_pulled_asset
from ingest.teams import link_named_teams

POLL_TASK = "ingest.poll_feed"
CLAIM_BATCH = 100
FEED_TIMEOUT_S = 30.0
MAX_BACKOFF_S = 6 * 3600


@dataclass(frozen=True)
class PollTools:
    """What polling needs: sessions and the fetch limits (networks from the settings)."""

    sessions: sessionmaker[Session]
    limits: FetchLimits

    @property
    def feed_limits(self) -> FetchLimits:
        return FetchLimits(
            timeout_s=min(self.limits.timeout_s, FEED_TIMEOUT_S),
            max_bytes=MAX_FEED_BYTES,
            allowed_networks=self.limits.allowed_networks,
        )


@dataclass(frozen=True)
class PollResult:
    """What one poll did: its status, and how many new items it ingested or recorded failed."""

    status: str
    ingested: int = 0
    failed: int = 0


# --- claiming ---------------------------------------------------------------------------------


def claim_due_feeds(session: Session, now: datetime, limit: int = CLAIM_BATCH) -> list[int]:
    """Active feeds due at ``now``, each moved to its next interval and its poll enqueued (sent
    when the caller commits). Rows another transaction holds are skipped, not waited for."""
    due = session.scalars(
        select(LeagueFeed)
        .where(LeagueFeed.active.is_(True), LeagueFeed.next_poll_at <= now)
        .order_by(LeagueFeed.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for feed in due:
        feed.next_poll_at = now + timedelta(seconds=feed.interval_s)
        enqueue_after_commit(session, POLL_TASK, [feed.id])
    return [feed.id for feed in due]


# --- one poll ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """What the fetch needs, read in a short transaction (no lock is held while fetching)."""

    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class _Fetched:
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


def _snapshot(sessions: sessionmaker[Session], feed_id: int) -> _Snapshot | None:
    with session_scope(sessions) as session:
        feed = session.get(LeagueFeed, feed_id)
        return _Snapshot(feed.url, feed.etag, feed.last_modified) if feed else None


def _conditional_headers(feed: _Snapshot) -> dict[str, str]:
    headers = {"Accept": "application/rss+xml, application/feed+json, application/json, */*"}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


def _fetch(feed: _Snapshot, limits: FetchLimits) -> _Fetched:
    with open_url(feed.url, limits, headers=_conditional_headers(feed)) as response:
        if response.status == 304:
            return _Fetched(304)
        return _Fetched(
            response.status,
            response.read_all(),
            (response.header("etag") or "")[:400] or None,
            (response.header("last-modified") or "")[:100] or None,
        )


def _valid_match(session: Session, league_id: int, ref: str | None) -> int | None:
    """The match ``ref`` names, only if it belongs to the feed's league."""
    if ref is None or not ref.isdigit() or len(ref) > 18:
        return None
    return session.scalar(
        select(Match.id)
        .join(Season, Match.season_id == Season.id)
        .join(Competition, Season.competition_id == Competition.id)
        .where(Match.id == int(ref), Competition.league_id == league_id)
    )


_PROBLEMS = {
    "no_media_url": "The item has no video URL (media:content, enclosure or attachment).",
    "unsupported_type": "The item's media is not a video file we can pull (e.g. an image or a "
    "streaming playlist).",
}


def _media_url(entry: FeedEntry, feed_url: str, limits: FetchLimits) -> tuple[str, str]:
    """("", checked URL) for a pullable entry, else (reason code, sentence)."""
    if entry.problem is not None or entry.media_url is None:
        code = entry.problem or "no_media_url"
        return code, _PROBLEMS.get(code, "The item cannot be ingested.")
    try:
        return "", check_url(urljoin(feed_url, entry.media_url), limits.allowed_networks).url
    except UrlRefused as exc:
        return UrlRefused.code, f"We will not fetch the item's video URL: {exc}."


def _record(
    session: Session, feed: LeagueFeed, entry: FeedEntry, limits: FetchLimits
) -> str | None:
    """Add the entry's FeedItem, and its asset when it has a usable video: the asset's id, or
    None when the item was recorded failed. The caller runs this in a savepoint."""
    code, detail = _media_url(entry, feed.url, limits)
    item = FeedItem(feed_id=feed.id, guid=entry.guid, media_url=(entry.media_url or "")[:2048])
    session.add(item)
    if code:
        item.status, item.error_code, item.error_message = "failed", code, detail
        session.flush()
        return None
    asset = new_pulled_asset(
        session,
        session.get_one(League, feed.league_id),
        title=entry.title,
        description=entry.description,
        teams=list(entry.teams),
        published_at=entry.published_at,
        source_url=detail,
        match_id=_valid_match(session, feed.league_id, entry.match_ref),
        origin="feed",
        created_by=f"feed:{feed.id}",
    )
    link_named_teams(session, asset)
    item.asset_id, item.media_url = asset.id, detail
    session.flush()
    return asset.id


def _new_entries(session: Session, feed_id: int, entries: list[FeedEntry]) -> list[FeedEntry]:
    guids = {entry.guid for entry in entries}
    seen = set(
        session.scalars(
            select(FeedItem.guid).where(FeedItem.feed_id == feed_id, FeedItem.guid.in_(guids))
        )
    )
    fresh: dict[str, FeedEntry] = {}
    for entry in entries:
        if entry.guid not in seen:
            fresh.setdefault(entry.guid, entry)  # a guid twice in one document counts once
    return list(fresh.values())


def ingest_entries(
    session: Session, feed: LeagueFeed, entries: list[FeedEntry], limits: FetchLimits
) -> PollResult:
    """Record every entry whose guid the feed has not seen; pulls are sent after commit."""
    ingested: list[str] = []
    failed = 0
    for entry in _new_entries(session, feed.id, entries):
        try:
            with session.begin_nested():
                asset_id = _record(session, feed, entry, limits)
        except IntegrityError:
            continue  # a concurrent poll recorded this guid first; its savepoint is undone
        if asset_id is None:
            failed += 1
        else:
            ingested.append(asset_id)
    for asset_id in ingested:
        enqueue_pull(session, asset_id)
    return PollResult("ok", len(ingested), failed)


def _backoff(feed: LeagueFeed, now: datetime) -> timedelta:
    """After a failure: the interval, doubled for each failure in a row (up to 6 h). The gap
    since the previous poll carries the count, so no extra column is needed."""
    interval = timedelta(seconds=feed.interval_s)
    previous_failed = feed.last_status not in (None, "ok", "not_modified")
    if not previous_failed or feed.last_polled_at is None:
        return interval
    doubled = 2 * (now - feed.last_polled_at)
    return min(max(interval, doubled), timedelta(seconds=MAX_BACKOFF_S))


def _finish(feed: LeagueFeed, now: datetime, result: PollResult, error: str | None) -> None:
    delay = _backoff(feed, now) if error else timedelta(seconds=feed.interval_s)
    feed.next_poll_at = now + delay
    feed.last_polled_at = now
    feed.last_status, feed.last_error = result.status, error
    feed.items_found += result.ingested + result.failed
    feed.items_failed += result.failed


def _feed_failure(exc: CourtsideError) -> str:
    if isinstance(exc, TooLarge):
        return f"The feed is larger than {MAX_FEED_BYTES} bytes."
    return f"The feed could not be read: {exc}."


def _record_failure(
    sessions: sessionmaker[Session], feed_id: int, now: datetime, exc: CourtsideError
) -> PollResult:
    result = PollResult(exc.code)
    with session_scope(sessions) as session:
        feed = session.get(LeagueFeed, feed_id, with_for_update=True)
        if feed is not None:
            _finish(feed, now, result, _feed_failure(exc))
    return result


def _record_success(
    tools: PollTools, feed_id: int, now: datetime, fetched: _Fetched, entries: list[FeedEntry]
) -> PollResult:
    with session_scope(tools.sessions) as session:
        feed = session.get(LeagueFeed, feed_id, with_for_update=True)
        if feed is None:
            return PollResult("gone")
        if fetched.status == 304:
            result = PollResult("not_modified")
        else:
            result = ingest_entries(session, feed, entries, tools.limits)
            feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
        _finish(feed, now, result, None)
        return result


def poll_feed(tools: PollTools, feed_id: int, now: datetime) -> PollResult:
    """Poll one feed now (the beat, or a partner's "poll now"). A fetch or parse failure is
    recorded on the feed (``last_status`` is its reason code) and pushes the next poll back."""
    snapshot = _snapshot(tools.sessions, feed_id)
    if snapshot is None:
        return PollResult("gone")
    try:
        fetched = _fetch(snapshot, tools.feed_limits)
        entries = parse_feed(fetched.body) if fetched.status != 304 else []
    except CourtsideError as exc:  # UrlRefused, FetchFailed, TooLarge, FeedInvalid
        return _record_failure(tools.sessions, feed_id, now, exc)
    return _record_success(tools, feed_id, now, fetched, entries)
