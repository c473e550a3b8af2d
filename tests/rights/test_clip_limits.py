"""Clip limits of highlight licences, checked at publication against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.models import Asset, AssetStatus, League, Match, RightsGrant
from rights.clip_limits import ClipLimitExceeded, ClipTooEarly, check_clip
from tests.rights.conftest import scope_tree

NOW = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def match(db: Session, league: League) -> Match:
    fixture = scope_tree(db, league, kickoff=NOW - timedelta(hours=3))
    fixture.broadcast_end = NOW - timedelta(minutes=10)
    db.flush()
    return fixture


def _limits(db: Session, league: League, **limits: int) -> None:
    db.add(RightsGrant(scope_type="league", scope_id=str(league.id), license_type="news_access",
                       status="approved", worldwide=True, clip_limits=limits))  # fmt: skip
    db.flush()


def _clip(db: Session, league: League, match: Match, seconds: float, ready: bool) -> Asset:
    status = AssetStatus.READY if ready else AssetStatus.PROCESSING
    asset = Asset(league=league, title="c", match_id=match.id, status=status, duration_s=seconds)
    db.add(asset)
    db.flush()
    return asset


def test_a_clip_within_every_limit_passes(db: Session, league: League, match: Match) -> None:
    _limits(db, league, max_clip_s=60, max_total_s_per_match=90, min_delay_after_live_s=300)
    clip = _clip(db, league, match, 45, ready=False)
    check_clip(db, clip.id, 45, NOW)  # raises nothing


def test_a_clip_longer_than_allowed_is_refused(db: Session, league: League, match: Match) -> None:
    _limits(db, league, max_clip_s=60)
    clip = _clip(db, league, match, 75, ready=False)
    with pytest.raises(ClipLimitExceeded, match="at most 60 s"):
        check_clip(db, clip.id, 75, NOW)


def test_the_match_total_counts_published_clips(db: Session, league: League, match: Match) -> None:
    _limits(db, league, max_total_s_per_match=90)
    _clip(db, league, match, 60, ready=True)
    _clip(db, league, match, 500, ready=False)  # not published: does not count
    clip = _clip(db, league, match, 40, ready=False)
    with pytest.raises(ClipLimitExceeded, match="90 s of clips per match"):
        check_clip(db, clip.id, 40, NOW)
    check_clip(db, clip.id, 30, NOW)  # 60 + 30 fits exactly


def test_clips_wait_for_the_delay_after_the_broadcast(
    db: Session, league: League, match: Match
) -> None:
    _limits(db, league, min_delay_after_live_s=30 * 60)
    clip = _clip(db, league, match, 20, ready=False)
    with pytest.raises(ClipTooEarly, match="20:20 UTC"):
        check_clip(db, clip.id, 20, NOW)
    check_clip(db, clip.id, 20, NOW + timedelta(minutes=21))
    match.broadcast_end = None  # still on air
    db.flush()
    with pytest.raises(ClipTooEarly, match="has not ended"):
        check_clip(db, clip.id, 20, NOW + timedelta(days=1))


def test_limits_of_revoked_grants_and_other_leagues_do_not_apply(
    db: Session, league: League, other_league: League, match: Match
) -> None:
    tight = {"max_clip_s": 5}
    for owner, status in ((league, "revoked"), (other_league, "approved")):
        db.add(RightsGrant(scope_type="league", scope_id=str(owner.id), license_type="highlights",
                           status=status, worldwide=True, clip_limits=tight))  # fmt: skip
    db.flush()
    clip = _clip(db, league, match, 30, ready=False)
    check_clip(db, clip.id, 30, NOW)
