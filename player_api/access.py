"""Rights enforcement for fans: who the viewer is, and whether they may watch an item now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from core.errors import CourtsideError
from core.settings import Settings
from rights.cache import RightsCache
from rights.evaluate import evaluate
from rights.geoip import GeoDatabases
from rights.memo import DecisionMemo
from rights.model import Decision, ItemRights, Reason, Viewer
from rights.viewer import TrustedProxies, resolve_viewer

PLATFORM_HEADER = "x-courtside-platform"


class NotAvailable(CourtsideError):
    """HTTP 451: licensed elsewhere or at another time; says why and, for windows, when."""

    code = "not_available"

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.details: dict[str, str | None] = {
            "reason": str(decision.reason),
            "available_from": (
                decision.available_from.isoformat() if decision.available_from else None
            ),
        }


@dataclass(frozen=True)
class RightsContext:
    """What enforcement needs, built once by the composition root."""

    geo: GeoDatabases
    proxies: TrustedProxies
    cache: RightsCache
    cdn_country_header: str | None
    dev_loopback_country: str | None
    # Running playbacks repeat the same check every few seconds (see rights.memo).
    decisions: DecisionMemo = field(default_factory=DecisionMemo)

    @classmethod
    def from_settings(cls, settings: Settings, cache: RightsCache) -> RightsContext:
        return cls(
            geo=GeoDatabases.open(
                settings.geoip_country_db, settings.geoip_city_db, settings.geoip_anonymous_db
            ),
            proxies=TrustedProxies(settings.trusted_proxies),
            cache=cache,
            cdn_country_header=settings.cdn_country_header,
            dev_loopback_country=settings.dev_loopback_country,
        )


async def rights_context(request: Request) -> RightsContext:
    context: RightsContext = request.app.state.rights
    return context


RightsDep = Annotated[RightsContext, Depends(rights_context)]


async def current_viewer(request: Request, rights: RightsDep) -> Viewer:
    """The viewer as a dependency. CPU only (the GeoIP databases are memory-mapped), so it
    runs on the event loop rather than costing a thread-pool hand-off."""
    return viewer_of(request, rights)


def viewer_of(request: HTTPConnection, rights: RightsContext) -> Viewer:
    """The viewer as the server sees it: IP through trusted proxies only, GeoIP country
    (of a request or a WebSocket)."""
    platform = request.headers.get(PLATFORM_HEADER) or request.query_params.get("platform")
    return resolve_viewer(
        peer=request.client.host if request.client else "",
        headers=_location_headers(request, rights.cdn_country_header),
        platform=platform or "web",
        geo=rights.geo,
        proxies=rights.proxies,
        cdn_country_header=rights.cdn_country_header,
        dev_loopback_country=rights.dev_loopback_country,
    )


def _location_headers(request: HTTPConnection, cdn_header: str | None) -> dict[str, str]:
    """Only the headers that place a viewer, each with every line in order: keeping one line
    could keep the client's own X-Forwarded-For and drop the one our proxy appended."""
    names = ("x-forwarded-for", cdn_header.lower()) if cdn_header else ("x-forwarded-for",)
    found = {name: request.headers.getlist(name) for name in names}
    return {name: ", ".join(lines) for name, lines in found.items() if lines}


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def decide(
    rights: ItemRights | None, viewer: Viewer, now: datetime, memo: DecisionMemo | None = None
) -> Decision:
    """The decision for a clip or a live stream (each by its own license types); an item with
    no rights record is simply not licensed."""
    if rights is None:
        return Decision(False, Reason.NO_GRANT, "This item is not available.")
    if memo is not None:
        return memo.decide(rights, viewer, now, rights.licenses)
    return evaluate(rights, viewer, now, rights.licenses)


def require(decision: Decision) -> Decision:
    if not decision.allowed:
        raise NotAvailable(decision)
    return decision
