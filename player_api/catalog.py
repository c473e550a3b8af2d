"""The fan catalog: ready highlights, newest first, cursor-paginated."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.models import Asset, AssetStatus, League


class HighlightOut(BaseModel):
    id: str
    league: str
    league_name: str
    title: str
    description: str
    duration_s: float | None
    published_at: datetime
    playback_url: str


class HighlightPage(BaseModel):
    items: list[HighlightOut]
    next_cursor: str | None


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, _, asset_id = cursor.partition("_")
    try:
        return datetime.fromisoformat(stamp), asset_id
    except ValueError:
        raise InvalidInput("invalid cursor") from None


def list_ready(
    session: Session, *, league: str | None, limit: int, cursor: str | None
) -> tuple[list[Asset], str | None]:
    """One page of ready assets and the cursor of the next page (None at the end)."""
    query = select(Asset).where(Asset.status == AssetStatus.READY)
    if league:
        query = query.join(League).where(League.slug == league)
    if cursor:
        ready_at, asset_id = _parse_cursor(cursor)
        query = query.where(
            (Asset.ready_at < ready_at) | ((Asset.ready_at == ready_at) & (Asset.id < asset_id))
        )
    query = query.order_by(Asset.ready_at.desc(), Asset.id.desc()).limit(limit + 1)
    assets = list(session.scalars(query))
    if len(assets) <= limit:
        return assets, None
    last = assets[limit - 1]
    assert last.ready_at is not None  # noqa: S101 - ready assets always have ready_at
    return assets[:limit], f"{last.ready_at.isoformat()}_{last.id}"
