"""Clip limits of highlight and news-access licences, checked when a clip is published.

News-access style rules (e.g. at most 60 s a clip, 90 s a match, nothing until 30 minutes
after the broadcast) bind every clip of the league, so a clip that breaks one is not
published: the partner gets the rule in words and can re-cut and retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import PublishRefused
from core.models import Asset, AssetStatus, Match, RightsGrant
from rights.model import GrantStatus, LicenseType
from rights.records import scope_chain

CLIP_TYPES = (LicenseType.HIGHLIGHTS, LicenseType.NEWS_ACCESS)


class ClipLimitExceeded(PublishRefused):
    code = "clip_limit_exceeded"


class ClipTooEarly(PublishRefused):
    code = "clip_too_early"


@dataclass(frozen=True)
class ClipFacts:
    duration_s: float
    match: Match | None
    match_published_s: float  # seconds of this match's other clips already published


def _limit_grants(session: Session, asset: Asset, match: Match | None) -> list[RightsGrant]:
    chain = set(scope_chain(asset, match))
    rows = session.scalars(
        select(RightsGrant).where(
            RightsGrant.status == GrantStatus.APPROVED,
            RightsGrant.license_type.in_([t.value for t in CLIP_TYPES]),
            RightsGrant.scope_id.in_([scope_id for _kind, scope_id in chain]),
        )
    )
    return [r for r in rows if (r.scope_type, r.scope_id) in chain and r.clip_limits]


def _published_seconds(session: Session, asset: Asset) -> float:
    if asset.match_id is None:
        return 0.0
    total = session.scalar(
        select(func.coalesce(func.sum(Asset.duration_s), 0.0)).where(
            Asset.match_id == asset.match_id,
            Asset.status == AssetStatus.READY,
            Asset.id != asset.id,
        )
    )
    return float(total or 0.0)


def check_clip(session: Session, asset_id: str, duration_s: float, now: datetime) -> None:
    """Raise ClipLimitExceeded / ClipTooEarly if publishing this clip now breaks a limit."""
    asset = session.get_one(Asset, asset_id)
    match = session.get(Match, asset.match_id) if asset.match_id else None
    facts = ClipFacts(duration_s, match, _published_seconds(session, asset))
    for grant in _limit_grants(session, asset, match):
        _check_grant(grant.id, grant.clip_limits, facts, now)


def _check_grant(grant_id: int, limits: dict[str, int], facts: ClipFacts, now: datetime) -> None:
    longest = limits.get("max_clip_s")
    if longest and facts.duration_s > longest:
        raise ClipLimitExceeded(
            f"This clip is {facts.duration_s:.0f} s long; licence #{grant_id} allows clips of "
            f"at most {longest} s. Cut it shorter and upload it again."
        )
    total = limits.get("max_total_s_per_match")
    if total and facts.match is not None and facts.match_published_s + facts.duration_s > total:
        raise ClipLimitExceeded(
            f"Licence #{grant_id} allows {total} s of clips per match; "
            f"{facts.match_published_s:.0f} s are already published and this clip adds "
            f"{facts.duration_s:.0f} s."
        )
    _check_delay(grant_id, limits.get("min_delay_after_live_s"), facts.match, now)


def _check_delay(grant_id: int, delay_s: int | None, match: Match | None, now: datetime) -> None:
    if delay_s is None or match is None:
        return
    if match.broadcast_end is None:
        raise ClipTooEarly(
            f"Licence #{grant_id} allows clips of this match only {delay_s // 60} minutes "
            "after the live broadcast ends, and it has not ended yet. Retry after it ends."
        )
    earliest = match.broadcast_end + timedelta(seconds=delay_s)
    if now < earliest:
        raise ClipTooEarly(
            f"Licence #{grant_id} allows clips of this match from "
            f"{earliest:%Y-%m-%d %H:%M} UTC. Retry then."
        )
