"""Partner API for pulling clips from URLs (``POST /v1/assets/pull``) and for league feeds
(``/v1/leagues/{slug}/feeds``, ``/v1/feeds/{id}``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import Principal, require_league, require_role
from core.celery_app import enqueue_after_commit
from core.deps import PartnerDep, SessionDep, SettingsDep
from core.errors import Conflict, InvalidInput, NotFound
from core.models import FeedItem, LeagueFeed, Role
from core.settings import Settings
from ingest.feed_poll import POLL_TASK
from ingest.pull import PullRequest, accept_pull, checked_url
from ingest.schemas import AssetOut
from ingest.uploads import league_by_slug

pull_router = APIRouter(prefix="/v1/assets", tags=["assets"])
router = APIRouter(tags=["feeds"])

MAX_FEEDS_PER_LEAGUE = 50
MAX_INTERVAL_S = 7 * 24 * 3600
RECENT_ITEMS = 50
POLL_NOW_GAP_S = 10


# --- schemas ----------------------------------------------------------------------------------


class PullIn(BaseModel):
    league: str = Field(max_length=64)
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=5000)
    url: str = Field(max_length=2048)
    teams: list[str] = Field(default_factory=list, max_length=20)


class FeedIn(BaseModel):
    url: str = Field(max_length=2048)
    interval_s: int = Field(default=300, gt=0, le=MAX_INTERVAL_S)


class FeedPatch(BaseModel):
    interval_s: int | None = Field(default=None, gt=0, le=MAX_INTERVAL_S)
    active: bool | None = None


class FeedItemError(BaseModel):
    code: str
    message: str


class FeedItemOut(BaseModel):
    guid: str
    media_url: str
    status: str
    asset_id: str | None
    error: FeedItemError | None
    created_at: datetime

    @classmethod
    def of(cls, item: FeedItem) -> FeedItemOut:
        error = None
        if item.error_code:
            error = FeedItemError(code=item.error_code, message=item.error_message or "")
        return cls(
            guid=item.guid,
            media_url=item.media_url,
            status=item.status,
            asset_id=item.asset_id,
            error=error,
            created_at=item.created_at,
        )


class FeedOut(BaseModel):
    id: int
    league_id: int
    url: str
    interval_s: int
    active: bool
    next_poll_at: datetime
    last_polled_at: datetime | None
    last_status: str | None
    last_error: str | None
    items_found: int
    items_failed: int
    created_at: datetime

    @classmethod
    def of(cls, feed: LeagueFeed) -> FeedOut:
        return cls.model_validate(feed, from_attributes=True)


class FeedStatusOut(FeedOut):
    recent_items: list[FeedItemOut]


# --- service ----------------------------------------------------------------------------------


def _check_interval(interval_s: int, settings: Settings) -> int:
    if interval_s < settings.feed_min_interval_s:
        raise InvalidInput(f"interval_s must be at least {settings.feed_min_interval_s} seconds")
    return interval_s


def _feed_for(session: Session, principal: Principal, feed_id: int) -> LeagueFeed:
    require_role(principal, Role.PARTNER)
    feed = session.get(LeagueFeed, feed_id)
    if feed is None:
        raise NotFound("no such feed")
    require_league(principal, feed.league_id)
    return feed


def create_feed(
    session: Session, principal: Principal, slug: str, body: FeedIn, settings: Settings
) -> LeagueFeed:
    """Register a feed; its first poll is due at once (the beat picks it up)."""
    require_role(principal, Role.PARTNER)
    league = league_by_slug(session, slug)
    require_league(principal, league.id)
    url = checked_url(body.url, settings)
    feeds = select(func.count()).where(LeagueFeed.league_id == league.id)
    if (session.scalar(feeds) or 0) >= MAX_FEEDS_PER_LEAGUE:
        raise Conflict(f"a league may register at most {MAX_FEEDS_PER_LEAGUE} feeds")
    if session.scalar(select(LeagueFeed.id).filter_by(league_id=league.id, url=url)):
        raise Conflict("this feed is already registered for the league")
    feed = LeagueFeed(
        league_id=league.id,
        url=url,
        interval_s=_check_interval(body.interval_s, settings),
        created_by=principal.label,
        next_poll_at=datetime.now(UTC),
    )
    session.add(feed)
    session.flush()
    return feed


def _check_not_just_polled(feed: LeagueFeed, now: datetime) -> None:
    """Polling now is for impatience, not load: one per feed every few seconds."""
    if feed.last_polled_at is None:
        return
    wait = POLL_NOW_GAP_S - (now - feed.last_polled_at).total_seconds()
    if wait > 0:
        raise Conflict(f"the feed was polled just now; try again in {wait:.0f} s")


def feed_status(session: Session, feed: LeagueFeed) -> FeedStatusOut:
    items = session.scalars(
        select(FeedItem)
        .where(FeedItem.feed_id == feed.id)
        .order_by(FeedItem.id.desc())
        .limit(RECENT_ITEMS)
    )
    return FeedStatusOut(
        **FeedOut.of(feed).model_dump(), recent_items=[FeedItemOut.of(i) for i in items]
    )


# --- routes -----------------------------------------------------------------------------------


@pull_router.post("/pull", status_code=status.HTTP_202_ACCEPTED, response_model=AssetOut)
def pull_asset(
    session: SessionDep, settings: SettingsDep, principal: PartnerDep, body: PullIn
) -> AssetOut:
    """Fetch a clip from a public http(s) URL. **Who:** partners of ``league`` and admins.
    The asset is created ``uploading``; a worker downloads it, then processing starts. A URL
    that points at a private or internal address is refused (``url_refused``)."""
    request = PullRequest(body.league, body.title, body.url, body.description, body.teams)
    asset = accept_pull(session, principal, request, settings)
    session.commit()
    return AssetOut.of(asset)


@router.post(
    "/v1/leagues/{slug}/feeds", status_code=status.HTTP_201_CREATED, response_model=FeedOut
)
def register_feed(
    session: SessionDep, settings: SettingsDep, principal: PartnerDep, slug: str, body: FeedIn
) -> FeedOut:
    """Register an MRSS or JSON Feed, polled every ``interval_s`` seconds. **Who:** partners
    of the league and admins."""
    feed = create_feed(session, principal, slug, body, settings)
    session.commit()
    return FeedOut.of(feed)


@router.get("/v1/leagues/{slug}/feeds", response_model=list[FeedOut])
def list_feeds(session: SessionDep, principal: PartnerDep, slug: str) -> list[FeedOut]:
    """The league's feeds. **Who:** partners of the league and admins."""
    league = league_by_slug(session, slug)
    require_league(principal, league.id)
    feeds = session.scalars(
        select(LeagueFeed).where(LeagueFeed.league_id == league.id).order_by(LeagueFeed.id)
    )
    return [FeedOut.of(feed) for feed in feeds]


@router.get("/v1/feeds/{feed_id}", response_model=FeedStatusOut)
def get_feed(session: SessionDep, principal: PartnerDep, feed_id: int) -> FeedStatusOut:
    """A feed's status: last poll, its outcome, item counts and the recent items with their
    reasons. **Who:** partners of the feed's league and admins."""
    return feed_status(session, _feed_for(session, principal, feed_id))


@router.patch("/v1/feeds/{feed_id}", response_model=FeedOut)
def update_feed(
    session: SessionDep, settings: SettingsDep, principal: PartnerDep, feed_id: int, body: FeedPatch
) -> FeedOut:
    """Change a feed's interval or pause it (``active: false``). **Who:** partners of the
    feed's league and admins."""
    feed = _feed_for(session, principal, feed_id)
    if body.interval_s is not None:
        feed.interval_s = _check_interval(body.interval_s, settings)
    if body.active is not None:
        feed.active = body.active
    session.commit()
    return FeedOut.of(feed)


@router.delete("/v1/feeds/{feed_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_feed(session: SessionDep, principal: PartnerDep, feed_id: int) -> Response:
    """Stop and remove a feed (its assets stay). **Who:** partners of the feed's league and
    admins."""
    session.delete(_feed_for(session, principal, feed_id))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/feeds/{feed_id}/poll", status_code=status.HTTP_202_ACCEPTED, response_model=FeedOut
)
def poll_now(session: SessionDep, principal: PartnerDep, feed_id: int) -> FeedOut:
    """Poll the feed now instead of waiting for its interval. **Who:** partners of the feed's
    league and admins."""
    feed = _feed_for(session, principal, feed_id)
    _check_not_just_polled(feed, datetime.now(UTC))
    enqueue_after_commit(session, POLL_TASK, [feed.id])
    session.commit()
    return FeedOut.of(feed)
