"""Catalog data for the fan API tests: competitions, matches, teams, translated clips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.models import Asset, AssetTranslation, Competition, League, Match, Season, Team
from tests.published import add_asset

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_team(db: Session, league: League, slug: str, name: str, **names: str) -> Team:
    team = Team(league_id=league.id, slug=slug, name=name, names=names)
    db.add(team)
    db.flush()
    return team


def add_match(
    db: Session,
    league: League,
    *,
    home: Team | None = None,
    away: Team | None = None,
    competition: str = "cup",
    kickoff: datetime | None = BASE,
) -> Match:
    """A match of ``competition`` (created on first use) in ``league``."""
    comp = db.query(Competition).filter_by(league_id=league.id, slug=competition).one_or_none()
    if comp is None:
        comp = Competition(league_id=league.id, slug=competition, name=competition.title())
        db.add(comp)
        db.flush()
    season = Season(competition_id=comp.id, name="2026")
    db.add(season)
    db.flush()
    match = Match(
        season_id=season.id,
        home=home.name if home else "Home side",
        away=away.name if away else "Away side",
        home_team_id=home.id if home else None,
        away_team_id=away.id if away else None,
        kickoff=kickoff,
    )
    db.add(match)
    db.flush()
    return match


def clip(
    db: Session,
    league: League,
    title: str,
    *,
    minutes: int = 0,
    match: Match | None = None,
    teams: list[Team] | None = None,
    tags: list[str] | None = None,
    description: str = "",
    lang: str = "en",
    views: int = 0,
    translations: dict[str, str] | None = None,
) -> Asset:
    """A ready clip published ``minutes`` after BASE, with what the catalog shows."""
    asset = add_asset(
        db,
        league,
        title=title,
        ready_at=BASE + timedelta(minutes=minutes),
        match_id=match.id if match else None,
    )
    asset.description = description
    asset.lang = lang
    asset.tags = tags or []
    asset.view_count = views
    asset.linked_teams = list(teams or [])
    for tag, text in (translations or {}).items():
        asset.translations.append(AssetTranslation(lang=tag, title=text, description=""))
    db.commit()
    return asset
