"""Rights manager API: grants, blackouts, audit, availability map and explanations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import pycountry
from fastapi import APIRouter, Body, Depends, Query, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core.auth import Principal
from core.deps import RightsManagerDep, SessionDep
from core.errors import InvalidInput, TooLarge
from core.models import Asset, RightsBlackout, RightsGrant
from rights import service
from rights.cache import RightsCache
from rights.csv_import import MAX_ROWS, parse_csv
from rights.evaluate import evaluate
from rights.model import Decision, ItemRights, Viewer
from rights.schemas import (
    AuditOut,
    AvailabilityOut,
    BlackoutIn,
    BlackoutOut,
    CountryStatus,
    ExplainGrant,
    ExplainOut,
    GrantIn,
    GrantOut,
    GrantPatch,
    ImportResult,
)
from rights.scopes import authorize, resolve

router = APIRouter(prefix="/v1/rights", tags=["rights"])
MANAGERS_DOC = "**Who:** rights managers of the item's league, and admins."


def rights_cache(request: Request) -> RightsCache:
    cache: RightsCache = request.app.state.rights_cache
    return cache


CacheDep = Annotated[RightsCache, Depends(rights_cache)]


def grant_out(row: RightsGrant) -> GrantOut:
    return GrantOut.model_validate(row, from_attributes=True)


def blackout_out(row: RightsBlackout) -> BlackoutOut:
    return BlackoutOut.model_validate(row, from_attributes=True)


@router.post("/grants", status_code=status.HTTP_201_CREATED, response_model=GrantOut)
def create_grant(
    session: SessionDep, principal: RightsManagerDep, cache: CacheDep, body: GrantIn
) -> GrantOut:
    """Create a grant. Territories may name groups (EU, EEA, APAC, MENA, …), expanded and
    versioned when saved. A grant that widens its ancestors' is refused with 422 naming the
    rule. **Who:** rights managers of the scope's league, and admins."""
    row = service.create_grant(session, principal, body)
    session.commit()
    cache.invalidate()
    return grant_out(row)


@router.get("/grants", response_model=list[GrantOut])
def list_grants(
    session: SessionDep,
    principal: RightsManagerDep,
    scope_type: Annotated[str, Query(max_length=16)],
    scope_id: Annotated[str, Query(max_length=32)],
) -> list[GrantOut]:
    """Grants on one scope node. **Who:** rights managers of its league, and admins."""
    return [grant_out(r) for r in service.list_grants(session, principal, scope_type, scope_id)]


@router.get("/grants/{grant_id}", response_model=GrantOut)
def get_grant(session: SessionDep, principal: RightsManagerDep, grant_id: int) -> GrantOut:
    """One grant. **Who:** rights managers of its league, and admins."""
    return grant_out(service.get_grant(session, principal, grant_id))


@router.patch("/grants/{grant_id}", response_model=GrantOut)
def update_grant(
    session: SessionDep,
    principal: RightsManagerDep,
    cache: CacheDep,
    grant_id: int,
    body: GrantPatch,
) -> GrantOut:
    """Change a grant (approve, revoke, narrow…). Takes effect at once, including on playback
    already running. **Who:** rights managers of its league, and admins."""
    row = service.update_grant(session, principal, grant_id, body)
    session.commit()
    cache.invalidate()
    return grant_out(row)


@router.post("/grants/import", status_code=status.HTTP_201_CREATED, response_model=ImportResult)
def import_grants(
    session: SessionDep,
    principal: RightsManagerDep,
    cache: CacheDep,
    body: Annotated[list[GrantIn], Body(max_length=MAX_ROWS)],
) -> ImportResult:
    """Create many grants at once, all or nothing (the JSON form of an Avails sheet).
    **Who:** rights managers of every scope's league, and admins."""
    return _create_all(session, principal, cache, body)


CSV_LIMIT = 2 * 1024 * 1024


@router.post(
    "/grants/import.csv",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResult,
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_grants_csv(
    request: Request, session: SessionDep, principal: RightsManagerDep, cache: CacheDep
) -> ImportResult:
    """Create grants from a CSV sheet (columns in the README), all or nothing; errors name the
    rows. **Who:** rights managers of every scope's league, and admins."""
    body = await request.body()
    if len(body) > CSV_LIMIT:
        raise TooLarge(f"a CSV import is at most {CSV_LIMIT} bytes")
    try:
        grants = parse_csv(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidInput("the sheet must be UTF-8 text") from None
    # The database work is blocking: keep it off the event loop.
    return await run_in_threadpool(_create_all, session, principal, cache, grants)


def _create_all(
    session: Session, principal: Principal, cache: RightsCache, grants: list[GrantIn]
) -> ImportResult:
    rows = [service.create_grant(session, principal, item) for item in grants]
    session.commit()
    cache.invalidate()
    return ImportResult(created=[row.id for row in rows])


@router.post("/blackouts", status_code=status.HTTP_201_CREATED, response_model=BlackoutOut)
def create_blackout(
    session: SessionDep, principal: RightsManagerDep, cache: CacheDep, body: BlackoutIn
) -> BlackoutOut:
    """Create a live blackout. **Who:** rights managers of the scope's league, and admins."""
    row = service.create_blackout(session, principal, body)
    session.commit()
    cache.invalidate()
    return blackout_out(row)


@router.put("/blackouts/{blackout_id}", response_model=BlackoutOut)
def update_blackout(
    session: SessionDep,
    principal: RightsManagerDep,
    cache: CacheDep,
    blackout_id: int,
    body: BlackoutIn,
) -> BlackoutOut:
    """Replace a blackout (set ``active`` false to lift it). **Who:** rights managers of its
    league, and admins."""
    row = service.update_blackout(session, principal, blackout_id, body)
    session.commit()
    cache.invalidate()
    return blackout_out(row)


@router.get("/audit", response_model=list[AuditOut])
def audit(
    session: SessionDep,
    principal: RightsManagerDep,
    entity: Annotated[str, Query(pattern="^(grant|blackout)$")],
    entity_id: int,
) -> list[AuditOut]:
    """Every change to one grant or blackout: who, when, before, after.
    **Who:** rights managers of its league, and admins."""
    rows = service.audit_log(session, principal, entity, entity_id)
    return [AuditOut.model_validate(row, from_attributes=True) for row in rows]


def _item_rights(
    session: SessionDep, principal: RightsManagerDep, cache: RightsCache, item: str
) -> ItemRights:
    scope = resolve(session, "asset", item)
    authorize(principal, scope)
    asset = session.get(Asset, item)
    assert asset is not None  # noqa: S101 - resolve() found it
    return cache.rights_for(session, [asset])[item]


@router.get("/{item}/availability", response_model=AvailabilityOut)
def availability(
    session: SessionDep,
    principal: RightsManagerDep,
    cache: CacheDep,
    item: str,
    at: datetime | None = None,
    platform: Annotated[str, Query(max_length=100)] = "web",
) -> AvailabilityOut:
    """Per-country status of an item at ``at`` (default now), for a world map.
    **Who:** rights managers of its league, and admins."""
    rights = _item_rights(session, principal, cache, item)
    when = _aware(at)
    countries = {
        c.alpha_2: _status(
            evaluate(rights, Viewer(c.alpha_2, platform=platform), when, rights.licenses)
        )
        for c in pycountry.countries
    }
    return AvailabilityOut(item=item, at=when, platform=platform, countries=countries)


def _status(decision: Decision) -> CountryStatus:
    return CountryStatus(allowed=decision.allowed, reason=str(decision.reason))


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@router.get("/{item}/explain", response_model=ExplainOut)
def explain(
    session: SessionDep,
    principal: RightsManagerDep,
    cache: CacheDep,
    item: str,
    country: Annotated[str | None, Query(max_length=6)] = None,
    subdivision: Annotated[str | None, Query(max_length=6)] = None,
    platform: Annotated[str, Query(max_length=100)] = "web",
    at: datetime | None = None,
) -> ExplainOut:
    """The decision for a viewer in ``country`` at ``at``, and the chain of grants behind it.
    **Who:** rights managers of its league, and admins."""
    rights = _item_rights(session, principal, cache, item)
    when = _aware(at)
    viewer = Viewer(country.upper() if country else None, subdivision, platform=platform)
    decision = evaluate(rights, viewer, when, rights.licenses)
    chain = [
        ExplainGrant(
            id=g.id, scope=f"{level.kind}:{level.id}", license_type=g.license_type, status=g.status
        )
        for level in rights.levels
        for g in level.grants
    ]
    return ExplainOut(
        item=item, at=when, country=viewer.country, platform=platform,
        allowed=decision.allowed, reason=str(decision.reason), message=decision.message,
        grant_id=decision.grant_id, valid_until=decision.valid_until,
        available_from=decision.available_from, chain=chain,
    )  # fmt: skip
