"""Rights managers' operations: grants and blackouts with validation and an audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from ipaddress import ip_network

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal
from core.errors import InvalidInput, NotFound
from core.models import RightsAudit, RightsBlackout, RightsGrant
from rights import narrowing, territories
from rights.model import BlackoutAction, GrantStatus
from rights.records import events_of, to_grant, window_from_json
from rights.schemas import BlackoutIn, GrantIn, GrantPatch
from rights.scopes import Scope, authorize, resolve
from rights.viewer import parse_platform

GRANT_FIELDS = (
    "scope_type", "scope_id", "license_type", "worldwide", "territories", "excluded",
    "territory_groups", "window", "platforms", "exclusive", "vpn_policy", "status",
    "clip_limits", "licensee", "contract_id",
)  # fmt: skip
BLACKOUT_FIELDS = tuple(BlackoutIn.model_fields)


def snapshot(row: RightsGrant | RightsBlackout, fields: Sequence[str]) -> dict[str, object]:
    """A JSON-ready copy of ``fields`` for the audit log."""
    values = {name: getattr(row, name) for name in fields}
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


def audit(
    session: Session,
    actor: Principal,
    row: RightsGrant | RightsBlackout,
    action: str,
    before: dict[str, object] | None,
) -> None:
    entity = "grant" if isinstance(row, RightsGrant) else "blackout"
    fields = GRANT_FIELDS if isinstance(row, RightsGrant) else BLACKOUT_FIELDS
    session.add(
        RightsAudit(
            actor=actor.label,
            entity=entity,
            entity_id=row.id,
            action=action,
            before=before,
            after=snapshot(row, fields),
        )
    )


def _apply_territories(row: RightsGrant, included: list[str], excluded: list[str]) -> None:
    if row.worldwide and included:
        raise InvalidInput("a worldwide grant lists no territories (use excluded to carve out)")
    if not row.worldwide and not included:
        raise InvalidInput("list the licensed territories, or set worldwide")
    expanded, groups = territories.expand(included)
    carved, carved_groups = territories.expand(excluded)
    listed = {code.strip().upper() for code in included}
    if both := sorted(listed & carved):
        raise InvalidInput(f"{', '.join(both)} cannot be both licensed and excluded")
    # "EU except FR": FR stays among the expanded members and the exclusion wins at evaluation.
    row.territories, row.excluded = sorted(expanded), sorted(carved)
    row.territory_groups = {**(row.territory_groups or {}), **groups, **carved_groups}


def _validate(session: Session, row: RightsGrant, scope: Scope) -> None:
    """Self-consistent, and only narrowing what the ancestors' approved grants allow."""
    grant = to_grant(row)
    narrowing.validate_grant(grant)
    ancestors = [
        to_grant(parent)
        for parent in session.scalars(
            select(RightsGrant).where(
                RightsGrant.status == GrantStatus.APPROVED,
                RightsGrant.scope_id.in_([scope_id for _kind, scope_id in scope.ancestors]),
            )
        )
        if (parent.scope_type, parent.scope_id) in scope.ancestors
        and parent.license_type == row.license_type
    ]
    narrowing.check_narrows(
        replace(grant, status=GrantStatus.APPROVED), ancestors, events_of(scope.match)
    )


def create_grant(session: Session, actor: Principal, data: GrantIn) -> RightsGrant:
    scope = resolve(session, data.scope_type, data.scope_id)
    authorize(actor, scope)
    values = data.model_dump(mode="json", exclude={"territories", "excluded"})
    row = RightsGrant(**values, created_by=actor.label)
    _apply_territories(row, data.territories, data.excluded)
    window_from_json(row.window)  # parse now: a malformed window fails here, not at playback
    _validate(session, row, scope)
    session.add(row)
    session.flush()
    audit(session, actor, row, "create", None)
    return row


def get_grant(session: Session, actor: Principal, grant_id: int) -> RightsGrant:
    row = session.get(RightsGrant, grant_id)
    if row is None:
        raise NotFound(f"no grant {grant_id}")
    authorize(actor, resolve(session, row.scope_type, row.scope_id))
    return row


def update_grant(
    session: Session, actor: Principal, grant_id: int, patch: GrantPatch
) -> RightsGrant:
    row = get_grant(session, actor, grant_id)
    before = snapshot(row, GRANT_FIELDS)
    changes = patch.model_dump(mode="json", exclude_unset=True)
    included = changes.pop("territories", None)
    excluded = changes.pop("excluded", None)
    for name, value in changes.items():
        setattr(row, name, value)
    if included is not None:
        row.territory_groups = {}  # new territories: only the groups they name are recorded
    if included is not None or excluded is not None or "worldwide" in changes:
        _apply_territories(
            row,
            included if included is not None else _source_codes(row, "territories"),
            excluded if excluded is not None else _source_codes(row, "excluded"),
        )
    if row.status == GrantStatus.APPROVED:
        _validate(session, row, resolve(session, row.scope_type, row.scope_id))
    session.flush()
    audit(session, actor, row, "update", before)
    return row


def _source_codes(row: RightsGrant, field: str) -> list[str]:
    # Re-expansion starts from the stored (already expanded) codes: groups stay frozen at the
    # version they were saved with, as the issue asks.
    return [] if row.worldwide and field == "territories" else list(getattr(row, field))


def list_grants(
    session: Session, actor: Principal, scope_type: str, scope_id: str
) -> list[RightsGrant]:
    authorize(actor, resolve(session, scope_type, scope_id))
    query = select(RightsGrant).where(
        RightsGrant.scope_type == scope_type, RightsGrant.scope_id == scope_id
    )
    return list(session.scalars(query.order_by(RightsGrant.id)))


def _normalised_blackout(data: BlackoutIn) -> dict[str, object]:
    """The blackout as stored: the codes, networks and platforms in the form viewers are
    matched against (a code stored as sent, e.g. "gb", would silently match nobody)."""
    _check_blackout(data)
    countries, _groups = territories.expand(data.countries)
    subdivisions, _ = territories.expand(data.subdivisions)
    values = data.model_dump(mode="python")
    values["countries"], values["subdivisions"] = sorted(countries), sorted(subdivisions)
    values["networks"] = [str(ip_network(n, strict=False)) for n in data.networks]
    values["platforms"] = sorted({parse_platform(p) for p in data.platforms})
    return values


def _check_blackout(data: BlackoutIn) -> None:
    for network in data.networks:
        try:
            ip_network(network, strict=False)
        except ValueError:
            raise InvalidInput(f"networks: {network!r} is not an IP network") from None
    if (data.action is BlackoutAction.ALTERNATE) != bool(data.alternate_item):
        raise InvalidInput("an alternate blackout names alternate_item; a block names none")
    if data.starts_at and data.ends_at and data.starts_at >= data.ends_at:
        raise InvalidInput("starts_at must be before ends_at")
    if not (data.countries or data.subdivisions or data.networks or data.platforms):
        raise InvalidInput(
            "a blackout needs an audience: countries, subdivisions, networks or platforms"
        )


def create_blackout(session: Session, actor: Principal, data: BlackoutIn) -> RightsBlackout:
    authorize(actor, resolve(session, data.scope_type, data.scope_id))
    row = RightsBlackout(**_normalised_blackout(data))
    session.add(row)
    session.flush()
    audit(session, actor, row, "create", None)
    return row


def update_blackout(
    session: Session, actor: Principal, blackout_id: int, data: BlackoutIn
) -> RightsBlackout:
    row = session.get(RightsBlackout, blackout_id)
    if row is None:
        raise NotFound(f"no blackout {blackout_id}")
    authorize(actor, resolve(session, row.scope_type, row.scope_id))
    authorize(actor, resolve(session, data.scope_type, data.scope_id))
    values = _normalised_blackout(data)
    before = snapshot(row, BLACKOUT_FIELDS)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    audit(session, actor, row, "update", before)
    return row


def audit_log(session: Session, actor: Principal, entity: str, entity_id: int) -> list[RightsAudit]:
    if entity == "grant":
        get_grant(session, actor, entity_id)
    else:
        row = session.get(RightsBlackout, entity_id)
        if row is None:
            raise NotFound(f"no blackout {entity_id}")
        authorize(actor, resolve(session, row.scope_type, row.scope_id))
    query = select(RightsAudit).where(
        RightsAudit.entity == entity, RightsAudit.entity_id == entity_id
    )
    return list(session.scalars(query.order_by(RightsAudit.id)))
