"""The rights domain as plain values: grants, windows, blackouts, viewers, decisions.

Nothing here touches the database or the network; ``rights.evaluate`` decides over these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network


class LicenseType(enum.StrEnum):
    LIVE = "live"
    LIVE_DELAYED = "live_delayed"
    HIGHLIGHTS = "highlights"
    FULL_REPLAY = "full_replay"
    NEWS_ACCESS = "news_access"


# What a fan's request needs: a clip plays under any of these, a live stream under these.
CLIP_LICENSES = frozenset(
    {LicenseType.HIGHLIGHTS, LicenseType.FULL_REPLAY, LicenseType.NEWS_ACCESS}
)
LIVE_LICENSES = frozenset({LicenseType.LIVE, LicenseType.LIVE_DELAYED})


class GrantStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"
    EXPIRED = "expired"


class VpnPolicy(enum.StrEnum):
    ALLOW = "allow"
    BLOCK_ANONYMOUS = "block_anonymous"


class EventAnchor(enum.StrEnum):
    KICKOFF = "kickoff"
    FINAL_WHISTLE = "final_whistle"
    BROADCAST_END = "broadcast_end"


class BlackoutAction(enum.StrEnum):
    BLOCK = "block"
    ALTERNATE = "alternate"


class Reason(enum.StrEnum):
    """Why a decision came out as it did; stable codes for clients and logs."""

    ALLOWED = "allowed"
    NO_GRANT = "no_grant"
    TERRITORY = "territory_not_licensed"
    UNKNOWN_LOCATION = "unknown_location"
    WINDOW_NOT_STARTED = "window_not_started"
    WINDOW_ENDED = "window_ended"
    WINDOW_UNRESOLVED = "window_unresolved"
    PLATFORM = "platform_not_licensed"
    ANONYMIZER = "anonymizer_blocked"
    BLACKOUT = "blackout"


@dataclass(frozen=True)
class WindowEdge:
    """An absolute instant, or an event of the match plus a lag (Avails StartCondition@lag)."""

    at: datetime | None = None
    event: EventAnchor | None = None
    lag_s: int = 0


@dataclass(frozen=True)
class Window:
    """When a grant applies; ``None`` edges are open (always started / never ending)."""

    start: WindowEdge | None = None
    end: WindowEdge | None = None


@dataclass(frozen=True)
class EventTimes:
    """The match's clock; unknown (TBD) times make relative windows unresolvable: deny."""

    kickoff: datetime | None = None
    final_whistle: datetime | None = None
    broadcast_end: datetime | None = None


@dataclass(frozen=True)
class Grant:
    """One licence on one scope node.

    ``territories`` is None for a worldwide grant (no territory list applies, so no location
    is needed); otherwise expanded ISO 3166-1 alpha-2 and ISO 3166-2 codes. A country code
    covers all its subdivisions; a subdivision code covers only itself. ``platforms`` None
    means every platform.
    """

    id: int
    license_type: LicenseType
    territories: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()
    window: Window = Window()
    platforms: frozenset[str] | None = None
    vpn_policy: VpnPolicy = VpnPolicy.ALLOW
    status: GrantStatus = GrantStatus.APPROVED
    exclusive: bool = False


@dataclass(frozen=True)
class Blackout:
    """A live-only audience that must not see (or must see something else) for a while."""

    id: int
    countries: frozenset[str] = frozenset()
    subdivisions: frozenset[str] = frozenset()
    networks: tuple[IPv4Network | IPv6Network, ...] = ()
    platforms: frozenset[str] = frozenset()
    action: BlackoutAction = BlackoutAction.BLOCK
    alternate_item: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    priority: int = 0


@dataclass(frozen=True)
class ScopeLevel:
    """One node of league → competition → season → match → item, with its grants."""

    kind: str
    id: str
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class ItemRights:
    """Everything a decision about one item needs, root level first."""

    item_id: str
    levels: tuple[ScopeLevel, ...]
    events: EventTimes = EventTimes()
    blackouts: tuple[Blackout, ...] = ()
    # On air now: live blackouts apply.
    is_live: bool = False
    # A live stream or its full replay: licensed by live licenses, not highlight ones.
    live_event: bool = False

    @property
    def licenses(self) -> frozenset[LicenseType]:
        """The license types that may cover this item."""
        return LIVE_LICENSES if self.live_event else CLIP_LICENSES


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as the server resolved it (never as the client claimed it)."""

    country: str | None
    subdivision: str | None = None
    ip: IPv4Address | IPv6Address | None = None
    anonymous: bool = False
    platform: str = "web"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason
    message: str
    grant_id: int | None = None
    valid_until: datetime | None = None
    available_from: datetime | None = None
    alternate_item: str | None = None
    blackout_id: int | None = None
    details: dict[str, str] = field(default_factory=dict)
