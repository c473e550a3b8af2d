"""The scope tree: league → competition → season → match → asset, and who may manage it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.auth import Principal, require_league, require_role
from core.errors import InvalidInput, NotFound
from core.models import Asset, Competition, League, Match, Role, Season
from rights.records import SCOPE_KINDS, ScopeKey, scope_chain

MANAGERS = (Role.RIGHTS_MANAGER,)


@dataclass(frozen=True)
class Scope:
    """A resolved node: its league, its ancestors (root first) and its match, if any."""

    key: ScopeKey
    league_id: int
    ancestors: tuple[ScopeKey, ...]
    match: Match | None


def resolve(session: Session, kind: str, scope_id: str) -> Scope:
    if kind not in SCOPE_KINDS:
        raise InvalidInput(f"scope_type must be one of {', '.join(SCOPE_KINDS)}")
    resolver = _RESOLVERS[kind]
    scope = resolver(session, scope_id)
    if scope is None:
        raise NotFound(f"no {kind} {scope_id!r}")
    return scope


def _league(session: Session, scope_id: str) -> Scope | None:
    league = session.get(League, _int(scope_id))
    return None if league is None else Scope(("league", str(league.id)), league.id, (), None)


def _competition(session: Session, scope_id: str) -> Scope | None:
    comp = session.get(Competition, _int(scope_id))
    if comp is None:
        return None
    return Scope(
        ("competition", str(comp.id)), comp.league_id, (("league", str(comp.league_id)),), None
    )


def _season(session: Session, scope_id: str) -> Scope | None:
    season = session.get(Season, _int(scope_id))
    if season is None:
        return None
    comp = season.competition
    ancestors = (("league", str(comp.league_id)), ("competition", str(comp.id)))
    return Scope(("season", str(season.id)), comp.league_id, ancestors, None)


def _match(session: Session, scope_id: str) -> Scope | None:
    match = session.get(Match, _int(scope_id))
    if match is None:
        return None
    comp = match.season.competition
    ancestors = (
        ("league", str(comp.league_id)),
        ("competition", str(comp.id)),
        ("season", str(match.season_id)),
    )
    return Scope(("match", str(match.id)), comp.league_id, ancestors, match)


def _asset(session: Session, scope_id: str) -> Scope | None:
    asset = session.get(Asset, scope_id)
    if asset is None:
        return None
    match = session.get(Match, asset.match_id) if asset.match_id else None
    chain = scope_chain(asset, match)
    return Scope(chain[-1], asset.league_id, tuple(chain[:-1]), match)


def _int(value: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput(f"invalid scope id {value!r}")
    return int(value)


_RESOLVERS = {
    "league": _league,
    "competition": _competition,
    "season": _season,
    "match": _match,
    "asset": _asset,
}


def authorize(principal: Principal, scope: Scope) -> None:
    """Rights managers (and admins) manage the rights of the leagues they are scoped to."""
    require_role(principal, *MANAGERS)
    require_league(principal, scope.league_id)
