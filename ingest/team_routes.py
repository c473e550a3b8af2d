"""Partner API for a league's teams (``POST /v1/leagues/{slug}/teams``) and a clip's teams
(``PUT /v1/assets/{id}/teams``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from core.auth import Principal
from core.deps import SessionDep, requires
from core.models import Role
from ingest import teams

router = APIRouter(prefix="/v1", tags=["teams"])
EditorDep = Annotated[Principal, Depends(requires(Role.PARTNER, Role.RIGHTS_MANAGER))]
TeamSlug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]


class TeamIn(BaseModel):
    slug: TeamSlug
    name: str = Field(min_length=1, max_length=teams.MAX_NAME)
    names: dict[str, str] = Field(
        default_factory=dict,
        description="The name in other languages: BCP 47 tag → name",
        examples=[{"zh-Hans": "港湾雄鹰", "sv": "Hamnhökarna"}],
    )


class TeamCreated(BaseModel):
    id: int
    slug: str


class AssetTeams(BaseModel):
    teams: list[TeamSlug] = Field(max_length=teams.MAX_LINKED)


@router.post("/leagues/{slug}/teams", status_code=status.HTTP_201_CREATED)
def create_team(session: SessionDep, principal: EditorDep, slug: str, body: TeamIn) -> TeamCreated:
    """Add a team to the league; 409 if the slug is taken.
    **Who:** partners and rights managers of the league, and admins."""
    team = teams.create_team(
        session, principal, slug, slug=body.slug, name=body.name, names=body.names
    )
    session.commit()
    return TeamCreated(id=team.id, slug=team.slug)


@router.put("/assets/{asset_id}/teams")
def set_asset_teams(
    session: SessionDep, principal: EditorDep, asset_id: str, body: AssetTeams
) -> AssetTeams:
    """Set the teams a clip shows (slugs of its league's teams; ``[]`` clears them); 422
    ``unknown_team`` lists slugs the league does not have.
    **Who:** partners and rights managers of the clip's league, and admins."""
    linked = teams.set_asset_teams(session, principal, asset_id, body.teams)
    session.commit()
    return AssetTeams(teams=[team.slug for team in linked])
