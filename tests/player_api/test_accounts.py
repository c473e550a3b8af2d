"""Fan accounts over HTTP: register, who am I, sign in, sign out, session expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import core.auth
from core.auth import hash_secret
from core.models import Role, User, UserSession
from tests.conftest import bearer

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with cheap parameters: the production cost is ~0.25 s per hash here."""
    monkeypatch.setattr(
        core.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def register(
    client: TestClient,
    email: str = "fan@example.com",
    handle: str = "hoops_fan",
    password: str = PASSWORD,
) -> httpx2.Response:
    return client.post(
        "/v1/accounts", json={"email": email, "handle": handle, "password": password}
    )


def sign_in(client: TestClient, email: str, password: str) -> httpx2.Response:
    return client.post("/v1/sessions", json={"email": email, "password": password})


def test_register_returns_a_working_fan_session(client: TestClient, db: Session) -> None:
    response = register(client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["token"].startswith("cs_ses_")

    me = client.get("/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    profile = me.json()
    assert profile["kind"] == "user"
    assert profile["role"] == "fan"
    assert profile["handle"] == "hoops_fan"
    assert profile["leagues"] == []

    user = db.scalar(select(User).where(User.email == "fan@example.com"))
    assert user is not None
    assert user.id == profile["id"]
    assert user.role is Role.FAN
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    # The session token itself is never stored, only its hash.
    stored = db.scalars(select(UserSession.secret_hash)).all()
    assert body["token"] not in stored
    assert hash_secret(body["token"]) in stored


def test_me_without_a_token_is_anonymous(client: TestClient) -> None:
    response = client.get("/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "kind": "anonymous",
        "id": None,
        "role": None,
        "handle": "",
        "leagues": [],
    }


def test_me_with_a_bad_token_is_401_not_anonymous(client: TestClient) -> None:
    response = client.get("/v1/me", headers=bearer("cs_ses_made-up"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_register_cannot_pick_a_role(client: TestClient) -> None:
    response = client.post(
        "/v1/accounts",
        json={"email": "x@example.com", "handle": "sneaky", "password": PASSWORD, "role": "admin"},
    )
    assert response.status_code == 201
    me = client.get("/v1/me", headers=bearer(response.json()["token"]))
    assert me.json()["role"] == "fan"


@pytest.mark.parametrize("email", ["fan@example.com", "FAN@Example.com", " fan@example.com"])
def test_duplicate_email_is_422(client: TestClient, db: Session, email: str) -> None:
    assert register(client).status_code == 201
    response = register(client, email=email, handle="someone_else")
    assert response.status_code == 422, response.text
    assert "already registered" in response.json()["error"]["message"]
    assert len(db.scalars(select(User)).all()) == 1


def test_duplicate_handle_is_422(client: TestClient) -> None:
    assert register(client).status_code == 201
    response = register(client, email="other@example.com")
    assert response.status_code == 422
    assert "already registered" in response.json()["error"]["message"]


@pytest.mark.parametrize("password", ["", "short", "7chars!", "x" * 257])
def test_password_of_the_wrong_length_is_422(
    client: TestClient, db: Session, password: str
) -> None:
    response = register(client, password=password)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "password" in error["message"]
    assert db.scalars(select(User)).all() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "not-an-email"), ("handle", "no spaces"), ("handle", "ab"), ("handle", "x" * 41)],
)
def test_invalid_registration_fields_are_422(
    client: TestClient, db: Session, field: str, value: str
) -> None:
    body = {"email": "fan@example.com", "handle": "hoops_fan", "password": PASSWORD, field: value}
    response = client.post("/v1/accounts", json=body)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    assert db.scalars(select(User)).all() == []


def test_sign_in_gives_a_new_working_token(client: TestClient) -> None:
    first = register(client).json()["token"]
    response = sign_in(client, "Fan@Example.com", PASSWORD)
    assert response.status_code == 200, response.text
    second = response.json()["token"]
    assert second != first
    assert client.get("/v1/me", headers=bearer(second)).json()["handle"] == "hoops_fan"


def test_wrong_password_and_unknown_email_fail_the_same_way(client: TestClient) -> None:
    register(client)
    wrong_password = sign_in(client, "fan@example.com", "not the password")
    unknown_email = sign_in(client, "nobody@example.com", PASSWORD)
    dummy = sign_in(client, "nobody@example.com", "courtside-dummy-password")
    for response in (wrong_password, unknown_email, dummy):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" not in response.json()
    assert wrong_password.json() == unknown_email.json() == dummy.json()


def test_sign_out_ends_the_session(client: TestClient) -> None:
    token = register(client).json()["token"]
    other = sign_in(client, "fan@example.com", PASSWORD).json()["token"]
    response = client.delete("/v1/sessions/current", headers=bearer(token))
    assert response.status_code == 204
    assert client.get("/v1/me", headers=bearer(token)).status_code == 401
    # Only that session: the fan's other device stays signed in.
    assert client.get("/v1/me", headers=bearer(other)).status_code == 200
    # Signing out again with the dead token is refused.
    assert client.delete("/v1/sessions/current", headers=bearer(token)).status_code == 401


def test_sign_out_needs_a_user_session(client: TestClient, partner_key: str) -> None:
    assert client.delete("/v1/sessions/current").status_code == 401
    assert client.delete("/v1/sessions/current", headers=bearer(partner_key)).status_code == 401
    # The partner key still works afterwards.
    assert client.get("/v1/me", headers=bearer(partner_key)).json()["role"] == "partner"


def test_expired_session_is_401(client: TestClient, db: Session) -> None:
    token = register(client).json()["token"]
    found = db.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(token)))
    assert found is not None
    found.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.commit()
    response = client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_session_lifetime_follows_settings(client: TestClient, db: Session) -> None:
    before = datetime.now(UTC)
    token = register(client).json()["token"]
    found = db.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(token)))
    assert found is not None
    ttl = timedelta(days=30)
    assert (
        before + ttl - timedelta(minutes=1) < found.expires_at < before + ttl + timedelta(minutes=1)
    )
