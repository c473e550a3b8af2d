"""What rights managers send and receive."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from rights.model import BlackoutAction, EventAnchor, GrantStatus, LicenseType, VpnPolicy

ScopeType = Literal["league", "competition", "season", "match", "asset"]


class EdgeIn(BaseModel):
    """Either ``at`` (an instant with a time zone) or ``event`` plus ``lag_s`` seconds."""

    at: datetime | None = None
    event: EventAnchor | None = None
    lag_s: int = Field(default=0, ge=-30 * 86400, le=10 * 365 * 86400)


class WindowIn(BaseModel):
    start: EdgeIn | None = None
    end: EdgeIn | None = None


class ClipLimits(BaseModel):
    max_clip_s: int | None = Field(default=None, gt=0)
    max_total_s_per_match: int | None = Field(default=None, gt=0)
    min_delay_after_live_s: int | None = Field(default=None, ge=0)


class GrantIn(BaseModel):
    scope_type: ScopeType
    scope_id: str = Field(min_length=1, max_length=32)
    license_type: LicenseType
    worldwide: bool = False
    territories: list[str] = Field(default_factory=list, max_length=400)
    excluded: list[str] = Field(default_factory=list, max_length=400)
    window: WindowIn = Field(default_factory=WindowIn)
    platforms: list[str] | None = Field(default=None, max_length=20)
    exclusive: bool = False
    vpn_policy: VpnPolicy = VpnPolicy.ALLOW
    status: GrantStatus = GrantStatus.PENDING
    clip_limits: ClipLimits = Field(default_factory=ClipLimits)
    licensee: str = Field(default="", max_length=200)
    contract_id: str = Field(default="", max_length=100)


class GrantPatch(BaseModel):
    """Only the fields given change; the result is validated like a new grant."""

    worldwide: bool | None = None
    territories: list[str] | None = Field(default=None, max_length=400)
    excluded: list[str] | None = Field(default=None, max_length=400)
    window: WindowIn | None = None
    platforms: list[str] | None = None
    exclusive: bool | None = None
    vpn_policy: VpnPolicy | None = None
    status: GrantStatus | None = None
    clip_limits: ClipLimits | None = None


class GrantOut(GrantIn):
    id: int
    territory_groups: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class BlackoutIn(BaseModel):
    scope_type: ScopeType
    scope_id: str = Field(min_length=1, max_length=32)
    countries: list[str] = Field(default_factory=list, max_length=400)
    subdivisions: list[str] = Field(default_factory=list, max_length=400)
    networks: list[str] = Field(default_factory=list, max_length=200)
    platforms: list[str] = Field(default_factory=list, max_length=20)
    action: BlackoutAction = BlackoutAction.BLOCK
    alternate_item: str | None = Field(default=None, max_length=32)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    active: bool = True


class BlackoutOut(BlackoutIn):
    id: int
    created_at: datetime


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    entity: str
    entity_id: int
    action: str
    before: dict[str, object] | None
    after: dict[str, object] | None


class CountryStatus(BaseModel):
    allowed: bool
    reason: str


class AvailabilityOut(BaseModel):
    item: str
    at: datetime
    platform: str
    countries: dict[str, CountryStatus]


class ExplainGrant(BaseModel):
    id: int
    scope: str
    license_type: str
    status: str


class ExplainOut(BaseModel):
    item: str
    at: datetime
    country: str | None
    platform: str
    allowed: bool
    reason: str
    message: str
    grant_id: int | None
    valid_until: datetime | None
    available_from: datetime | None
    chain: list[ExplainGrant]


class ImportResult(BaseModel):
    created: list[int]
