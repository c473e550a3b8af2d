"""Partner API for webhooks: endpoints, their secrets, the delivery log and redelivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from core.deps import PartnerDep, SessionDep, SettingsDep
from core.events import EVENT_TYPES
from core.models import WebhookDelivery, WebhookEndpoint, utcnow
from core.safe_http import MAX_URL_LENGTH, parse_networks
from core.settings import Settings
from ingest import webhooks
from ingest.uploads import league_by_slug

router = APIRouter(tags=["webhooks"])
MAX_PAGE = 100


class EndpointIn(BaseModel):
    url: str = Field(max_length=MAX_URL_LENGTH)
    # Empty: every event type.
    event_types: list[str] = Field(default_factory=list, max_length=len(EVENT_TYPES))


class EndpointPatch(BaseModel):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, max_length=len(EVENT_TYPES))
    active: bool | None = None


class EndpointOut(BaseModel):
    id: int
    league_id: int
    url: str
    event_types: list[str]
    active: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id,
            league_id=endpoint.league_id,
            url=endpoint.url,
            event_types=endpoint.event_types,
            active=endpoint.active,
            created_by=endpoint.created_by,
            created_at=endpoint.created_at,
        )


class EndpointWithSecret(EndpointOut):
    """Returned on creation and rotation only: the secret is shown once, never stored."""

    secret: str


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    event_type: str
    subject_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event.type,
            subject_id=delivery.event.subject_id,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    # Pass as ``before`` for the next (older) page; null on the last page.
    next_before: int | None


def _with_secret(endpoint: WebhookEndpoint, settings: Settings) -> EndpointWithSecret:
    server_secret = settings.secret_key.get_secret_value()
    secret = webhooks.endpoint_secret(server_secret, endpoint.id, endpoint.secret_salt)
    return EndpointWithSecret(**EndpointOut.of(endpoint).model_dump(), secret=secret)


@router.post(
    "/v1/leagues/{slug}/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointWithSecret,
)
def create_webhook(
    session: SessionDep, settings: SettingsDep, principal: PartnerDep, slug: str, body: EndpointIn
) -> EndpointWithSecret:
    """Register a URL for the league's events (``event_types`` empty: all of them). The
    signing secret is in this response only. **Who:** partners of the league and admins."""
    endpoint = webhooks.create_endpoint(
        session,
        principal,
        league_by_slug(session, slug),
        body.url,
        body.event_types,
        allowed_networks=parse_networks(settings.pull_allowed_networks),
    )
    session.commit()
    return _with_secret(endpoint, settings)


@router.get("/v1/leagues/{slug}/webhooks", response_model=list[EndpointOut])
def list_webhooks(session: SessionDep, principal: PartnerDep, slug: str) -> list[EndpointOut]:
    """The league's webhook endpoints. **Who:** partners of the league and admins."""
    endpoints = webhooks.league_endpoints(session, principal, league_by_slug(session, slug))
    return [EndpointOut.of(e) for e in endpoints]


@router.get("/v1/webhooks/{endpoint_id}", response_model=EndpointOut)
def get_webhook(session: SessionDep, principal: PartnerDep, endpoint_id: int) -> EndpointOut:
    """One endpoint. **Who:** partners of its league and admins."""
    return EndpointOut.of(webhooks.get_endpoint_for(session, principal, endpoint_id))


@router.patch("/v1/webhooks/{endpoint_id}", response_model=EndpointOut)
def update_webhook(
    session: SessionDep,
    settings: SettingsDep,
    principal: PartnerDep,
    endpoint_id: int,
    body: EndpointPatch,
) -> EndpointOut:
    """Change the URL, the event types or whether it is active. **Who:** partners of its
    league and admins."""
    endpoint = webhooks.get_endpoint_for(session, principal, endpoint_id)
    networks = parse_networks(settings.pull_allowed_networks)
    if body.url is not None:
        endpoint.url = webhooks.check_endpoint_url(body.url, networks)
    if body.event_types is not None:
        endpoint.event_types = webhooks.check_event_types(body.event_types)
    if body.active is not None:
        endpoint.active = body.active
    session.commit()
    return EndpointOut.of(endpoint)


@router.delete("/v1/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(session: SessionDep, principal: PartnerDep, endpoint_id: int) -> Response:
    """Remove an endpoint and its delivery log. **Who:** partners of its league and admins."""
    session.delete(webhooks.get_endpoint_for(session, principal, endpoint_id))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/webhooks/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_webhook_secret(
    session: SessionDep, settings: SettingsDep, principal: PartnerDep, endpoint_id: int
) -> EndpointWithSecret:
    """A new signing secret, in this response only; the old one stops verifying at once.
    **Who:** partners of its league and admins."""
    endpoint = webhooks.get_endpoint_for(session, principal, endpoint_id)
    webhooks.rotate_secret(endpoint)
    session.commit()
    return _with_secret(endpoint, settings)


@router.get("/v1/webhooks/{endpoint_id}/deliveries", response_model=DeliveryPage)
def list_webhook_deliveries(
    session: SessionDep,
    principal: PartnerDep,
    endpoint_id: int,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> DeliveryPage:
    """The delivery log, newest first: event, status, attempts, the last answer and when the
    next attempt is due. **Who:** partners of its league and admins."""
    endpoint = webhooks.get_endpoint_for(session, principal, endpoint_id)
    found = webhooks.list_deliveries(session, endpoint.id, limit=limit + 1, before=before)
    page = found[:limit]
    next_before = page[-1].id if len(found) > limit else None
    return DeliveryPage(items=[DeliveryOut.of(d) for d in page], next_before=next_before)


@router.post(
    "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def redeliver_webhook(
    session: SessionDep, principal: PartnerDep, endpoint_id: int, delivery_id: int
) -> DeliveryOut:
    """Send one delivery again now, whatever its state. **Who:** partners of its league
    and admins."""
    endpoint = webhooks.get_endpoint_for(session, principal, endpoint_id)
    delivery = webhooks.redeliver(session, endpoint, delivery_id, utcnow())
    session.commit()
    return DeliveryOut.of(delivery)
