"""Partner webhooks: signed POSTs of events, retried with backoff for a day, with a log.

An event (``core.events.emit``, an outbox row) is fanned out by ``ingest.fan_out_event`` into
one :class:`~core.models.WebhookDelivery` per subscribed endpoint; ``ingest.deliver_webhook``
makes one attempt and schedules the next with a Celery countdown. Because a countdown message
can be lost (a broker restart), ``ingest.retry_due_webhooks`` (beat, every minute) re-sends
every delivery whose ``next_attempt_at`` has passed. An attempt first *claims* its delivery
(moving ``next_attempt_at`` past the request's timeout), so the two paths never post twice at
once. No database transaction stays open during the HTTP request.

Signing follows Stripe and Mux: ``Courtside-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">``, keyed with the endpoint's secret. That secret is derived from the server
secret and the endpoint's salt, so it is never stored; rotating it changes the salt.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.auth import Principal, require_league, require_role
from core.celery_app import app, app_settings, enqueue_after_commit
from core.db import engine_for, make_sessionmaker, session_scope
from core.errors import Conflict, InvalidInput, NotFound
from core.events import EVENT_TYPES
from core.logging import fields
from core.models import Event, League, Role, WebhookDelivery, WebhookEndpoint, utcnow
from core.safe_http import (
    FetchFailed,
    FetchLimits,
    IPNetwork,
    UrlRefused,
    check_url,
    open_url,
    parse_networks,
)
from core.settings import Settings

log = logging.getLogger(__name__)

FAN_OUT_TASK = "ingest.fan_out_event"
DELIVER_TASK = "ingest.deliver_webhook"
RETRY_DUE_TASK = "ingest.retry_due_webhooks"

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label in front of derived secrets, not one
SIGNATURE_HEADER = "Courtside-Signature"
SIGNATURE_TOLERANCE_S = 300
MAX_SIGNATURE_HEADER = 1024
MAX_ENDPOINTS_PER_LEAGUE = 10
# Seconds to wait after the n-th failed attempt; the last value repeats until the window ends.
BACKOFF_S = (10, 30, 120, 600, 1800, 3600, 7200, 14400)
# A claimed delivery is out of the sweep's reach for the request's timeout plus this margin.
CLAIM_MARGIN_S = 60
# The sweep leaves just-due deliveries to their own countdown message for this long.
SWEEP_GRACE_S = 30
SWEEP_BATCH = 500
MAX_ERROR_CHARS = 500
# We never read a receiver's answer beyond its status; this only bounds what we would.
MAX_RESPONSE_BYTES = 64 * 1024
PROGRESS_STEP = 10


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # not attempted yet
    FAILED = "failed"  # the last attempt failed; another is scheduled at next_attempt_at
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"  # the retry window ended (or the endpoint was disabled)


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class UnknownEventType(InvalidInput):
    code = "unknown_event_type"


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"


# --- signing ----------------------------------------------------------------------------------


def endpoint_secret(server_secret: str, endpoint_id: int, salt: str) -> str:
    """The signing secret of an endpoint: derived, never stored; a new salt rotates it."""
    message = f"webhook:{endpoint_id}:{salt}".encode()
    digest = hmac.new(server_secret.encode(), message, hashlib.sha256).hexdigest()
    return SECRET_PREFIX + digest


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the whole secret string."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Courtside-Signature`` value: ``t=<timestamp>,v1=<signature>``."""
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def _parse_signature_header(header: str) -> tuple[int, list[str]] | None:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    return (timestamp, signatures) if timestamp is not None and signatures else None


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """Whether ``header`` (a ``Courtside-Signature`` value) signs the raw ``body`` with
    ``secret`` at a time within ``tolerance_s`` of ``now`` (Unix seconds). Receivers use it
    as is; the time check stops a captured request from being replayed later."""
    parsed = _parse_signature_header(header) if len(header) <= MAX_SIGNATURE_HEADER else None
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = compute_signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def should_emit_progress(last_emitted_progress: int | None, progress: int) -> bool:
    """Whether an ``asset.progress`` event is worth recording: the first one, then one per
    ``PROGRESS_STEP`` points (a new attempt starting lower counts as news)."""
    if last_emitted_progress is None or progress < last_emitted_progress:
        return True
    return progress // PROGRESS_STEP > last_emitted_progress // PROGRESS_STEP


# --- fan-out ----------------------------------------------------------------------------------


def subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.event_types or event_type in endpoint.event_types


def fan_out(session: Session, event_id: int, now: datetime) -> list[int]:
    """Create the deliveries of an event (one per active subscribed endpoint of its league)
    and send each after commit. Running it twice for one event creates nothing new."""
    event = session.get(Event, event_id)
    if event is None:
        return []
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.league_id == event.league_id, WebhookEndpoint.active.is_(True)
        )
    ).all()
    done = set(
        session.scalars(
            select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event_id)
        )
    )
    created = [
        _new_delivery(session, endpoint.id, event_id, now)
        for endpoint in endpoints
        if subscribed(endpoint, event.type) and endpoint.id not in done
    ]
    return [delivery.id for delivery in created]


def _new_delivery(
    session: Session, endpoint_id: int, event_id: int, now: datetime
) -> WebhookDelivery:
    # next_attempt_at is set from the start so that the sweep finds it if the message is lost.
    delivery = WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id, next_attempt_at=now)
    session.add(delivery)
    session.flush()
    enqueue_after_commit(session, DELIVER_TASK, [delivery.id])
    return delivery


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """What an attempt needs from the settings."""

    server_secret: str
    timeout_s: float
    retry_window_s: int
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        return cls(
            server_secret=settings.secret_key.get_secret_value(),
            timeout_s=settings.webhook_timeout_s,
            retry_window_s=settings.webhook_retry_window_s,
            allowed_networks=parse_networks(settings.pull_allowed_networks),
        )

    def limits(self) -> FetchLimits:
        # No redirects: a POST turned into a GET elsewhere is not a delivery.
        return FetchLimits(
            timeout_s=self.timeout_s,
            max_bytes=MAX_RESPONSE_BYTES,
            allowed_networks=self.allowed_networks,
            max_redirects=0,
        )


@dataclass(frozen=True)
class Outgoing:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_body(event: Event) -> bytes:
    """The JSON body of an event, as signed and sent."""
    payload = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def build_request(secret: str, event: Event, url: str, now: datetime) -> Outgoing:
    """The signed request for one event to one URL."""
    body = event_body(event)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(secret, int(now.timestamp()), body),
        "Courtside-Event-Id": str(event.id),
        "Courtside-Event-Type": event.type,
    }
    return Outgoing(url=url, headers=headers, body=body)


def deliver(
    sessions: sessionmaker[Session], sender: Sender, delivery_id: int, now: datetime
) -> float | None:
    """Make one attempt if the delivery is due; return the seconds until the next one, or
    ``None`` when there is none (delivered, given up, or not ours to attempt now)."""
    outgoing = _claim(sessions, sender, delivery_id, now)
    if outgoing is None:
        return None
    outcome = post(outgoing, sender.limits())
    return _record(sessions, sender, delivery_id, outcome, now)


def _claim(
    sessions: sessionmaker[Session], sender: Sender, delivery_id: int, now: datetime
) -> Outgoing | None:
    with session_scope(sessions) as session:
        delivery = session.scalar(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status.in_(OPEN_STATUSES),
                or_(
                    WebhookDelivery.next_attempt_at.is_(None),
                    WebhookDelivery.next_attempt_at <= now,
                ),
            )
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        if delivery is None:
            return None
        endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
        if not endpoint.active:
            delivery.status = DeliveryStatus.GAVE_UP
            delivery.last_error = "the endpoint is disabled"
            return None
        delivery.next_attempt_at = now + timedelta(seconds=sender.timeout_s + CLAIM_MARGIN_S)
        secret = endpoint_secret(sender.server_secret, endpoint.id, endpoint.secret_salt)
        return build_request(secret, delivery.event, endpoint.url, now)


def post(outgoing: Outgoing, limits: FetchLimits) -> Outcome:
    """POST the request under the SSRF policy of ``core.safe_http``; never raises for what
    the receiver (or the network) did."""
    try:
        with open_url(
            outgoing.url, limits, method="POST", headers=outgoing.headers, body=outgoing.body
        ) as response:
            status = response.status
    except FetchFailed as exc:
        return Outcome(exc.status_code, _failure_text(exc))
    except UrlRefused as exc:
        return Outcome(None, str(exc))
    error = None if 200 <= status < 300 else f"the endpoint answered HTTP {status}"
    return Outcome(status, error)


def _failure_text(exc: FetchFailed) -> str:
    # With redirects switched off, safe_http reports a 3xx as "more than 0 redirects".
    if exc.status_code is None and "redirect" in str(exc):
        return "the endpoint answered with a redirect; register the final URL instead"
    return str(exc)


def _record(
    sessions: sessionmaker[Session],
    sender: Sender,
    delivery_id: int,
    outcome: Outcome,
    now: datetime,
) -> float | None:
    with session_scope(sessions) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # the endpoint was deleted during the request
            return None
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error[:MAX_ERROR_CHARS] if outcome.error else None
        if outcome.ok:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
            delivery.next_attempt_at = None
            return None
        deadline = delivery.event.created_at + timedelta(seconds=sender.retry_window_s)
        return _schedule_retry(delivery, deadline, now)


def backoff_s(attempts: int) -> int:
    """Seconds to wait after ``attempts`` failed attempts (1 → 10 s, 2 → 30 s, …)."""
    return BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1]


def _schedule_retry(delivery: WebhookDelivery, deadline: datetime, now: datetime) -> float | None:
    if now >= deadline:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.GAVE_UP, None
        return None
    # The last attempt lands on the deadline itself rather than being skipped.
    retry_at = min(now + timedelta(seconds=backoff_s(delivery.attempts)), deadline)
    delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, retry_at
    return (retry_at - now).total_seconds()


def due_deliveries(session: Session, now: datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Open deliveries whose next attempt is overdue (their message was lost, say)."""
    overdue = now - timedelta(seconds=SWEEP_GRACE_S)
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status.in_(OPEN_STATUSES),
                WebhookDelivery.next_attempt_at <= overdue,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )


# --- endpoints (the API's service layer) ------------------------------------------------------


def check_event_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(
            f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return sorted(set(event_types))


def check_endpoint_url(url: str, allowed_networks: tuple[IPNetwork, ...]) -> str:
    """An http(s) URL that is not a loopback/private address (``UrlRefused``, a 422)."""
    return check_url(url.strip(), allowed_networks).url


def create_endpoint(
    session: Session,
    principal: Principal,
    league: League,
    url: str,
    event_types: Sequence[str],
    *,
    allowed_networks: tuple[IPNetwork, ...] = (),
) -> WebhookEndpoint:
    """A new endpoint of ``league``; its secret is :func:`endpoint_secret` of the result."""
    require_role(principal, Role.PARTNER)
    require_league(principal, league.id)
    count = session.scalar(select(func.count()).where(WebhookEndpoint.league_id == league.id))
    if (count or 0) >= MAX_ENDPOINTS_PER_LEAGUE:
        raise TooManyEndpoints(f"a league may have at most {MAX_ENDPOINTS_PER_LEAGUE} webhooks")
    endpoint = WebhookEndpoint(
        league_id=league.id,
        url=check_endpoint_url(url, allowed_networks),
        event_types=check_event_types(event_types),
        secret_salt=secrets.token_hex(16),
        created_by=principal.label,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint_for(session: Session, principal: Principal, endpoint_id: int) -> WebhookEndpoint:
    """An endpoint the principal may manage; another league's is simply not found."""
    require_role(principal, Role.PARTNER)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or (
        principal.role is not Role.ADMIN and endpoint.league_id not in principal.league_ids
    ):
        raise NotFound("no such webhook")
    return endpoint


def league_endpoints(
    session: Session, principal: Principal, league: League
) -> list[WebhookEndpoint]:
    """The endpoints of a league the principal acts for, oldest first."""
    require_role(principal, Role.PARTNER)
    require_league(principal, league.id)
    query = select(WebhookEndpoint).where(WebhookEndpoint.league_id == league.id)
    return list(session.scalars(query.order_by(WebhookEndpoint.id)))


def rotate_secret(endpoint: WebhookEndpoint) -> None:
    """A new salt, hence a new secret; the old one stops verifying at once."""
    endpoint.secret_salt = secrets.token_hex(16)


def list_deliveries(
    session: Session, endpoint_id: int, *, limit: int, before: int | None = None
) -> list[WebhookDelivery]:
    """The delivery log, newest first; ``before`` (a delivery id) pages back."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def redeliver(
    session: Session, endpoint: WebhookEndpoint, delivery_id: int, now: datetime
) -> WebhookDelivery:
    """Attempt a delivery again now, whatever its state. If its event is older than the
    retry window, that is one attempt: a failure gives up again at once."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("no such delivery for this webhook")
    delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now
    enqueue_after_commit(session, DELIVER_TASK, [delivery.id])
    return delivery


# --- tasks ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return make_sessionmaker(engine_for(app_settings().db_url))


@app.task(name=FAN_OUT_TASK, acks_late=True)
def fan_out_event(event_id: int) -> int:
    """Create and send the deliveries of one event."""
    with session_scope(_sessions()) as session:
        return len(fan_out(session, event_id, utcnow()))


@app.task(name=DELIVER_TASK, acks_late=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt; a failure schedules the next with a countdown (the sweep backs it up)."""
    retry_in = deliver(_sessions(), Sender.from_settings(app_settings()), delivery_id, utcnow())
    if retry_in is not None:
        app.send_task(DELIVER_TASK, args=[delivery_id], countdown=retry_in)
        log.info("webhook retry scheduled", extra=fields(delivery_id=delivery_id, in_s=retry_in))


@app.task(name=RETRY_DUE_TASK)
def retry_due_webhooks() -> int:
    """Beat: re-send every overdue delivery (lost countdown messages, a restarted broker)."""
    with session_scope(_sessions()) as session:
        due = due_deliveries(session, utcnow())
    for delivery_id in due:
        app.send_task(DELIVER_TASK, args=[delivery_id])
    return len(due)
