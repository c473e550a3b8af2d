"""Leagues, teams and matches as fans see them: queries, and a match's status from the clock.

The status is computed, never stored: ``upcoming`` before kickoff, ``live`` from kickoff until
the final whistle (or :data:`LIVE_WITHOUT_WHISTLE` after kickoff when no whistle is recorded),
``finished`` after. The SQL filters below express the same rule as :func:`match_status`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import Competition, League, Match, Season, Team

LIVE_WITHOUT_WHISTLE = timedelta(hours=2)
SCHEDULE_AHEAD = timedelta(days=7)
MAX_LEAGUES = 200
MAX_TEAMS = 500
MAX_MATCHES = 100


class MatchStatus(enum.StrEnum):
    UPCOMING = "upcoming"
    LIVE = "live"
    FINISHED = "finished"


def match_status(
    kickoff: datetime | None, final_whistle: datetime | None, now: datetime
) -> MatchStatus:
    """Where a match stands at ``now`` (the server's clock). No kickoff yet: upcoming."""
    if kickoff is None or now < kickoff:
        return MatchStatus.UPCOMING
    end = final_whistle or kickoff + LIVE_WITHOUT_WHISTLE
    return MatchStatus.LIVE if now < end else MatchStatus.FINISHED


def _status_filter(status: MatchStatus, now: datetime) -> ColumnElement[bool]:
    """:func:`match_status` as a WHERE clause (``now`` is bound, never the database's clock)."""
    # Each branch tests for NULL itself: a bare comparison with NULL is NULL, and NOT NULL is
    # NULL too, which would drop the live matches that have no whistle yet.
    ended = or_(
        and_(Match.final_whistle.is_not(None), Match.final_whistle <= now),
        and_(Match.final_whistle.is_(None), Match.kickoff <= now - LIVE_WITHOUT_WHISTLE),
    )
    if status is MatchStatus.UPCOMING:
        return or_(Match.kickoff.is_(None), Match.kickoff > now)
    if status is MatchStatus.LIVE:
        return and_(Match.kickoff <= now, ~ended)
    return and_(Match.kickoff <= now, ended)


# --- leagues and teams ------------------------------------------------------------------------


def list_leagues(session: Session) -> list[League]:
    return list(session.scalars(select(League).order_by(League.name).limit(MAX_LEAGUES)))


def league_by_slug(session: Session, slug: str) -> League:
    league = session.scalar(select(League).where(League.slug == slug))
    if league is None:
        raise NotFound(f"no league '{slug}'")
    return league


def competitions_by_league(
    session: Session, league_ids: Iterable[int]
) -> dict[int, list[Competition]]:
    """Each league's competitions, by name."""
    found: dict[int, list[Competition]] = {}
    query = select(Competition).where(Competition.league_id.in_(list(league_ids)))
    for competition in session.scalars(query.order_by(Competition.name)):
        found.setdefault(competition.league_id, []).append(competition)
    return found


def teams_of(session: Session, league_id: int) -> list[Team]:
    query = select(Team).where(Team.league_id == league_id).order_by(Team.name).limit(MAX_TEAMS)
    return list(session.scalars(query))


def team_by_slug(session: Session, league: League, slug: str) -> Team:
    team = session.scalar(select(Team).where(Team.league_id == league.id, Team.slug == slug))
    if team is None:
        raise NotFound(f"no team '{slug}' in league '{league.slug}'")
    return team


def team_ids_by_slug(session: Session, slug: str) -> list[int]:
    """Every league's team called ``slug`` (slugs are unique within a league only)."""
    return list(session.scalars(select(Team.id).where(Team.slug == slug).limit(MAX_TEAMS)))


def teams_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Team]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {team.id: team for team in session.scalars(select(Team).where(Team.id.in_(wanted)))}


# --- matches ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchRow:
    """A match with what a listing shows beside it (its league; competition via the season)."""

    match: Match
    league: League


@dataclass(frozen=True)
class MatchFilter:
    """What ``GET /v1/matches`` narrows by; team ids are resolved from slugs by the caller."""

    league_id: int | None = None
    team_ids: Sequence[int] | None = None
    status: MatchStatus | None = None


def _joined() -> Select[Match, League]:
    return (
        select(Match, League)
        .join(Season, Match.season_id == Season.id)
        .join(Competition, Season.competition_id == Competition.id)
        .join(League, Competition.league_id == League.id)
    )


def _matches_query(where: MatchFilter, now: datetime) -> Select[Match, League]:
    query = _joined()
    if where.league_id is not None:
        query = query.where(League.id == where.league_id)
    if where.team_ids is not None:
        ids = list(where.team_ids)
        query = query.where(or_(Match.home_team_id.in_(ids), Match.away_team_id.in_(ids)))
    if where.status is not None:
        query = query.where(_status_filter(where.status, now))
    return query


def _ordered(query: Select[Match, League], status: MatchStatus | None) -> Select[Match, League]:
    # Upcoming and live: soonest first; finished or mixed: most recent first.
    if status in (MatchStatus.UPCOMING, MatchStatus.LIVE):
        return query.order_by(Match.kickoff.asc().nulls_last(), Match.id)
    return query.order_by(Match.kickoff.desc().nulls_first(), Match.id.desc())


def list_matches(session: Session, where: MatchFilter, now: datetime, limit: int) -> list[MatchRow]:
    """Up to ``limit`` matches ``where`` admits, in the order that suits their status."""
    query = _ordered(_matches_query(where, now), where.status).limit(min(limit, MAX_MATCHES))
    return [MatchRow(match, league) for match, league in session.execute(query)]


def match_by_id(session: Session, match_id: int) -> MatchRow:
    row = session.execute(_joined().where(Match.id == match_id)).first()
    if row is None:
        raise NotFound(f"no match {match_id}")
    return MatchRow(row[0], row[1])


def around(session: Session, where: MatchFilter, now: datetime, each: int) -> list[MatchRow]:
    """Live matches, then up to ``each`` upcoming (soonest first) and ``each`` finished (latest
    first): what a team page shows."""
    rows: list[MatchRow] = []
    for status in (MatchStatus.LIVE, MatchStatus.UPCOMING, MatchStatus.FINISHED):
        narrowed = MatchFilter(where.league_id, where.team_ids, status)
        rows += list_matches(session, narrowed, now, each)
    return rows


def schedule(
    session: Session, now: datetime, limit: int = MAX_MATCHES
) -> tuple[list[MatchRow], list[MatchRow]]:
    """Live matches, and matches kicking off within :data:`SCHEDULE_AHEAD`, soonest first."""
    live = list_matches(session, MatchFilter(status=MatchStatus.LIVE), now, limit)
    soon = _ordered(
        _joined().where(Match.kickoff > now, Match.kickoff <= now + SCHEDULE_AHEAD),
        MatchStatus.UPCOMING,
    ).limit(limit)
    upcoming = [MatchRow(m, lg) for m, lg in session.execute(soon)]
    return live, upcoming
