"""Playback: a signed token per viewing, and the playlists and segments it unlocks.

URLs carry the token as a path segment (``/v1/stream/<token>/master.m3u8``) so that the
relative URIs inside HLS playlists inherit it without rewriting them."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.models import Asset, AssetStatus
from rights import tokens

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


class NotPlayable(NotFound):
    code = "not_playable"


@dataclass(frozen=True)
class StreamGrant:
    asset_id: str
    prefix: str  # store prefix of the published attempt, e.g. hls/<id>/<attempt>


def start_playback(session: Session, keys: tokens.SigningKeys, asset_id: str, ttl_s: int) -> str:
    """A playback token for a ready asset. Rights checks join here with the rights issue."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status is not AssetStatus.READY or not asset.master_key:
        raise NotPlayable("this highlight is not available for playback")
    prefix = posixpath.dirname(asset.master_key)
    return tokens.sign(keys, {"a": asset.id, "p": prefix}, ttl_s=ttl_s)


def open_grant(keys: tokens.SigningKeys, token: str) -> StreamGrant:
    claims = tokens.verify(keys, token)
    return StreamGrant(asset_id=str(claims["a"]), prefix=str(claims["p"]))


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
