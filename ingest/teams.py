"""A league's teams, and which teams a clip shows.

Partners create teams (a slug, the league's own spelling, and names in other languages) and
link clips to them; a feed item's team names (``Asset.teams``, as delivered) are linked to the
league's teams when they match a team's slug or one of its names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, require_league
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Asset, Team
from ingest.uploads import league_by_slug

MAX_NAMES = 30
MAX_LINKED = 10
MAX_NAME = 200
# BCP 47 in shape (letters/digits in hyphenated subtags), as long as the column allows.
_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
MAX_TAG = 35


class UnknownTeams(InvalidInput):
    """Some of the slugs name no team of the clip's league; ``details`` lists them."""

    code = "unknown_team"

    def __init__(self, league: str, unknown: Sequence[str]) -> None:
        super().__init__(f"league '{league}' has no team {', '.join(map(repr, unknown))}")
        self.details = {"unknown": list(unknown)}


def checked_names(names: Mapping[str, str]) -> dict[str, str]:
    """``names`` with well-formed language tags and non-empty names of sensible length."""
    if len(names) > MAX_NAMES:
        raise InvalidInput(f"at most {MAX_NAMES} translated names")
    bad = [tag for tag in names if len(tag) > MAX_TAG or not _LANG_TAG.fullmatch(tag)]
    if bad:
        raise InvalidInput(f"not a language tag (BCP 47, e.g. 'zh-Hans'): {', '.join(bad)}")
    cleaned = {tag: " ".join(name.split()) for tag, name in names.items()}
    if any(not name or len(name) > MAX_NAME for name in cleaned.values()):
        raise InvalidInput(f"each name must be 1 to {MAX_NAME} characters")
    return cleaned


def create_team(
    session: Session, principal: Principal, league_slug: str, *, slug: str, name: str,
    names: Mapping[str, str],
) -> Team:  # fmt: skip
    """Add a team to a league (the caller commits). **Who:** the league's partners, admins."""
    league = league_by_slug(session, league_slug)
    require_league(principal, league.id)
    taken = select(Team.id).where(Team.league_id == league.id, Team.slug == slug)
    if session.scalar(taken) is not None:
        raise Conflict(f"team '{slug}' already exists in league '{league_slug}'")
    team = Team(league_id=league.id, slug=slug, name=" ".join(name.split()),
                names=checked_names(names))  # fmt: skip
    session.add(team)
    session.flush()
    return team


def set_asset_teams(
    session: Session, principal: Principal, asset_id: str, slugs: Sequence[str]
) -> list[Team]:
    """Replace the teams a clip shows (the caller commits). **Who:** the league's partners."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("no such asset")
    require_league(principal, asset.league_id)
    wanted = list(dict.fromkeys(slugs))
    if len(wanted) > MAX_LINKED:
        raise InvalidInput(f"at most {MAX_LINKED} teams per clip")
    found = {t.slug: t for t in _league_teams(session, asset.league_id, wanted)}
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        raise UnknownTeams(asset.league.slug, unknown)
    asset.linked_teams = [found[slug] for slug in wanted]
    return asset.linked_teams


def _league_teams(session: Session, league_id: int, slugs: Iterable[str] | None) -> list[Team]:
    query = select(Team).where(Team.league_id == league_id)
    if slugs is not None:
        query = query.where(Team.slug.in_(list(slugs)))
    return list(session.scalars(query))


def _spellings(team: Team) -> set[str]:
    return {s.casefold() for s in (team.slug, team.name, *team.names.values())}


def link_named_teams(session: Session, asset: Asset) -> list[Team]:
    """Link ``asset`` to its league's teams that its delivered team names name (by slug or any
    spelling, ignoring case and spacing); the links already there stay. Returns the new ones."""
    delivered = {" ".join(name.split()).casefold() for name in asset.teams}
    if not delivered:
        return []
    have = {team.id for team in asset.linked_teams}
    added = [
        team
        for team in _league_teams(session, asset.league_id, None)
        if team.id not in have and _spellings(team) & delivered
    ]
    asset.linked_teams.extend(added)
    return added
