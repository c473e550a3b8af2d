"""The fan catalog query: playable highlights, filtered, sorted, keyset-paginated.

The cursor is opaque to clients: base64url of the sort name and the last item's sort key
(view count for ``most_watched``, then ``playable_at``, then the id, which breaks ties), so a
page boundary never skips or repeats an item that shares a key with its neighbour.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Text, and_, cast, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, lazyload

from core.errors import InvalidInput
from core.models import (
    PLAYABLE_STATES,
    Asset,
    AssetTranslation,
    Competition,
    League,
    LiveState,
    LiveStream,
    Match,
    Season,
    Team,
    asset_teams,
)
from player_api.access import RightsContext, decide
from rights.model import Viewer

Sort = Literal["newest", "most_watched"]
MAX_QUERY_CHARS = 100
MAX_CURSOR_CHARS = 300
# Rows examined per catalog request at most, so a viewer who may watch almost nothing cannot
# make one request scan the whole table; they get a short page and a cursor to go on from.
MAX_SCANNED = 500


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


@dataclass(frozen=True)
class Filters:
    """What the viewer asked for; every field narrows the list (None: no filter)."""

    league: str | None = None
    competition: str | None = None
    team: str | None = None
    match: int | None = None
    tag: str | None = None
    q: str | None = None
    sort: Sort = "newest"
    # True: only live streams on air now; False: everything but them.
    live: bool | None = None


def _sort_columns(sort: Sort) -> list[InstrumentedAttribute[Any]]:
    if sort == "most_watched":
        return [Asset.view_count, Asset.playable_at, Asset.id]
    return [Asset.playable_at, Asset.id]


def encode_cursor(asset: Asset, sort: Sort) -> str:
    """The opaque cursor that continues after ``asset`` in ``sort`` order."""
    assert asset.playable_at is not None  # noqa: S101 - listed assets always have it
    key: list[object] = [asset.playable_at.isoformat(), asset.id]
    if sort == "most_watched":
        key.insert(0, asset.view_count)
    raw = json.dumps({"s": sort, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> list[object]:
    """The sort key a cursor carries; InvalidCursor (422) if it is not one of ours for
    ``sort``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
        return _checked_key(body, sort)
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidCursor(
            "invalid cursor: pass back the next_cursor of the previous page unchanged, "
            "with the same sort"
        ) from None


def _checked_key(body: dict[str, Any], sort: Sort) -> list[object]:
    key = body["k"]
    if body["s"] != sort or len(key) != len(_sort_columns(sort)):
        raise ValueError("cursor of another sort")
    *head, stamp, asset_id = key
    if not isinstance(asset_id, str) or not all(type(v) is int for v in head):
        raise TypeError("malformed cursor key")
    return [*head, datetime.fromisoformat(stamp), asset_id]


def _after(columns: Sequence[InstrumentedAttribute[Any]], key: Sequence[object]) -> Any:
    """Rows strictly after ``key`` in descending lexicographic order of ``columns``."""
    clauses = []
    for n, column in enumerate(columns):
        equal = [c == v for c, v in zip(columns[:n], key[:n], strict=True)]
        clauses.append(and_(*equal, column < key[n]))
    return or_(*clauses)


def _in_league(slug: str) -> ColumnElement[bool]:
    return Asset.league_id.in_(select(League.id).where(League.slug == slug))


def _in_competition(slug: str) -> ColumnElement[bool]:
    matches = (
        select(Match.id)
        .join(Season, Match.season_id == Season.id)
        .join(Competition, Season.competition_id == Competition.id)
        .where(Competition.slug == slug)
    )
    return Asset.match_id.in_(matches)


def _with_team(slug: str) -> ColumnElement[bool]:
    """Clips linked to the team, or of a match it played in."""
    team_ids = select(Team.id).where(Team.slug == slug)
    linked = select(asset_teams.c.asset_id).where(asset_teams.c.team_id.in_(team_ids))
    played = select(Match.id).where(
        or_(Match.home_team_id.in_(team_ids), Match.away_team_id.in_(team_ids))
    )
    return or_(Asset.id.in_(linked), Asset.match_id.in_(played))


def _with_tag(tag: str) -> ColumnElement[bool]:
    # Tags are a JSON list (portable between SQLite and PostgreSQL); matching the quoted,
    # JSON-encoded tag in its text finds whole tags only ("goal" never matches "own-goal").
    return cast(Asset.tags, Text).icontains(json.dumps(tag.strip()), autoescape=True)


def _matching_text(q: str) -> ColumnElement[bool]:
    """Free text in the title or description, in the asset's own language or any other."""
    words = q.strip()
    translated = select(AssetTranslation.asset_id).where(
        or_(
            AssetTranslation.title.icontains(words, autoescape=True),
            AssetTranslation.description.icontains(words, autoescape=True),
        )
    )
    return or_(
        Asset.title.icontains(words, autoescape=True),
        Asset.description.icontains(words, autoescape=True),
        Asset.id.in_(translated),
    )


def _conditions(filters: Filters) -> list[ColumnElement[bool]]:
    builders: list[tuple[object, Callable[[Any], ColumnElement[bool]]]] = [
        (filters.league, _in_league),
        (filters.competition, _in_competition),
        (filters.team, _with_team),
        (filters.tag, _with_tag),
        (filters.q, _matching_text),
    ]
    found = [build(value) for value, build in builders if value]
    if filters.match is not None:
        found.append(Asset.match_id == filters.match)
    if filters.live is not None:
        on_air = Asset.id.in_(select(LiveStream.id).where(LiveStream.state == LiveState.LIVE))
        found.append(on_air if filters.live else ~on_air)
    return found


def validate(filters: Filters) -> Filters:
    """``filters`` if within limits; InvalidInput (422) naming the one that is not."""
    if filters.q is not None and len(filters.q) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q is limited to {MAX_QUERY_CHARS} characters")
    return filters


def playable() -> Select[Asset]:
    """Assets a fan may find: playable (first rung published), not failed or deleted."""
    return (
        select(Asset)
        .where(Asset.status.in_(PLAYABLE_STATES), Asset.playable_at.is_not(None))
        # The catalog never shows renditions: do not load them for every row.
        .options(lazyload(Asset.renditions))
    )


def list_ready(
    session: Session, filters: Filters, *, limit: int, cursor: str | None
) -> tuple[list[Asset], bool]:
    """Up to ``limit`` playable assets after ``cursor`` in the filters' sort, and whether more
    exist. Playable, not only ready: a clip is listed as soon as its first rung is published."""
    columns = _sort_columns(filters.sort)
    query = playable().where(*_conditions(filters))
    if cursor:
        query = query.where(_after(columns, decode_cursor(cursor, filters.sort)))
    query = query.order_by(*(c.desc() for c in columns)).limit(limit + 1)
    assets = list(session.scalars(query))
    return assets[:limit], len(assets) > limit


def list_watchable(
    session: Session,
    allowed: Callable[[list[Asset]], set[str]],
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Asset], str | None]:
    """One page of playable assets that ``allowed`` admits, and the cursor of the next page."""
    found: list[Asset] = []
    scanned, more = 0, True
    while more and len(found) < limit and scanned < MAX_SCANNED:
        batch, more = list_ready(session, filters, limit=limit, cursor=cursor)
        scanned += len(batch)
        admitted = allowed(batch)
        for asset in batch:
            cursor = encode_cursor(asset, filters.sort)
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
    if not assets:
        return set()
    item_rights = rights.cache.rights_for(session, assets)
    return {a.id for a in assets if decide(item_rights.get(a.id), viewer, now).allowed}
