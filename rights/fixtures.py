"""The scope tree's upper nodes: competitions, seasons and matches (with the times that
anchor relative windows), and which match a clip belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from core.auth import Principal, require_league
from core.deps import SessionDep, requires
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Asset, Competition, League, Match, Role, Season
from rights.cache import RightsCache
from rights.scopes import resolve

router = APIRouter(prefix="/v1", tags=["fixtures"])
EditorDep = Annotated[Principal, Depends(requires(Role.PARTNER, Role.RIGHTS_MANAGER))]


class CompetitionIn(BaseModel):
    slug: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)


class SeasonIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class MatchTimes(BaseModel):
    kickoff: datetime | None = None
    final_whistle: datetime | None = None
    broadcast_end: datetime | None = None


class MatchIn(MatchTimes):
    home: str = Field(min_length=1, max_length=100)
    away: str = Field(min_length=1, max_length=100)


class Created(BaseModel):
    id: int


class AssetMatch(BaseModel):
    match_id: int | None


def _invalidate(request: Request) -> None:
    cache: RightsCache = request.app.state.rights_cache
    cache.invalidate()


def _check_times(times: MatchTimes) -> None:
    stamps = [t for t in (times.kickoff, times.final_whistle, times.broadcast_end) if t]
    if any(t.tzinfo is None for t in stamps):
        raise InvalidInput("match times need a time zone (e.g. 2026-05-01T19:00:00Z)")
    if stamps != sorted(stamps):
        raise InvalidInput("kickoff ≤ final_whistle ≤ broadcast_end")


@router.post("/leagues/{slug}/competitions", status_code=status.HTTP_201_CREATED)
def create_competition(
    session: SessionDep, principal: EditorDep, slug: str, body: CompetitionIn
) -> Created:
    """**Who:** partners and rights managers of the league, and admins."""
    league = session.scalar(select(League).where(League.slug == slug))
    if league is None:
        raise NotFound(f"no league '{slug}'")
    require_league(principal, league.id)
    taken = select(Competition.id).where(
        Competition.league_id == league.id, Competition.slug == body.slug
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"competition '{body.slug}' already exists")
    row = Competition(league_id=league.id, slug=body.slug, name=body.name)
    session.add(row)
    session.commit()
    return Created(id=row.id)


@router.post("/competitions/{competition_id}/seasons", status_code=status.HTTP_201_CREATED)
def create_season(
    session: SessionDep, principal: EditorDep, competition_id: int, body: SeasonIn
) -> Created:
    """**Who:** partners and rights managers of the league, and admins."""
    scope = resolve(session, "competition", str(competition_id))
    require_league(principal, scope.league_id)
    row = Season(competition_id=competition_id, name=body.name)
    session.add(row)
    session.commit()
    return Created(id=row.id)


@router.post("/seasons/{season_id}/matches", status_code=status.HTTP_201_CREATED)
def create_match(
    session: SessionDep, principal: EditorDep, season_id: int, body: MatchIn
) -> Created:
    """**Who:** partners and rights managers of the league, and admins."""
    scope = resolve(session, "season", str(season_id))
    require_league(principal, scope.league_id)
    _check_times(body)
    row = Match(season_id=season_id, **body.model_dump())
    session.add(row)
    session.commit()
    return Created(id=row.id)


@router.patch("/matches/{match_id}")
def update_match_times(
    request: Request, session: SessionDep, principal: EditorDep, match_id: int, body: MatchTimes
) -> Created:
    """Set kickoff, final whistle or broadcast end; windows relative to them move at once.
    **Who:** partners and rights managers of the league, and admins."""
    scope = resolve(session, "match", str(match_id))
    require_league(principal, scope.league_id)
    match = session.get_one(Match, match_id)
    for name, value in body.model_dump(exclude_unset=True).items():
        setattr(match, name, value)
    _check_times(MatchTimes(kickoff=match.kickoff, final_whistle=match.final_whistle,
                            broadcast_end=match.broadcast_end))  # fmt: skip
    session.commit()
    _invalidate(request)
    return Created(id=match_id)


@router.put("/assets/{asset_id}/match")
def set_asset_match(
    request: Request, session: SessionDep, principal: EditorDep, asset_id: str, body: AssetMatch
) -> AssetMatch:
    """Attach a clip to its match (or detach it): its rights then include the match's.
    **Who:** partners and rights managers of the clip's league, and admins."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("no such asset")
    require_league(principal, asset.league_id)
    other_league = (
        body.match_id is not None
        and resolve(session, "match", str(body.match_id)).league_id != asset.league_id
    )
    if other_league:
        raise InvalidInput("the match belongs to another league")
    asset.match_id = body.match_id
    session.commit()
    _invalidate(request)
    return body
