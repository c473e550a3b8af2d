"""Highlights as fans see them: localised, with league, competition, match and teams, and the
related clips of the detail page.

A page of assets is presented with a fixed number of SQL statements whatever its size: the
translations and linked teams are selectin-loaded with the assets, and the page's matches and
their teams are fetched in one statement each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import PLAYABLE_STATES, Asset, Match, Team, asset_teams, on_air
from player_api import catalog, i18n, sports
from player_api.access import RightsContext, decide, require
from player_api.schemas import Highlight, HighlightDetail, MatchRef, Ref
from rights.model import Reason, Viewer

_Row = TypeVar("_Row", Match, Team)
MAX_RELATED = 8
# A match with no final whistle recorded is taken as over this long after kickoff.


class HighlightNotFound(NotFound):
    code = "highlight_not_found"


@dataclass(frozen=True)
class Links:
    """Absolute URLs for fans, by asset id (built by the route from the request)."""

    playback: Callable[[str], str]
    poster: Callable[[str], str]
    storyboard: Callable[[str], str]


@dataclass(frozen=True)
class Presenter:
    """Everything needed to present one page: the viewer's languages, the page's matches
    and teams, the links, and the server's clock."""

    wanted: Sequence[str]
    matches: dict[int, Match]
    teams: dict[int, Team]
    links: Links
    now: datetime

    def highlight(self, asset: Asset) -> Highlight:
        lang, title, description = localised(asset, self.wanted)
        match = self.matches.get(asset.match_id) if asset.match_id is not None else None
        return Highlight(
            id=asset.id,
            title=title,
            description=description,
            lang=lang,
            league=Ref(slug=asset.league.slug, name=asset.league.name),
            competition=_competition_of(match),
            teams=[self.team_ref(t) for t in self._teams_of(asset, match)],
            match=self.match_ref(match) if match is not None else None,
            tags=list(asset.tags or []),
            duration_s=asset.duration_s,
            poster_url=self.links.poster(asset.id) if asset.poster_key else None,
            storyboard_url=self.links.storyboard(asset.id) if asset.storyboard_key else None,
            published_at=asset.published_at or asset.playable_at or asset.created_at,
            is_live=on_air(asset),
            views=asset.view_count or 0,
            playback_url=self.links.playback(asset.id),
        )

    def team_ref(self, team: Team) -> Ref:
        return Ref(slug=team.slug, name=team_name(team, self.wanted))

    def match_ref(self, match: Match) -> MatchRef:
        return MatchRef(
            id=match.id,
            home=self._side(match.home_team_id, match.home),
            away=self._side(match.away_team_id, match.away),
            kickoff=match.kickoff,
            status=sports.match_status(match.kickoff, match.final_whistle, self.now).value,
        )

    def _side(self, team_id: int | None, fallback: str) -> str:
        team = self.teams.get(team_id) if team_id is not None else None
        return team_name(team, self.wanted) if team is not None else fallback

    def _teams_of(self, asset: Asset, match: Match | None) -> list[Team]:
        """The clip's linked teams, then its match's teams not already among them."""
        found = list(asset.linked_teams)
        sides = (match.home_team_id, match.away_team_id) if match is not None else ()
        for team_id in sides:
            team = self.teams.get(team_id) if team_id is not None else None
            if team is not None and all(t.id != team.id for t in found):
                found.append(team)
        return found


def localised(asset: Asset, wanted: Sequence[str]) -> tuple[str, str, str]:
    """(lang, title, description) of ``asset`` in the best language for ``wanted``."""
    texts = {asset.lang: (asset.title, asset.description)}
    for translation in asset.translations:
        texts.setdefault(translation.lang, (translation.title, translation.description))
    lang = i18n.pick(list(texts), wanted, asset.lang)
    title, description = texts[lang]
    return lang, title, description


def team_name(team: Team, wanted: Sequence[str]) -> str:
    """The team's name in the viewer's language when ``names`` has it, else its own name."""
    names = team.names or {}
    found = i18n.lookup(list(names), wanted)
    return names[found] if found is not None else team.name


def _competition_of(match: Match | None) -> Ref | None:
    if match is None:
        return None
    competition = match.season.competition
    return Ref(slug=competition.slug, name=competition.name)


def presenter_for(
    session: Session, assets: Sequence[Asset], wanted: Sequence[str], links: Links, now: datetime
) -> Presenter:
    """A presenter for ``assets`` with their matches and those matches' teams loaded."""
    match_ids = {a.match_id for a in assets if a.match_id is not None}
    matches = _by_id(session, Match, match_ids)
    team_ids = {t for m in matches.values() for t in (m.home_team_id, m.away_team_id) if t}
    teams = _by_id(session, Team, team_ids)
    return Presenter(wanted=wanted, matches=matches, teams=teams, links=links, now=now)


def _by_id(session: Session, model: type[_Row], ids: set[int]) -> dict[int, _Row]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def present(
    session: Session, assets: Sequence[Asset], wanted: Sequence[str], links: Links, now: datetime
) -> list[Highlight]:
    """``assets`` as Highlights, in order."""
    presenter = presenter_for(session, assets, wanted, links, now)
    return [presenter.highlight(asset) for asset in assets]


# --- detail -----------------------------------------------------------------------------------


def watchable_asset(
    session: Session, rights: RightsContext, asset_id: str, viewer: Viewer, now: datetime
) -> Asset:
    """The playable asset ``asset_id`` if ``viewer`` may watch it now. Not found (404) when it
    does not exist, is not playable or is licensed nowhere; NotAvailable (451, with the
    reason and any date it becomes available) when it is licensed, but not here or now."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status not in PLAYABLE_STATES or asset.playable_at is None:
        raise HighlightNotFound("no such highlight")
    decision = decide(rights.cache.rights_for(session, [asset]).get(asset.id), viewer, now)
    if decision.reason is Reason.NO_GRANT:
        raise HighlightNotFound("no such highlight")
    require(decision)
    return asset


def related(
    session: Session, asset: Asset, allowed: Callable[[list[Asset]], set[str]]
) -> list[Asset]:
    """Up to 8 watchable clips like ``asset``: same match first, then a team in common,
    then the same league; newest first within each."""
    found: list[Asset] = []
    for condition in _related_tiers(session, asset):
        if len(found) == MAX_RELATED:
            break
        taken = {asset.id, *(a.id for a in found)}
        query = (
            catalog.playable()
            .where(condition, Asset.id.not_in(taken))
            .order_by(Asset.playable_at.desc(), Asset.id.desc())
            .limit(3 * MAX_RELATED)
        )
        candidates = list(session.scalars(query))
        admitted = allowed(candidates)
        found += [a for a in candidates if a.id in admitted][: MAX_RELATED - len(found)]
    return found


def _related_tiers(session: Session, asset: Asset) -> list[ColumnElement[bool]]:
    tiers: list[ColumnElement[bool]] = []
    if asset.match_id is not None:
        tiers.append(Asset.match_id == asset.match_id)
    team_ids = {t.id for t in asset.linked_teams} | _match_team_ids(session, asset.match_id)
    if team_ids:
        linked = select(asset_teams.c.asset_id).where(asset_teams.c.team_id.in_(team_ids))
        played = select(Match.id).where(
            Match.home_team_id.in_(team_ids) | Match.away_team_id.in_(team_ids)
        )
        tiers.append(Asset.id.in_(linked) | Asset.match_id.in_(played))
    tiers.append(Asset.league_id == asset.league_id)
    return tiers


def _match_team_ids(session: Session, match_id: int | None) -> set[int]:
    match = session.get(Match, match_id) if match_id is not None else None
    if match is None:
        return set()
    return {t for t in (match.home_team_id, match.away_team_id) if t is not None}


def detail(
    session: Session,
    asset: Asset,
    allowed: Callable[[list[Asset]], set[str]],
    wanted: Sequence[str],
    links: Links,
    now: datetime,
) -> HighlightDetail:
    """``asset`` as a Highlight with its related clips."""
    others = related(session, asset, allowed)
    presenter = presenter_for(session, [asset, *others], wanted, links, now)
    main = presenter.highlight(asset)
    return HighlightDetail(**main.model_dump(), related=[presenter.highlight(a) for a in others])
