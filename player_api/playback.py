"""Playback: a signed token per viewing, and the playlists and segments it unlocks.

URLs carry the token as a path segment (``/v1/stream/<token>/master.m3u8``) so that the
relative URIs inside HLS playlists inherit it without rewriting them."""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.models import PLAYABLE_STATES, Asset, on_air
from player_api.access import RightsContext, decide, require
from rights import tokens
from rights.memo import DecisionMemo
from rights.model import ItemRights, Viewer

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# Where live streams' playlists and segments are stored (``live/<id>/...``).
LIVE_PREFIX = "live/"


class NotPlayable(NotFound):
    code = "not_playable"


@dataclass(frozen=True)
class StreamGrant:
    """What a playback token carries: the item, where its files are, and the viewing it was
    issued for (country, grant, session)."""

    asset_id: str
    prefix: str  # store prefix of the published attempt, e.g. hls/<id>/<attempt>
    country: str  # "" when no location was needed (a worldwide grant)
    grant_id: int | None
    session_id: str


@dataclass(frozen=True)
class LiveFacts:
    """A live stream's playback extras (its DVR master is ``dvr.m3u8`` beside the master)."""

    dvr_window_s: int
    started_at: datetime | None
    on_air: bool


@dataclass(frozen=True)
class Playback:
    token: str
    expires_at: datetime
    has_poster: bool = False
    # The storyboard VTT relative to the master playlist (its sprite sheets are named
    # relative to it, so it is served under the same token path), None if there is none.
    storyboard_path: str | None = None
    live: LiveFacts | None = None


def start_playback(
    session: Session,
    keys: tokens.SigningKeys,
    rights: RightsContext,
    viewer: Viewer,
    asset_id: str,
    *,
    ttl_s: int,
    now: datetime,
) -> Playback:
    """Decide once, and carry the decision in a token that expires no later than the grant's
    window; every later request re-checks it (see check_stream)."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status not in PLAYABLE_STATES or not asset.master_key:
        raise NotPlayable("this item is not available for playback (yet)")
    decision = require(decide(rights.cache.rights_for(session, [asset])[asset.id], viewer, now))
    expires = now + timedelta(seconds=ttl_s)
    if decision.valid_until is not None:
        expires = min(expires, decision.valid_until)
    claims = {
        "a": asset.id,
        "p": posixpath.dirname(asset.master_key),
        "c": viewer.country or "",
        "g": decision.grant_id,
        "s": secrets.token_urlsafe(9),
    }
    ttl = max(1, int((expires - now).total_seconds()))
    token = tokens.sign(keys, claims, ttl_s=ttl, now=now.timestamp())
    return Playback(
        token=token,
        expires_at=expires,
        has_poster=asset.poster_key is not None,
        storyboard_path=relative_to(asset.storyboard_key, claims["p"]),
        live=_live_facts(asset),
    )


def _live_facts(asset: Asset) -> LiveFacts | None:
    """For a live stream still served from its live playlists (not yet its VOD replay)."""
    stream = asset.live_stream
    if stream is None or not (asset.master_key or "").startswith(LIVE_PREFIX):
        return None
    return LiveFacts(stream.dvr_window_s, stream.started_at, on_air(asset))


def relative_to(key: str | None, prefix: object) -> str | None:
    """``key`` relative to the published ``prefix``; None when absent or outside it."""
    if key is None or not isinstance(prefix, str) or not key.startswith(prefix + "/"):
        return None
    return key[len(prefix) + 1 :]


def grant_of(claims: Mapping[str, Any]) -> StreamGrant:
    """The grant a verified token's claims describe."""
    grant = claims.get("g")
    return StreamGrant(
        asset_id=str(claims["a"]),
        prefix=str(claims["p"]),
        country=str(claims.get("c", "")),
        grant_id=grant if isinstance(grant, int) else None,
        session_id=str(claims.get("s", "")),
    )


def check_stream(
    grant: StreamGrant,
    item: ItemRights | None,
    viewer: Viewer,
    now: datetime,
    memo: DecisionMemo | None = None,
) -> None:
    """Every playlist and segment request: the connecting viewer must be in the country the
    playback was started from, and the item's rights must still allow them now (a revoke, a
    narrowed territory or an ended window applies at once)."""
    if grant.country and viewer.country != grant.country:
        raise tokens.InvalidToken("this playback was started in another country")
    require(decide(item, viewer, now, memo))


def object_key(grant: StreamGrant, path: str) -> str:
    """The store key for a path under the grant; nothing outside the asset's prefix."""
    clean = posixpath.normpath(path)
    if clean.startswith(("/", "..")) or clean == "." or "\\" in path:
        raise InvalidInput("invalid media path")
    if not clean.endswith((".m3u8", ".m4s", ".mp4", ".vtt", ".jpg")):
        raise NotFound("no such media file")
    return f"{grant.prefix}/{clean}"


def is_playlist(key: str) -> bool:
    return key.endswith(".m3u8")
