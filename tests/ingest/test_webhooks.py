"""Webhooks against a real receiver on loopback: signatures, retries, the window, the log."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.events import ASSET_FAILED, ASSET_READY, emit
from core.models import Event, League, Role, WebhookDelivery, WebhookEndpoint
from core.settings import Settings
from ingest import webhooks
from ingest.webhooks import (
    DELIVER_TASK,
    FAN_OUT_TASK,
    Sender,
    deliver,
    due_deliveries,
    fan_out,
    should_emit_progress,
    signature_header,
    verify_signature,
)
from tests.conftest import bearer, make_settings
from tests.ingest.feeds.server import loopback
from tests.queues import forget_sent, sent
from tests.s3server import closed_port

# --- a receiver on loopback ------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST and answers with the next scripted status (200 once they run out)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(url="")
    with loopback(_handler(found)) as base_url:
        found.url = f"{base_url}/hooks"
        yield found


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    # The receiver is on loopback, which safe_http refuses unless exempted.
    return make_settings(tmp_path, pg_url, pull_allowed_networks=["127.0.0.0/8"])


@pytest.fixture
def sender(settings: Settings) -> Sender:
    return Sender.from_settings(settings)


@pytest.fixture(autouse=True)
def _leave_no_tasks_behind(queue: redis.Redis, db: Session) -> Iterator[None]:
    """Commits really reach the broker; drop this test's messages afterwards."""
    yield
    try:
        mine = {
            FAN_OUT_TASK: set(db.scalars(select(Event.id))),
            DELIVER_TASK: set(db.scalars(select(WebhookDelivery.id))),
        }
    except SQLAlchemyError:
        return
    for task, ids in mine.items():
        forget_sent(queue, "ingest", task, ids)


def create(client: TestClient, key: str, url: str, **extra: object) -> dict[str, object]:
    response = client.post(
        "/v1/leagues/premier/webhooks", json={"url": url, **extra}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def event_for(db: Session, league: League, event_type: str = ASSET_READY) -> Event:
    event = emit(db, league.id, event_type, "a1b2c3", {"title": "Late winner"})
    db.commit()
    return event


def one_delivery(db: Session, league: League, now: datetime | None = None) -> WebhookDelivery:
    event = event_for(db, league)
    (delivery_id,) = fan_out(db, event.id, now or event.created_at)
    db.commit()
    return db.get_one(WebhookDelivery, delivery_id)


# --- signatures ------------------------------------------------------------------------------


def test_a_signature_verifies_only_for_its_secret_body_and_time() -> None:
    body = b'{"id":1}'
    header = signature_header("whsec_abc", 1_700_000_000, body)
    assert verify_signature("whsec_abc", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_other", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_abc", header, b'{"id":2}', now=1_700_000_100)
    assert not verify_signature("whsec_abc", header, body, now=1_700_000_301)  # replayed later
    assert verify_signature("whsec_abc", header, body, now=1_700_000_301, tolerance_s=400)
    assert not verify_signature("whsec_abc", "t=1700000000", body, now=1_700_000_000)
    assert not verify_signature("whsec_abc", "garbage", body, now=1_700_000_000)


def test_a_header_with_several_signatures_verifies_if_one_matches() -> None:
    body = b"{}"
    good = signature_header("whsec_new", 1_700_000_000, body)
    header = f"{good},v1={'0' * 64}"
    assert verify_signature("whsec_new", header, body, now=1_700_000_000)


def test_the_secret_shown_at_creation_verifies_and_rotation_replaces_it(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    receiver: Receiver,
    sender: Sender,
) -> None:
    created = create(client, partner_key, receiver.url)
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    assert (
        "secret"
        not in client.get(f"/v1/webhooks/{created['id']}", headers=bearer(partner_key)).json()
    )
    delivery = one_delivery(db, league)
    now = delivery.event.created_at
    assert deliver(sessions, sender, delivery.id, now) is None

    (request,) = receiver.requests
    signed = request.headers["Courtside-Signature"]
    assert verify_signature(secret, signed, request.body, now=now.timestamp())
    assert request.headers["Courtside-Event-Type"] == ASSET_READY
    assert request.headers["Courtside-Event-Id"] == str(delivery.event_id)
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["type"] == ASSET_READY
    assert body["data"] == {"title": "Late winner"}
    assert body["id"] == delivery.event_id

    rotated = client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=bearer(partner_key)
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    client.post(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery.id}/redeliver",
        headers=bearer(partner_key),
    )
    deliver(sessions, sender, delivery.id, now + timedelta(seconds=1))
    again = receiver.requests[1]
    signed = again.headers["Courtside-Signature"]
    assert verify_signature(new_secret, signed, again.body, now=now.timestamp())
    assert not verify_signature(secret, signed, again.body, now=now.timestamp())


# --- retries ---------------------------------------------------------------------------------


def test_failures_are_retried_with_backoff_until_delivered(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    receiver: Receiver,
    sender: Sender,
) -> None:
    created = create(client, partner_key, receiver.url)
    receiver.statuses = [500, 503]
    delivery = one_delivery(db, league)
    t0 = delivery.event.created_at

    assert deliver(sessions, sender, delivery.id, t0) == 10
    db.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 500)
    assert delivery.last_error == "the server answered HTTP 500"
    assert delivery.next_attempt_at == t0 + timedelta(seconds=10)

    assert deliver(sessions, sender, delivery.id, t0 + timedelta(seconds=5)) is None  # not due
    assert len(receiver.requests) == 1
    assert deliver(sessions, sender, delivery.id, t0 + timedelta(seconds=10)) == 30
    assert deliver(sessions, sender, delivery.id, t0 + timedelta(seconds=40)) is None
    assert len(receiver.requests) == 3

    log = client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=bearer(partner_key))
    (entry,) = log.json()["items"]
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 3
    assert entry["last_status_code"] == 200
    assert entry["last_error"] is None
    assert entry["event_type"] == ASSET_READY
    assert entry["subject_id"] == "a1b2c3"
    assert entry["delivered_at"] is not None


def test_a_delivery_gives_up_when_the_window_ends(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    receiver: Receiver,
    sender: Sender,
) -> None:
    create(client, partner_key, receiver.url)
    receiver.statuses = [500] * 5
    delivery = one_delivery(db, league)
    t0 = delivery.event.created_at
    window = timedelta(seconds=sender.retry_window_s)
    assert sender.retry_window_s == 24 * 3600

    deliver(sessions, sender, delivery.id, t0)
    # Close to the end, the next attempt is moved onto the deadline rather than skipped.
    assert deliver(sessions, sender, delivery.id, t0 + window - timedelta(seconds=5)) == 5
    assert deliver(sessions, sender, delivery.id, t0 + window) is None
    db.refresh(delivery)
    assert delivery.status == "gave_up"
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is None
    assert deliver(sessions, sender, delivery.id, t0 + 2 * window) is None
    assert len(receiver.requests) == 3


def test_overdue_deliveries_are_swept_up_and_claimed_once(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    receiver: Receiver,
    sender: Sender,
) -> None:
    create(client, partner_key, receiver.url)
    delivery = one_delivery(db, league)
    t0 = delivery.event.created_at
    assert due_deliveries(db, t0) == []  # its own message gets a head start
    assert due_deliveries(db, t0 + timedelta(minutes=1)) == [delivery.id]

    slow = replace(sender, timeout_s=5)
    receiver.statuses = [500]
    deliver(sessions, slow, delivery.id, t0 + timedelta(minutes=1))
    db.refresh(delivery)
    assert due_deliveries(db, t0 + timedelta(minutes=1, seconds=30)) == []  # retry in 10 s
    assert due_deliveries(db, t0 + timedelta(minutes=2)) == [delivery.id]
    deliver(sessions, slow, delivery.id, t0 + timedelta(minutes=2))
    assert due_deliveries(db, t0 + timedelta(hours=1)) == []  # delivered
    assert len(receiver.requests) == 2


def test_a_redirect_is_a_failure_with_a_clear_reason(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    receiver: Receiver,
    sender: Sender,
) -> None:
    create(client, partner_key, receiver.url)
    receiver.statuses = [302]
    delivery = one_delivery(db, league)
    deliver(sessions, sender, delivery.id, delivery.event.created_at)
    db.refresh(delivery)
    assert delivery.status == "failed"
    assert "redirect" in (delivery.last_error or "")
    assert len(receiver.requests) == 1  # not followed


def test_an_unreachable_endpoint_is_recorded_and_retried(
    client: TestClient,
    db: Session,
    sessions: sessionmaker[Session],
    league: League,
    partner_key: str,
    sender: Sender,
) -> None:
    create(client, partner_key, f"http://127.0.0.1:{closed_port()}/hooks")
    delivery = one_delivery(db, league)
    assert deliver(sessions, sender, delivery.id, delivery.event.created_at) == 10
    db.refresh(delivery)
    assert delivery.last_status_code is None
    assert "refused" in (delivery.last_error or "")


# --- fan-out ---------------------------------------------------------------------------------


def test_fan_out_follows_subscriptions_and_skips_disabled_endpoints(
    client: TestClient, db: Session, league: League, partner_key: str, receiver: Receiver,
    queue: redis.Redis,
) -> None:  # fmt: skip
    only_ready = create(client, partner_key, receiver.url, event_types=[ASSET_READY])
    everything = create(client, partner_key, receiver.url + "/all")
    disabled = create(client, partner_key, receiver.url + "/off")
    client.patch(
        f"/v1/webhooks/{disabled['id']}", json={"active": False}, headers=bearer(partner_key)
    )

    failed = event_for(db, league, ASSET_FAILED)
    assert failed.id in [args[0] for _raw, args in sent(queue, "ingest", FAN_OUT_TASK)]
    failed_deliveries = fan_out(db, failed.id, failed.created_at)
    db.commit()
    assert [db.get_one(WebhookDelivery, d).endpoint_id for d in failed_deliveries] == [
        everything["id"]
    ]
    ready = event_for(db, league, ASSET_READY)
    ready_deliveries = fan_out(db, ready.id, ready.created_at)
    db.commit()
    endpoints = {db.get_one(WebhookDelivery, d).endpoint_id for d in ready_deliveries}
    assert endpoints == {only_ready["id"], everything["id"]}
    # Sent after the commit, one message per delivery.
    queued = {args[0] for _raw, args in sent(queue, "ingest", DELIVER_TASK)}
    assert set(failed_deliveries + ready_deliveries) <= queued
    assert fan_out(db, ready.id, ready.created_at) == []  # a re-run creates nothing new


def test_events_of_another_league_reach_only_its_endpoints(
    client: TestClient, db: Session, other_league: League, partner_key: str, receiver: Receiver
) -> None:
    create(client, partner_key, receiver.url)
    event = event_for(db, other_league)
    assert fan_out(db, event.id, event.created_at) == []


def test_a_disabled_endpoint_gives_up_its_pending_deliveries(
    client: TestClient, db: Session, sessions: sessionmaker[Session], league: League,
    partner_key: str, receiver: Receiver, sender: Sender,
) -> None:  # fmt: skip
    created = create(client, partner_key, receiver.url)
    delivery = one_delivery(db, league)
    client.patch(
        f"/v1/webhooks/{created['id']}", json={"active": False}, headers=bearer(partner_key)
    )
    deliver(sessions, sender, delivery.id, delivery.event.created_at)
    db.refresh(delivery)
    assert delivery.status == "gave_up"
    assert delivery.last_error == "the endpoint is disabled"
    assert receiver.requests == []


def test_progress_events_are_throttled_to_every_ten_points() -> None:
    assert should_emit_progress(None, 0)
    assert not should_emit_progress(0, 9)
    assert should_emit_progress(0, 10)
    assert not should_emit_progress(10, 19)
    assert should_emit_progress(15, 31)
    assert should_emit_progress(90, 5)  # a new attempt started over


# --- the API ---------------------------------------------------------------------------------


def test_the_delivery_log_is_newest_first_and_paged(
    client: TestClient, db: Session, league: League, partner_key: str, receiver: Receiver
) -> None:
    created = create(client, partner_key, receiver.url)
    ids = [one_delivery(db, league).id for _ in range(3)]
    url = f"/v1/webhooks/{created['id']}/deliveries"
    first = client.get(url, params={"limit": 2}, headers=bearer(partner_key)).json()
    assert [d["id"] for d in first["items"]] == ids[::-1][:2]
    assert first["items"][0]["status"] == "pending"
    assert first["items"][0]["attempts"] == 0
    rest = client.get(
        url, params={"limit": 2, "before": first["next_before"]}, headers=bearer(partner_key)
    ).json()
    assert [d["id"] for d in rest["items"]] == [ids[0]]
    assert rest["next_before"] is None


def test_endpoints_can_be_listed_changed_and_deleted(
    client: TestClient, db: Session, league: League, partner_key: str, receiver: Receiver
) -> None:
    created = create(client, partner_key, receiver.url, event_types=[ASSET_READY, ASSET_READY])
    assert created["event_types"] == [ASSET_READY]
    listed = client.get("/v1/leagues/premier/webhooks", headers=bearer(partner_key)).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    patched = client.patch(
        f"/v1/webhooks/{created['id']}",
        json={"event_types": [], "url": receiver.url + "/v2"},
        headers=bearer(partner_key),
    ).json()
    assert patched["event_types"] == []
    assert patched["url"].endswith("/hooks/v2")
    one_delivery(db, league)
    gone = client.delete(f"/v1/webhooks/{created['id']}", headers=bearer(partner_key))
    assert gone.status_code == 204
    assert (
        client.get(f"/v1/webhooks/{created['id']}", headers=bearer(partner_key)).status_code == 404
    )
    db.expire_all()
    assert db.scalars(select(WebhookDelivery)).all() == []  # the log went with it


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.0.0.1/hook", "url_refused"),
        ("http://169.254.169.254/latest/meta-data", "url_refused"),
        ("ftp://example.com/hook", "url_refused"),
        ("https://user:pw@example.com/hook", "url_refused"),
    ],
)
def test_unsafe_urls_are_refused(client: TestClient, partner_key: str, url: str, code: str) -> None:
    response = client.post(
        "/v1/leagues/premier/webhooks", json={"url": url}, headers=bearer(partner_key)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


@pytest.mark.usefixtures("app_settings_without_exemption")
def test_loopback_is_refused_without_the_exemption(client: TestClient, partner_key: str) -> None:
    response = client.post(
        "/v1/leagues/premier/webhooks",
        json={"url": "http://127.0.0.1/hook"},
        headers=bearer(partner_key),
    )
    assert response.status_code == 422
    assert "not a public internet address" in response.json()["error"]["message"]


@pytest.fixture
def app_settings_without_exemption(client: TestClient, settings: Settings) -> None:
    client.app.state.settings = settings.model_copy(update={"pull_allowed_networks": []})  # type: ignore[attr-defined]  # a FastAPI app


def test_unknown_event_types_are_named(client: TestClient, partner_key: str) -> None:
    response = client.post(
        "/v1/leagues/premier/webhooks",
        json={"url": "https://example.com/h", "event_types": ["asset.ready", "asset.exploded"]},
        headers=bearer(partner_key),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_event_type"
    assert "asset.exploded" in response.json()["error"]["message"]


def test_a_league_has_a_bounded_number_of_endpoints(client: TestClient, partner_key: str) -> None:
    for n in range(webhooks.MAX_ENDPOINTS_PER_LEAGUE):
        create(client, partner_key, f"https://example.com/h{n}")
    response = client.post(
        "/v1/leagues/premier/webhooks",
        json={"url": "https://example.com/x"},
        headers=bearer(partner_key),
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "too_many_endpoints"


def test_only_the_leagues_partners_manage_its_webhooks(
    client: TestClient, db: Session, league: League, other_league: League, partner_key: str
) -> None:
    created = create(client, partner_key, "https://example.com/h")
    _key, other = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    _key, fan = create_api_key(db, role=Role.FAN)
    _key, admin = create_api_key(db, role=Role.ADMIN)
    db.commit()
    hook = f"/v1/webhooks/{created['id']}"

    assert client.get(hook).status_code == 401
    assert (
        client.post("/v1/leagues/premier/webhooks", json={"url": "https://e.com"}).status_code
        == 401
    )
    assert client.get(hook, headers=bearer(other)).status_code == 404
    assert client.delete(hook, headers=bearer(other)).status_code == 404
    assert client.get(f"{hook}/deliveries", headers=bearer(other)).status_code == 404
    assert client.get("/v1/leagues/premier/webhooks", headers=bearer(other)).status_code == 403
    assert (
        client.post(
            "/v1/leagues/premier/webhooks", json={"url": "https://e.com"}, headers=bearer(other)
        ).status_code
        == 403
    )
    assert client.get(hook, headers=bearer(fan)).status_code == 403
    assert client.get(hook, headers=bearer(admin)).status_code == 200
    assert db.get_one(WebhookEndpoint, created["id"]).league_id == league.id


def test_the_readme_snippet_verifies_our_signatures() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    snippet = readme.split("To verify:\n\n```python\n")[1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - our own README, checked for drift
    body = b'{"id":1,"type":"asset.ready"}'
    header = signature_header("whsec_abc", 1_700_000_000, body)
    readme_verify = namespace["verify_signature"]
    assert readme_verify("whsec_abc", header, body, 1_700_000_010)
    assert not readme_verify("whsec_abd", header, body, 1_700_000_010)
    assert not readme_verify("whsec_abc", header, body, 1_700_000_400)


def test_the_tasks_and_their_beat_entries_are_registered(settings: Settings) -> None:
    from core.celery_app import TASK_MODULES, app, celery_config

    assert {"ingest.webhooks", "ingest.lifecycle"} <= set(TASK_MODULES)
    for module in ("ingest.webhooks", "ingest.lifecycle"):
        importlib.import_module(module)  # what the worker does for every TASK_MODULES entry
    names = {"ingest.fan_out_event", "ingest.deliver_webhook", "ingest.retry_due_webhooks",
             "ingest.purge_asset", "ingest.watchdog", "ingest.reconcile_storage"}  # fmt: skip
    assert names <= set(app.tasks)
    scheduled = {entry["task"] for entry in celery_config(settings)["beat_schedule"].values()}
    assert {"ingest.retry_due_webhooks", "ingest.watchdog", "ingest.reconcile_storage"} <= scheduled
