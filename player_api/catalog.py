"""The fan catalog: ready highlights, newest first, cursor-paginated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.models import PLAYABLE_STATES, Asset, League
from player_api.access import RightsContext, decide
from rights.model import Viewer


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


def cursor_of(asset: Asset) -> str:
    assert asset.playable_at is not None  # noqa: S101 - listed assets always have it
    return f"{asset.playable_at.isoformat()}_{asset.id}"


def list_ready(
    session: Session, *, league: str | None, limit: int, cursor: str | None
) -> tuple[list[Asset], bool]:
    """Up to ``limit`` playable assets after ``cursor``, newest first, and whether more exist.

    Playable, not only ready: a clip is listed as soon as its first rung is published."""
    query = select(Asset).where(Asset.status.in_(PLAYABLE_STATES), Asset.playable_at.is_not(None))
    if league:
        query = query.join(League).where(League.slug == league)
    if cursor:
        playable_at, asset_id = _parse_cursor(cursor)
        query = query.where(
            (Asset.playable_at < playable_at)
            | ((Asset.playable_at == playable_at) & (Asset.id < asset_id))
        )
    query = query.order_by(Asset.playable_at.desc(), Asset.id.desc()).limit(limit + 1)
    assets = list(session.scalars(query))
    return assets[:limit], len(assets) > limit


# Rows examined per catalog request at most, so a viewer who may watch almost nothing cannot
# make one request scan the whole table; they get a short page and a cursor to go on from.
MAX_SCANNED = 500


def list_watchable(
    session: Session,
    allowed: Callable[[list[Asset]], set[str]],
    *,
    league: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Asset], str | None]:
    """One page of ready assets that ``allowed`` admits, and the cursor of the next page."""
    found: list[Asset] = []
    scanned, more = 0, True
    while more and len(found) < limit and scanned < MAX_SCANNED:
        batch, more = list_ready(session, league=league, limit=limit, cursor=cursor)
        scanned += len(batch)
        admitted = allowed(batch)
        for asset in batch:
            cursor = cursor_of(asset)
            if asset.id in admitted:
                found.append(asset)
                if len(found) == limit:
                    more = more or asset is not batch[-1]
                    break
    return found, cursor if more else None


def allowed_ids(
    rights: RightsContext, session: Session, assets: list[Asset], viewer: Viewer, now: datetime
) -> set[str]:
    """The ids among ``assets`` that ``viewer`` may watch at ``now``."""
    item_rights = rights.cache.rights_for(session, assets)
    return {a.id for a in assets if decide(item_rights.get(a.id), viewer, now).allowed}
