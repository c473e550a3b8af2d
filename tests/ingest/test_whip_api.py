"""WHIP (RFC 9725) at the API: the stream key, the SDP offer's limits, the answer's ICE
candidates (127.0.0.1 only), DELETE from this process and from another, and the cap.

No media flows here (the end-to-end test does that): a session waits for ICE, which is all
these checks need."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.models import LiveState, LiveStream
from core.settings import Settings
from core.webrtc import candidate_addresses
from ingest.whip import WhipSessions
from tests.conftest import bearer, make_settings
from tests.webrtc_peers import offer_sdp
from web.app import create_app

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture(scope="module")
def offer() -> str:
    return offer_sdp()


@pytest.fixture
def whip_settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, pg_url, webrtc_host_addresses=["127.0.0.1"], whip_max_sessions=2)


def build(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = create_app(settings)
    app.state.sessionmaker = sessions
    return app


@pytest.fixture
def whip_app(whip_settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    return build(whip_settings, sessions)


@pytest.fixture
def client(whip_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(whip_app) as test_client:
        yield test_client


def held(app: FastAPI) -> WhipSessions:
    sessions = app.state.whip
    assert isinstance(sessions, WhipSessions)
    return sessions


def create_stream(client: TestClient, partner_key: str) -> tuple[str, str]:
    body = {"league": "premier", "title": "Final, live"}
    created = client.post("/v1/live", json=body, headers=bearer(partner_key)).json()
    return str(created["id"]), str(created["stream_key"])


def whip(
    client: TestClient, stream_id: str, key: str | None, body: str
) -> tuple[int, dict[str, str]]:
    """Status, and the headers plus the body as ``_body``."""
    headers = {**SDP, **(bearer(key) if key else {})}
    response = client.post(f"/v1/live/{stream_id}/whip", content=body, headers=headers)
    return response.status_code, dict(response.headers) | {"_body": response.text}


def error_code(headers: dict[str, str]) -> str:
    return str(json.loads(headers["_body"])["error"]["code"])


def test_publish_answers_201_with_an_sdp_answer_on_loopback_only(
    client: TestClient, whip_app: FastAPI, partner_key: str, offer: str
) -> None:
    stream_id, key = create_stream(client, partner_key)
    status, headers = whip(client, stream_id, key, offer)
    assert status == 201, headers["_body"]
    assert headers["content-type"].startswith("application/sdp")
    location = headers["location"]
    assert location.startswith(f"/v1/live/{stream_id}/whip/")
    candidates = candidate_addresses(headers["_body"])
    assert candidates, "the answer must carry its candidates (no trickle)"
    assert {address for address, _type in candidates} == {"127.0.0.1"}
    assert {kind for _address, kind in candidates} == {"host"}
    assert len(held(whip_app)) == 1

    wrong = client.delete(location, headers=bearer("cs_live_not-the-key"))
    assert wrong.status_code == 404
    assert client.patch(location, headers=bearer(key)).status_code == 405
    assert client.delete(location, headers=bearer(key)).status_code == 204
    assert len(held(whip_app)) == 0
    assert client.delete(location, headers=bearer(key)).status_code == 404


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (None, 401, "unauthenticated"),
        ("cs_live_wrong-key-0123456789", 401, "unauthenticated"),
        ("not-even-a-stream-key", 401, "unauthenticated"),
    ],
)
def test_bad_keys_are_refused_and_leave_no_peer(
    client: TestClient,
    whip_app: FastAPI,
    partner_key: str,
    offer: str,
    key: str | None,
    status: int,
    code: str,
) -> None:
    stream_id, _key = create_stream(client, partner_key)
    got, headers = whip(client, stream_id, key, offer)
    assert (got, error_code(headers)) == (status, code)
    assert len(held(whip_app)) == 0


def test_another_streams_key_is_forbidden(
    client: TestClient, whip_app: FastAPI, partner_key: str, offer: str
) -> None:
    stream_id, _key = create_stream(client, partner_key)
    _other_id, other_key = create_stream(client, partner_key)
    got, headers = whip(client, stream_id, other_key, offer)
    assert (got, error_code(headers)) == (403, "forbidden")
    assert "another stream" in headers["_body"]
    assert len(held(whip_app)) == 0


def test_a_revoked_key_is_refused(
    client: TestClient, whip_app: FastAPI, partner_key: str, offer: str
) -> None:
    stream_id, key = create_stream(client, partner_key)
    revoked = client.delete(f"/v1/live/{stream_id}/key", headers=bearer(partner_key))
    assert revoked.status_code == 204
    got, headers = whip(client, stream_id, key, offer)
    assert (got, error_code(headers)) == (401, "unauthenticated")
    assert "revoked" in headers["_body"]
    assert len(held(whip_app)) == 0


def test_offer_limits(client: TestClient, whip_app: FastAPI, partner_key: str, offer: str) -> None:
    stream_id, key = create_stream(client, partner_key)
    too_large = offer + "a=x-padding:" + "x" * 70_000 + "\r\n"
    got, headers = whip(client, stream_id, key, too_large)
    assert (got, error_code(headers)) == (413, "too_large")
    response = client.post(
        f"/v1/live/{stream_id}/whip",
        content=offer,
        headers={"Content-Type": "text/plain", **bearer(key)},
    )
    assert response.status_code == 415
    got, headers = whip(client, stream_id, key, "v=0\r\nnot an offer")
    assert got == 422, headers["_body"]
    got, headers = whip(client, stream_id, key, offer_sdp(video=False))
    assert got == 422
    assert "video" in headers["_body"]
    assert len(held(whip_app)) == 0


def test_sessions_per_process_are_capped(
    client: TestClient, whip_app: FastAPI, partner_key: str, offer: str
) -> None:
    streams = [create_stream(client, partner_key) for _ in range(3)]
    statuses = [whip(client, sid, key, offer)[0] for sid, key in streams[:2]]
    assert statuses == [201, 201]
    got, headers = whip(client, *streams[2], offer)
    assert (got, error_code(headers)) == (503, "capacity_reached")
    assert "maximum of 2" in headers["_body"]
    assert len(held(whip_app)) == 2


def test_delete_reaching_another_process_closes_the_session(
    client: TestClient,
    whip_app: FastAPI,
    whip_settings: Settings,
    sessions: sessionmaker[Session],
    partner_key: str,
    offer: str,
) -> None:
    """Two API processes (two apps, each with its own event loop): the DELETE reaches the
    one that does not hold the peer connection, which signals the holder through Redis."""
    stream_id, key = create_stream(client, partner_key)
    status, headers = whip(client, stream_id, key, offer)
    assert status == 201
    with TestClient(build(whip_settings, sessions)) as other:
        assert other.delete(headers["location"], headers=bearer("cs_live_nope")).status_code == 404
        assert other.delete(headers["location"], headers=bearer(key)).status_code == 204
        deadline = time.monotonic() + 5
        while len(held(whip_app)) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(held(whip_app)) == 0


@pytest.mark.parametrize(
    ("publishing", "state", "message"),
    [
        (True, LiveState.CONNECTING, "already has a publisher"),
        (False, LiveState.ENDED, "cannot start again"),
    ],
)
def test_a_stream_that_cannot_take_this_publisher_is_a_conflict(
    client: TestClient,
    whip_app: FastAPI,
    db: Session,
    partner_key: str,
    offer: str,
    publishing: bool,
    state: LiveState,
    message: str,
) -> None:
    stream_id, key = create_stream(client, partner_key)
    stream = db.get_one(LiveStream, stream_id)
    stream.publishing, stream.state = publishing, state
    db.commit()
    got, headers = whip(client, stream_id, key, offer)
    assert (got, error_code(headers)) == (409, "conflict")
    assert message in headers["_body"]
    assert len(held(whip_app)) == 0
