"""Who may read and post in a channel: reading needs the rights to watch its item (as for
playback); posting needs an account; moderators, admins and the league's partners
moderate (and read whatever the viewer's territory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.auth import Principal
from core.errors import NotFound, Unauthenticated
from core.models import PLAYABLE_STATES, ApiKey, Asset, AssetStatus, Role, User
from player_api.access import RightsContext, decide, require
from player_api.comments.model import Author
from rights.model import Viewer

STAFF = (Role.MODERATOR, Role.ADMIN)


@dataclass(frozen=True)
class Channel:
    """A comment channel: the item it belongs to and what media times mean there."""

    id: str
    league_id: int
    live: bool
    duration_ms: int | None


def open_channel(
    session: Session,
    rights: RightsContext,
    viewer: Viewer,
    principal: Principal,
    channel_id: str,
    now: datetime,
) -> tuple[Channel, bool]:
    """The channel and whether ``principal`` moderates it; NotFound, or NotAvailable (451)
    for a viewer who may not watch the item."""
    asset = session.get(Asset, channel_id)
    if asset is None or not _has_channel(asset):
        raise NotFound("no such comment channel")
    moderator = moderates(principal, asset.league_id)
    if not moderator:
        item = rights.cache.rights_for(session, [asset])[asset.id]
        require(decide(item, viewer, now, rights.decisions))
    duration = int(asset.duration_s * 1000) if asset.duration_s else None
    return Channel(asset.id, asset.league_id, asset.live_stream is not None, duration), moderator


def _has_channel(asset: Asset) -> bool:
    if asset.live_stream is not None:
        return asset.status is not AssetStatus.DELETED
    return asset.status in PLAYABLE_STATES


def moderates(principal: Principal, league_id: int) -> bool:
    if principal.role in STAFF:
        return True
    return principal.role is Role.PARTNER and league_id in principal.league_ids


def author_of(session: Session, principal: Principal, *, moderator: bool) -> Author:
    """The poster as shown beside their messages. Accounts other than fans' carry their role
    as a badge and count as verified (the platform vouched for them)."""
    if not principal.is_authenticated or principal.id is None:
        raise Unauthenticated("sign in to comment")
    badge = None if principal.role in (None, Role.FAN) else str(principal.role)
    if principal.kind == "user":
        user = session.get(User, principal.id)
        if user is None:
            raise Unauthenticated("sign in to comment")
        handle, created = user.handle, user.created_at
    else:
        key = session.get(ApiKey, principal.id)
        if key is None:
            raise Unauthenticated("sign in to comment")
        handle, created = key.name or f"key-{key.id}", key.created_at
    return Author(principal.label, handle, badge, created, badge is not None, moderator)
