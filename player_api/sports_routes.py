"""Fan endpoints for leagues, teams, matches and the schedule (all public).

Names are localised (``?lang=`` wins, else ``Accept-Language``, else English). Lists that hold
no viewer-dependent data are ``public, max-age=30``; those that carry the viewer's watchable
highlights (which depend on their region) are ``private`` with the same age, so a shared cache
never hands one region's list to another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.deps import SessionDep
from core.errors import NotFound
from core.models import League, Team
from core.settings import Settings
from player_api import catalog, highlights, sports
from player_api.access import RightsContext, RightsDep, ViewerDep
from player_api.i18n import DEFAULT_LANG, lookup, pick, preferences
from player_api.routes import links_for
from player_api.schemas import Highlight
from player_api.sports import MatchFilter, MatchRow, MatchStatus
from rights.model import Viewer

sports_router = APIRouter(prefix="/v1", tags=["leagues and matches"])

LATEST = 6
TEAM_PAGE_MATCHES = 5
MATCH_HIGHLIGHTS = 24
# Team.name is the league's own spelling, tagged with no language: it is the last resort.
_OWN_NAME = "und"

LangQuery = Annotated[
    str | None, Query(max_length=35, description="BCP 47 tag; wins over the header")
]
AcceptLanguage = Annotated[str | None, Header(alias="accept-language", max_length=500)]
SlugPath = Annotated[str, Path(max_length=64)]


class Named(BaseModel):
    slug: str
    name: str


class TeamRef(BaseModel):
    slug: str | None
    name: str


class LeagueOut(Named):
    competitions: list[Named]


class LeagueList(BaseModel):
    items: list[LeagueOut]
    lang: str


_MATCH_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "league": {"slug": "demo", "name": "Courtside Demo League"},
    "competition": {"slug": "premier-division", "name": "Premier Division"},
    "home": {"slug": "river-city-rovers", "name": "Älvstadens Vandrare"},
    "away": {"slug": None, "name": "Guests FC"},
    "kickoff": "2026-05-01T19:00:00Z",
    "status": "live",
}


class MatchOut(BaseModel):
    """A match; a side with no team row in the league has ``slug`` null and its name as given."""

    model_config = {"json_schema_extra": {"examples": [_MATCH_EXAMPLE]}}

    id: int
    league: Named
    competition: Named
    home: TeamRef
    away: TeamRef
    kickoff: datetime | None
    status: MatchStatus


class LeagueDetail(LeagueOut):
    teams: list[Named]
    latest: list[Highlight]
    lang: str


class TeamList(BaseModel):
    items: list[Named]
    lang: str


class TeamDetail(Named):
    league: Named
    matches: list[MatchOut]
    latest: list[Highlight]
    lang: str


class MatchList(BaseModel):
    items: list[MatchOut]
    lang: str


class MatchDetail(MatchOut):
    highlights: list[Highlight]
    lang: str


class Schedule(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [{"live": [_MATCH_EXAMPLE], "upcoming": [], "lang": "sv"}]
        }
    }

    live: list[MatchOut]
    upcoming: list[MatchOut]
    lang: str


# --- language and headers ---------------------------------------------------------------------


def team_name(team: Team, wanted: list[str]) -> tuple[str, str | None]:
    """The team's name in the first wanted language it has, and that language; else the
    league's own spelling (language None)."""
    available: Mapping[str, str] = {_OWN_NAME: team.name, **team.names}
    tag = pick(list(available), wanted, _OWN_NAME)
    return available[tag], (None if tag == _OWN_NAME else tag)


@dataclass
class Localiser:
    """Names in the viewer's languages, remembering which languages it served."""

    wanted: list[str]
    served: set[str] = field(default_factory=set)

    def team(self, team: Team) -> str:
        name, tag = team_name(team, self.wanted)
        if tag is not None:
            self.served.add(tag)
        return name

    def lang(self) -> str:
        """The served language that best fits the viewer (English when only the leagues' own
        spellings were served)."""
        return lookup(sorted(self.served), self.wanted) or DEFAULT_LANG


def _localiser(lang: str | None, accept_language: str | None) -> Localiser:
    return Localiser(preferences(lang, accept_language))


def _headers(response: Response, names: Localiser, *, per_viewer: bool = False) -> str:
    served = names.lang()
    scope = "private" if per_viewer else "public"
    response.headers["Cache-Control"] = f"{scope}, max-age=30"
    response.headers["Content-Language"] = served
    response.headers["Vary"] = "Accept-Language"
    return served


# --- shaping ----------------------------------------------------------------------------------


def _team_ref(team: Team | None, fallback: str, names: Localiser) -> TeamRef:
    if team is None:
        return TeamRef(slug=None, name=fallback)
    return TeamRef(slug=team.slug, name=names.team(team))


def _matches_out(session: Session, rows: list[MatchRow], names: Localiser) -> list[MatchOut]:
    now = datetime.now(UTC)
    teams = sports.teams_by_id(
        session, [i for r in rows for i in (r.match.home_team_id, r.match.away_team_id)]
    )
    return [_match_out(row, teams, names, now) for row in rows]


def _match_out(
    row: MatchRow, teams: Mapping[int, Team], names: Localiser, now: datetime
) -> MatchOut:
    match, competition = row.match, row.match.season.competition
    return MatchOut(
        id=match.id,
        league=Named(slug=row.league.slug, name=row.league.name),
        competition=Named(slug=competition.slug, name=competition.name),
        home=_team_ref(teams.get(match.home_team_id or 0), match.home, names),
        away=_team_ref(teams.get(match.away_team_id or 0), match.away, names),
        kickoff=match.kickoff,
        status=sports.match_status(match.kickoff, match.final_whistle, now),
    )


def _league_out(league: League, competitions: list[Named]) -> LeagueOut:
    return LeagueOut(slug=league.slug, name=league.name, competitions=competitions)


def _competitions(session: Session, league: League) -> list[Named]:
    found = sports.competitions_by_league(session, [league.id]).get(league.id, [])
    return [Named(slug=c.slug, name=c.name) for c in found]


# --- highlights (the catalog's listing and rights check) --------------------------------------


def _latest(
    request: Request,
    session: Session,
    rights: RightsContext,
    viewer: Viewer,
    names: Localiser,
    filters: catalog.Filters,
    limit: int,
) -> list[Highlight]:
    """The newest highlights ``filters`` admit that the viewer may watch now, presented as
    the catalog presents them."""
    now = datetime.now(UTC)
    assets, _cursor = catalog.list_watchable(
        session,
        lambda batch: catalog.allowed_ids(rights, session, batch, viewer, now),
        filters,
        limit=limit,
        cursor=None,
    )
    return highlights.present(session, assets, names.wanted, _links(request), now)


def _links(request: Request) -> highlights.Links:
    settings: Settings = request.app.state.settings
    return links_for(request, settings)


# --- routes -----------------------------------------------------------------------------------


@sports_router.get("/leagues")
def list_leagues(
    response: Response, session: SessionDep, lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> LeagueList:  # fmt: skip
    """Every league with its competitions. **Who:** anyone."""
    names = _localiser(lang, accept_language)
    leagues = sports.list_leagues(session)
    competitions = sports.competitions_by_league(session, [lg.id for lg in leagues])
    items = [
        _league_out(lg, [Named(slug=c.slug, name=c.name) for c in competitions.get(lg.id, [])])
        for lg in leagues
    ]
    return LeagueList(items=items, lang=_headers(response, names))


@sports_router.get("/leagues/{slug}")
def get_league(
    request: Request, response: Response, session: SessionDep, rights: RightsDep,
    viewer: ViewerDep, slug: SlugPath, lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> LeagueDetail:  # fmt: skip
    """A league, its competitions and teams, and its newest highlights the viewer may watch.
    **Who:** anyone."""
    names = _localiser(lang, accept_language)
    league = sports.league_by_slug(session, slug)
    teams = [Named(slug=t.slug, name=names.team(t)) for t in sports.teams_of(session, league.id)]
    latest = _latest(request, session, rights, viewer, names, catalog.Filters(league=slug), LATEST)
    return LeagueDetail(
        **_league_out(league, _competitions(session, league)).model_dump(),
        teams=teams,
        latest=latest,
        lang=_headers(response, names, per_viewer=True),
    )


@sports_router.get("/leagues/{slug}/teams")
def list_teams(
    response: Response, session: SessionDep, slug: SlugPath, lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> TeamList:  # fmt: skip
    """A league's teams, names in the viewer's language. **Who:** anyone."""
    names = _localiser(lang, accept_language)
    league = sports.league_by_slug(session, slug)
    items = [Named(slug=t.slug, name=names.team(t)) for t in sports.teams_of(session, league.id)]
    return TeamList(items=items, lang=_headers(response, names))


@sports_router.get("/leagues/{slug}/teams/{team}")
def get_team(
    request: Request, response: Response, session: SessionDep, rights: RightsDep,
    viewer: ViewerDep, slug: SlugPath, team: SlugPath, lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> TeamDetail:  # fmt: skip
    """A team: its live, next and last matches, and its newest highlights the viewer may
    watch. **Who:** anyone."""
    names = _localiser(lang, accept_language)
    league = sports.league_by_slug(session, slug)
    row = sports.team_by_slug(session, league, team)
    where = MatchFilter(league_id=league.id, team_ids=[row.id])
    matches = sports.around(session, where, datetime.now(UTC), TEAM_PAGE_MATCHES)
    shown = catalog.Filters(league=league.slug, team=row.slug)
    latest = _latest(request, session, rights, viewer, names, shown, LATEST)
    return TeamDetail(
        slug=row.slug,
        name=names.team(row),
        league=Named(slug=league.slug, name=league.name),
        matches=_matches_out(session, matches, names),
        latest=latest,
        lang=_headers(response, names, per_viewer=True),
    )


def _team_ids(session: Session, league: League | None, team: str) -> list[int]:
    if league is not None:
        return [sports.team_by_slug(session, league, team).id]
    ids = sports.team_ids_by_slug(session, team)
    if not ids:
        raise NotFound(f"no team '{team}'")
    return ids


@sports_router.get("/matches")
def list_matches(
    response: Response,
    session: SessionDep,
    league: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    status: MatchStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=sports.MAX_MATCHES)] = 20,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> MatchList:
    """Matches, narrowed by league, team (a slug; within the league when one is given) and
    status (``upcoming``, ``live``, ``finished`` by the server's clock). Upcoming and live
    ones soonest first, otherwise most recent first. **Who:** anyone."""
    names = _localiser(lang, accept_language)
    found = sports.league_by_slug(session, league) if league else None
    where = MatchFilter(
        league_id=found.id if found else None,
        team_ids=_team_ids(session, found, team) if team else None,
        status=status,
    )
    rows = sports.list_matches(session, where, datetime.now(UTC), limit)
    return MatchList(items=_matches_out(session, rows, names), lang=_headers(response, names))


@sports_router.get("/matches/{match_id}")
def get_match(
    request: Request, response: Response, session: SessionDep, rights: RightsDep,
    viewer: ViewerDep, match_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    lang: LangQuery = None, accept_language: AcceptLanguage = None,
) -> MatchDetail:  # fmt: skip
    """A match and its highlights the viewer may watch, newest first. **Who:** anyone."""
    names = _localiser(lang, accept_language)
    row = sports.match_by_id(session, match_id)
    of_match = catalog.Filters(league=row.league.slug, match=match_id)
    clips = _latest(request, session, rights, viewer, names, of_match, MATCH_HIGHLIGHTS)
    (out,) = _matches_out(session, [row], names)
    return MatchDetail(
        **out.model_dump(), highlights=clips, lang=_headers(response, names, per_viewer=True)
    )


@sports_router.get("/schedule")
def get_schedule(
    response: Response, session: SessionDep, lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> Schedule:  # fmt: skip
    """Live matches, and matches kicking off in the next 7 days, soonest first.
    **Who:** anyone."""
    names = _localiser(lang, accept_language)
    live, upcoming = sports.schedule(session, datetime.now(UTC))
    return Schedule(
        live=_matches_out(session, live, names),
        upcoming=_matches_out(session, upcoming, names),
        lang=_headers(response, names),
    )
