"""Accepting a partner's clip: authorise, stream it to the store, queue the transcode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, require_league, require_role
from core.celery_app import enqueue_after_commit
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Asset, AssetStatus, League, Role
from core.storage import ObjectStore

PROCESS_TASK = "transcode.process_asset"
MAX_TITLE = 300
MAX_DESCRIPTION = 5000
# Declared types a partner's tool may send for a video. Anything else is refused at once
# (415); a file that lies about its type is caught by the probe in the worker (not_media).
ACCEPTED_TYPES = ("video/", "application/octet-stream", "application/mp4", "application/mxf")


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"


@dataclass(frozen=True)
class UploadMeta:
    league: str
    title: str
    description: str = ""
    filename: str = ""
    content_type: str = "application/octet-stream"


def source_key(asset_id: str) -> str:
    return f"sources/{asset_id}/original"


def league_by_slug(session: Session, slug: str) -> League:
    league = session.scalar(select(League).where(League.slug == slug))
    if league is None:
        raise NotFound(f"no league '{slug}'")
    return league


def check_meta(meta: UploadMeta) -> None:
    if not meta.title.strip() or len(meta.title) > MAX_TITLE:
        raise InvalidInput(f"title must be 1 to {MAX_TITLE} characters")
    if len(meta.description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION} characters")
    if not meta.content_type.lower().startswith(ACCEPTED_TYPES):
        raise UnsupportedMediaType(
            f"'{meta.content_type}' is not a video type; upload a video file (MP4, MOV, MKV…)"
        )


def accept_upload(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    meta: UploadMeta,
    stream: BinaryIO,
    *,
    max_bytes: int,
) -> Asset:
    """Store the stream as a new asset's source and queue its processing. On any failure
    (too large, store down) nothing is left behind: the row is rolled back by the caller's
    session and the store writes atomically."""
    require_role(principal, Role.PARTNER)
    league = league_by_slug(session, meta.league)
    require_league(principal, league.id)
    check_meta(meta)
    asset = Asset(
        league=league,
        title=meta.title.strip(),
        description=meta.description,
        source_filename=meta.filename[:300],
        created_by=principal.label,
    )
    session.add(asset)
    session.flush()
    asset.source_size = store.put_stream(
        source_key(asset.id), stream, content_type=meta.content_type, max_bytes=max_bytes
    )
    asset.source_key = source_key(asset.id)
    queue_processing(session, asset)
    return asset


def queue_processing(session: Session, asset: Asset) -> None:
    asset.status = AssetStatus.QUEUED
    enqueue_after_commit(session, PROCESS_TASK, [asset.id])


def get_asset_for(session: Session, principal: Principal, asset_id: str) -> Asset:
    """An asset its league's partners (and admins) may see in full, status and errors included."""
    require_role(principal, Role.PARTNER)
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status is AssetStatus.DELETED:
        raise NotFound("no such asset")
    require_league(principal, asset.league_id)
    return asset


RETRYABLE_STATES = (AssetStatus.FAILED,)


def retry_processing(session: Session, principal: Principal, asset_id: str) -> Asset:
    """Process a failed asset again from its stored source (after a clip-limit delay has
    passed, or a fix on our side): nothing needs uploading twice."""
    asset = get_asset_for(session, principal, asset_id)
    if asset.status not in RETRYABLE_STATES or not asset.source_key:
        raise Conflict(f"only a failed asset can be retried; this one is {asset.status}")
    asset.error_code = asset.error_message = None
    asset.progress = 0
    queue_processing(session, asset)
    return asset
