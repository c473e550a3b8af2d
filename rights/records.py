"""Between the rights tables and the rights domain values: conversion and loading."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from ipaddress import ip_network
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import LIVE_ORIGIN, Asset, Match, RightsBlackout, RightsGrant, on_air
from rights.model import (
    Blackout,
    BlackoutAction,
    EventAnchor,
    EventTimes,
    Grant,
    GrantStatus,
    ItemRights,
    LicenseType,
    ScopeLevel,
    VpnPolicy,
    Window,
    WindowEdge,
)

SCOPE_KINDS = ("league", "competition", "season", "match", "asset")
ScopeKey = tuple[str, str]
Row = TypeVar("Row", RightsGrant, RightsBlackout)


def edge_from_json(data: Mapping[str, object] | None) -> WindowEdge | None:
    if not data:
        return None
    at = data.get("at")
    event = data.get("event")
    return WindowEdge(
        at=datetime.fromisoformat(str(at)) if at else None,
        event=EventAnchor(str(event)) if event else None,
        lag_s=int(str(data.get("lag_s", 0))),
    )


def edge_to_json(edge: WindowEdge | None) -> dict[str, object] | None:
    if edge is None:
        return None
    if edge.at is not None:
        return {"at": edge.at.isoformat()}
    return {"event": str(edge.event), "lag_s": edge.lag_s}


def window_from_json(data: Mapping[str, object]) -> Window:
    start, end = data.get("start"), data.get("end")
    return Window(
        start=edge_from_json(start if isinstance(start, Mapping) else None),
        end=edge_from_json(end if isinstance(end, Mapping) else None),
    )


def window_to_json(window: Window) -> dict[str, object]:
    return {"start": edge_to_json(window.start), "end": edge_to_json(window.end)}


def to_grant(row: RightsGrant) -> Grant:
    return Grant(
        id=row.id,
        license_type=LicenseType(row.license_type),
        territories=None if row.worldwide else frozenset(row.territories),
        excluded=frozenset(row.excluded),
        window=window_from_json(row.window),
        platforms=frozenset(row.platforms) if row.platforms is not None else None,
        vpn_policy=VpnPolicy(row.vpn_policy),
        status=GrantStatus(row.status),
        exclusive=row.exclusive,
    )


def to_blackout(row: RightsBlackout) -> Blackout:
    return Blackout(
        id=row.id,
        countries=frozenset(row.countries),
        subdivisions=frozenset(row.subdivisions),
        networks=tuple(ip_network(n, strict=False) for n in row.networks),
        platforms=frozenset(row.platforms),
        action=BlackoutAction(row.action),
        alternate_item=row.alternate_item,
        start=row.starts_at,
        end=row.ends_at,
        priority=row.priority,
    )


def scope_chain(asset: Asset, match: Match | None) -> list[ScopeKey]:
    """Root first: league → competition → season → match → asset (levels that exist)."""
    chain: list[ScopeKey] = [("league", str(asset.league_id))]
    if match is not None:
        chain += [
            ("competition", str(match.season.competition_id)),
            ("season", str(match.season_id)),
            ("match", str(match.id)),
        ]
    return [*chain, ("asset", asset.id)]


def events_of(match: Match | None) -> EventTimes:
    if match is None:
        return EventTimes()
    return EventTimes(match.kickoff, match.final_whistle, match.broadcast_end)


def _rows_for(
    session: Session, model: type[Row], keys: Iterable[ScopeKey]
) -> dict[ScopeKey, list[Row]]:
    wanted = set(keys)
    ids = {scope_id for _kind, scope_id in wanted}
    found: dict[ScopeKey, list[Row]] = {}
    for row in session.scalars(select(model).where(model.scope_id.in_(ids))):
        key = (row.scope_type, row.scope_id)
        if key in wanted:
            found.setdefault(key, []).append(row)
    return found


def _approved(rows: Iterable[RightsGrant]) -> Iterable[Grant]:
    return (to_grant(row) for row in rows if row.status == GrantStatus.APPROVED)


def load_item_rights(session: Session, assets: Sequence[Asset]) -> dict[str, ItemRights]:
    """The rights of every asset in ``assets``, with two queries for grants and blackouts."""
    matches = _matches(session, assets)
    match_of = {a.id: matches.get(a.match_id) if a.match_id is not None else None for a in assets}
    chains = {a.id: scope_chain(a, match_of[a.id]) for a in assets}
    all_keys = [key for chain in chains.values() for key in chain]
    grants = _rows_for(session, RightsGrant, all_keys)
    blackouts = _rows_for(session, RightsBlackout, all_keys)
    return {a.id: _item_rights(a, chains[a.id], match_of[a.id], grants, blackouts) for a in assets}


def _matches(session: Session, assets: Sequence[Asset]) -> dict[int, Match]:
    ids = {a.match_id for a in assets if a.match_id is not None}
    if not ids:
        return {}
    return {m.id: m for m in session.scalars(select(Match).where(Match.id.in_(ids)))}


def _item_rights(
    asset: Asset,
    chain: list[ScopeKey],
    match: Match | None,
    grants: dict[ScopeKey, list[RightsGrant]],
    blackouts: dict[ScopeKey, list[RightsBlackout]],
) -> ItemRights:
    levels = tuple(
        ScopeLevel(kind, scope_id, tuple(_approved(grants.get((kind, scope_id), []))))
        for kind, scope_id in chain
    )
    active = [to_blackout(b) for key in chain for b in blackouts.get(key, []) if b.active]
    return ItemRights(
        asset.id,
        levels,
        events_of(match),
        tuple(active),
        is_live=on_air(asset),
        live_event=asset.origin == LIVE_ORIGIN,
    )
