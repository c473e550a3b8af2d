"""Every table. Behaviour lives in the domain packages, not here."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from core.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Role(enum.StrEnum):
    FAN = "fan"
    PARTNER = "partner"
    RIGHTS_MANAGER = "rights_manager"
    MODERATOR = "moderator"
    ADMIN = "admin"


class AssetStatus(enum.StrEnum):
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


class LiveState(enum.StrEnum):
    """A live stream: ``idle → connecting → live → ended``, or ``errored``."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    ENDED = "ended"
    ERRORED = "errored"


# Where a live stream's Asset came from (its catalog item and, once ended, its replay).
LIVE_ORIGIN = "live"


# A playable asset: its first rung is published (``playable_at`` set) and it is not failed or
# deleted; the rest of its ladder may still be encoding.
PLAYABLE_STATES = (AssetStatus.PROCESSING, AssetStatus.READY)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum) so adding a state is a one-line change.
    return Enum(cls, name=name, native_enum=False, length=32, values_callable=_values)


def _values(cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in cls]


class TZDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on PostgreSQL and SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


user_leagues = Table(
    "user_leagues",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("league_id", ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True),
)

api_key_leagues = Table(
    "api_key_leagues",
    Base.metadata,
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("league_id", ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True),
)


class League(Base):
    __tablename__ = "leagues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    handle: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.FAN)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    leagues: Mapped[list[League]] = relationship(secondary=user_leagues, lazy="selectin")


class ApiKey(Base):
    """A machine credential. Only a SHA-256 of the random secret is kept; it is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    leagues: Mapped[list[League]] = relationship(secondary=api_key_leagues, lazy="selectin")


class UserSession(Base):
    """A signed-in fan's bearer token (hashed like API keys), revocable by deleting the row."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    user: Mapped[User] = relationship(lazy="joined")


class Asset(Base):
    """A highlight clip and its processing state."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[AssetStatus] = mapped_column(
        _enum(AssetStatus, "asset_status"), default=AssetStatus.UPLOADING, index=True
    )
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    source_filename: Mapped[str] = mapped_column(String(300), default="")
    source_size: Mapped[int] = mapped_column(BigInteger, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    master_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    match_id: Mapped[int | None] = mapped_column(
        ForeignKey("matches.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # How the clip arrived: "upload" (API stream), "resumable", "url" or "feed".
    origin: Mapped[str] = mapped_column(String(16), default="upload")
    source_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the league says the clip was published (a feed item's pubDate); else created_at.
    published_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # Seconds of encoding left, estimated from ffmpeg's speed; None when not encoding.
    eta_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Last sign of life of the attempt in progress; the watchdog acts on stale ones.
    heartbeat_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # The Celery task running the attempt: its own redelivery may take over at once, a
    # duplicate message may not while the heartbeat is fresh.
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Playable (first rung published) before the full ladder is: the headline figure.
    playable_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    poster_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    storyboard_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # BCP 47 tag of ``title``/``description``; other languages live in AssetTranslation.
    lang: Mapped[str] = mapped_column(String(35), default="en", server_default="en")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Counted views, flushed from Redis counters by a beat task (no write per view or segment).
    view_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", index=True)
    league: Mapped[League] = relationship(lazy="joined")
    translations: Mapped[list[AssetTranslation]] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )
    # The league's Team rows this clip shows (``teams`` keeps the names as delivered).
    linked_teams: Mapped[list[Team]] = relationship(secondary="asset_teams", lazy="selectin")
    # The stream behind a live asset (None for every other origin).
    live_stream: Mapped[LiveStream | None] = relationship(lazy="selectin", viewonly=True)
    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="asset",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="Rendition.height.desc()",
    )


class Rendition(Base):
    """One rung of a ready asset's HLS ladder."""

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("asset_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bandwidth: Mapped[int] = mapped_column(Integer)
    codecs: Mapped[str] = mapped_column(String(100), default="")
    playlist_key: Mapped[str] = mapped_column(String(1024))
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    asset: Mapped[Asset] = relationship(back_populates="renditions")


class AssetTranslation(Base):
    """An asset's title and description in one more language (any BCP 47 tag)."""

    __tablename__ = "asset_translations"
    __table_args__ = (UniqueConstraint("asset_id", "lang"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    lang: Mapped[str] = mapped_column(String(35))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")


class Team(Base):
    """A club of a league; ``names`` holds its name in other languages (BCP 47 → name)."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("league_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


asset_teams = Table(
    "asset_teams",
    Base.metadata,
    Column("asset_id", ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Competition(Base):
    __tablename__ = "competitions"
    __table_args__ = (UniqueConstraint("league_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class Season(Base):
    __tablename__ = "seasons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    competition: Mapped[Competition] = relationship(lazy="joined")


class Match(Base):
    """A fixture; its kickoff, final whistle and broadcast end anchor relative windows."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id", ondelete="CASCADE"), index=True)
    home: Mapped[str] = mapped_column(String(100))
    away: Mapped[str] = mapped_column(String(100))
    home_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, index=True
    )
    away_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kickoff: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    final_whistle: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    broadcast_end: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    season: Mapped[Season] = relationship(lazy="joined")


class RightsGrant(Base):
    """One licence (an Avails transaction) on one scope node. Territories are stored expanded,
    with the named groups and their version kept beside them."""

    __tablename__ = "rights_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(32))
    license_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    worldwide: Mapped[bool] = mapped_column(default=False)
    territories: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded: Mapped[list[str]] = mapped_column(JSON, default=list)
    territory_groups: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    window: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    platforms: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    exclusive: Mapped[bool] = mapped_column(default=False)
    vpn_policy: Mapped[str] = mapped_column(String(32), default="allow")
    clip_limits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    licensee: Mapped[str] = mapped_column(String(200), default="")
    contract_id: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_rights_grants_scope", "scope_type", "scope_id"),)


class RightsBlackout(Base):
    """A live blackout: an audience, an action and a window."""

    __tablename__ = "rights_blackouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(32))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    subdivisions: Mapped[list[str]] = mapped_column(JSON, default=list)
    networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(16), default="block")
    alternate_item: Mapped[str | None] = mapped_column(String(32), nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)

    __table_args__ = (Index("ix_rights_blackouts_scope", "scope_type", "scope_id"),)


class RightsAudit(Base):
    """Every change to rights: who, when, what it was before and after."""

    __tablename__ = "rights_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class ResumableUpload(Base):
    """A direct-to-store upload in parts: S3 multipart (``s3_upload_id``) or local part files.

    The asset row exists from creation (status ``uploading``); completing the upload queues it.
    """

    __tablename__ = "resumable_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id"), index=True)
    declared_size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(200))
    part_size: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(1024))
    s3_upload_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    parts: Mapped[list[UploadPart]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="UploadPart.number"
    )


class UploadPart(Base):
    """One received part: its size and checksum (the ETag S3 returned, or our own MD5)."""

    __tablename__ = "upload_parts"
    __table_args__ = (UniqueConstraint("upload_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[str] = mapped_column(
        ForeignKey("resumable_uploads.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class LeagueFeed(Base):
    """An MRSS or JSON Feed a league publishes; beat polls it every ``interval_s``."""

    __tablename__ = "league_feeds"
    __table_args__ = (UniqueConstraint("league_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    interval_s: Mapped[int] = mapped_column(Integer, default=300)
    active: Mapped[bool] = mapped_column(default=True)
    etag: Mapped[str | None] = mapped_column(String(400), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    next_poll_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    last_polled_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    items_found: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class FeedItem(Base):
    """One feed entry, ingested once by its guid; failures keep their reason."""

    __tablename__ = "feed_items"
    __table_args__ = (UniqueConstraint("feed_id", "guid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("league_feeds.id", ondelete="CASCADE"), index=True
    )
    guid: Mapped[str] = mapped_column(String(1024))
    media_url: Mapped[str] = mapped_column(String(2048), default="")
    asset_id: Mapped[str | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), default="ingested")
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Event(Base):
    """Something partners may hear about (``asset.ready``...): the outbox webhooks read."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)


class WebhookEndpoint(Base):
    """A partner's URL for events. Its signing secret is derived from the server secret and
    ``secret_salt`` (rotated by changing the salt), so no secret is stored."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_salt: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: attempts, the last answer, and when to try again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    event: Mapped[Event] = relationship(lazy="joined")


class LiveStream(Base):
    """A league's live feed for a match. Its catalog item is the Asset with the same id
    (origin "live"): rights, translations, views and comments need nothing of their own, and
    when the stream ends the same item becomes its full replay.

    The stream key is stored only as a SHA-256 hash; ``key_hint`` is its last characters so a
    partner can tell keys apart."""

    __tablename__ = "live_streams"

    id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    state: Mapped[LiveState] = mapped_column(
        _enum(LiveState, "live_state"), default=LiveState.IDLE, index=True
    )
    key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    key_hint: Mapped[str] = mapped_column(String(8), default="")
    key_created_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # "rtmp" or "whip": how the current (or last) publisher connected.
    protocol: Mapped[str] = mapped_column(String(8), default="rtmp")
    publisher_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # True from on_publish to on_publish_done: what the live task waits for during a grace.
    publishing: Mapped[bool] = mapped_column(default=False)
    # Publisher sessions so far: each return after a drop starts the next one.
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    publish_started_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    publisher_left_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # The live task in charge and its last sign of life: a stale heartbeat while the
    # publisher is still there means the worker was lost, and beat starts a new task.
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(TZDateTime(), nullable=True)
    # Input facts and ffmpeg's figures (bitrate, fps, resolution, codec, speed, drops...).
    health: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # The rungs chosen for this stream (kept across publisher sessions).
    ladder: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    dvr_window_s: Mapped[int] = mapped_column(Integer, default=3600)
    segment_s: Mapped[float] = mapped_column(default=1.0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    asset: Mapped[Asset] = relationship(lazy="joined")


def on_air(asset: Asset) -> bool:
    """A live asset whose stream is live now (its catalog item says so; blackouts apply)."""
    stream = asset.live_stream
    return stream is not None and stream.state is LiveState.LIVE


class CommentMessage(Base):
    """The durable archive of every accepted comment (Redis keeps only recent history).
    ``stream_id`` is the message's id everywhere (its Redis Stream id, ``<ms>-<seq>``);
    ``ms``/``seq`` order it. ``author_key`` is the poster's principal label (``user:5``)."""

    __tablename__ = "comment_messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "ms", "seq", name="uq_comment_messages_channel_id"),
        Index("ix_comment_messages_media", "channel_id", "media_ms"),
        Index("ix_comment_messages_author", "channel_id", "author_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    stream_id: Mapped[str] = mapped_column(String(40))
    ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)
    author_key: Mapped[str] = mapped_column(String(64))
    author_handle: Mapped[str] = mapped_column(String(64))
    author_badge: Mapped[str | None] = mapped_column(String(32), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    media_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # "visible", "held" (a blocked term: waits for a moderator) or "hidden".
    state: Mapped[str] = mapped_column(String(16))
    likes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class CommentChannel(Base):
    """A comment channel's settings (channels without a row are open, no slow mode)."""

    __tablename__ = "comment_channels"

    channel_id: Mapped[str] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    # "open", "account_age" (accounts older than min_account_age_s), "verified", "closed".
    mode: Mapped[str] = mapped_column(String(16), default="open")
    min_account_age_s: Mapped[int] = mapped_column(Integer, default=0)
    slow_mode_s: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)


class CommentBan(Base):
    __tablename__ = "comment_bans"

    channel_id: Mapped[str] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    author_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class CommentLike(Base):
    """One like per viewer per message."""

    __tablename__ = "comment_likes"

    channel_id: Mapped[str] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    stream_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    author_key: Mapped[str] = mapped_column(String(64), primary_key=True)


class CommentReport(Base):
    __tablename__ = "comment_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    stream_id: Mapped[str] = mapped_column(String(40))
    reporter_key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class BlockedTerm(Base):
    """A term that holds a comment for review, stored normalised (see player_api.comments)."""

    __tablename__ = "comment_blocked_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
