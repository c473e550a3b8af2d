"""core.auth against PostgreSQL: API keys, fan sessions, passwords, role and league checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import core.auth
from core.auth import (
    ANONYMOUS,
    KEY_PREFIX,
    SESSION_PREFIX,
    Principal,
    create_api_key,
    create_user,
    hash_password,
    hash_secret,
    require_league,
    require_role,
    resolve_bearer,
    sign_in,
    sign_out,
    verify_password,
)
from core.errors import Forbidden, InvalidInput, Unauthenticated
from core.models import ApiKey, League, Role, UserSession

PASSWORD = "correct horse battery"
HOUR = timedelta(hours=1)


@pytest.fixture
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with cheap parameters: the production cost is ~0.25 s per hash here."""
    monkeypatch.setattr(
        core.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def _all_text_in_db(db: Session) -> str:
    """Every value of every column of the identity tables, as one string."""
    dump = []
    for table in ("api_keys", "users", "user_sessions"):
        for row in db.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed names
            dump.append(" ".join(str(value) for value in row))
    return "\n".join(dump)


# --- API keys --------------------------------------------------------------------------------


def test_api_key_secret_is_stored_only_as_a_hash(db: Session, league: League) -> None:
    key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league], name="feed")
    db.commit()
    assert secret.startswith(KEY_PREFIX)
    assert len(secret) > len(KEY_PREFIX) + 40  # 32 random bytes, base64url
    assert key.secret_hash == hash_secret(secret)
    assert key.secret_hash != secret
    assert key.prefix == secret[: len(KEY_PREFIX) + 6]
    assert secret not in _all_text_in_db(db)
    assert secret[len(KEY_PREFIX) :] not in _all_text_in_db(db)


def test_api_key_resolves_to_its_role_and_leagues(
    db: Session, league: League, other_league: League
) -> None:
    key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league, other_league])
    principal = resolve_bearer(db, secret)
    assert principal.kind == "api_key"
    assert principal.id == key.id
    assert principal.role is Role.PARTNER
    assert principal.league_ids == frozenset({league.id, other_league.id})
    assert principal.is_authenticated
    assert principal.label == f"api_key:{key.id}"


def test_each_key_gets_a_distinct_secret(db: Session, league: League) -> None:
    secrets = {create_api_key(db, role=Role.PARTNER, leagues=[league])[1] for _ in range(5)}
    assert len(secrets) == 5


def test_revoked_key_is_unauthenticated(db: Session, league: League) -> None:
    key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league])
    assert resolve_bearer(db, secret).id == key.id
    key.revoked_at = datetime.now(UTC)
    db.flush()
    with pytest.raises(Unauthenticated, match="revoked"):
        resolve_bearer(db, secret)


@pytest.mark.parametrize(
    "token",
    [KEY_PREFIX + "x" * 43, SESSION_PREFIX + "x" * 43, "x" * 50, "", "Bearer cs_key_x"],
)
def test_unknown_bearer_is_unauthenticated(db: Session, token: str) -> None:
    with pytest.raises(Unauthenticated):
        resolve_bearer(db, token)


def test_a_key_hash_is_not_itself_a_credential(db: Session, league: League) -> None:
    key, _secret = create_api_key(db, role=Role.PARTNER, leagues=[league])
    with pytest.raises(Unauthenticated):
        resolve_bearer(db, KEY_PREFIX + key.secret_hash)
    with pytest.raises(Unauthenticated):
        resolve_bearer(db, key.secret_hash)


def test_partner_key_without_league_is_refused(db: Session) -> None:
    with pytest.raises(InvalidInput, match="league"):
        create_api_key(db, role=Role.PARTNER)
    assert db.scalars(select(ApiKey)).all() == []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MODERATOR, Role.RIGHTS_MANAGER])
def test_other_roles_need_no_league(db: Session, role: Role) -> None:
    _key, secret = create_api_key(db, role=role)
    principal = resolve_bearer(db, secret)
    assert principal.role is role
    assert principal.league_ids == frozenset()


# --- passwords -------------------------------------------------------------------------------


def test_password_is_hashed_with_argon2() -> None:
    hashed = hash_password(PASSWORD)  # the production parameters
    assert hashed.startswith("$argon2")
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "!")


@pytest.mark.usefixtures("fast_argon2")
def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


@pytest.mark.parametrize("password", ["", "1234567", "x" * 257])
def test_password_length_is_enforced(password: str) -> None:
    with pytest.raises(InvalidInput, match="8 to 256"):
        hash_password(password)


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$argon2id$garbage"])
def test_verify_against_a_broken_hash_is_false(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is False


# --- users and sessions ----------------------------------------------------------------------


@pytest.mark.usefixtures("fast_argon2")
def test_user_password_is_not_stored(db: Session) -> None:
    user = create_user(db, email="Fan@Example.com", handle="fan1", password=PASSWORD)
    db.flush()
    assert user.email == "fan@example.com"
    assert user.role is Role.FAN
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in _all_text_in_db(db)


@pytest.mark.usefixtures("fast_argon2")
def test_duplicate_email_or_handle_is_refused(db: Session) -> None:
    create_user(db, email="fan@example.com", handle="fan1", password=PASSWORD)
    with pytest.raises(InvalidInput, match="already registered"):
        create_user(db, email="FAN@example.com", handle="fan2", password=PASSWORD)
    with pytest.raises(InvalidInput, match="already registered"):
        create_user(db, email="other@example.com", handle="fan1", password=PASSWORD)


@pytest.mark.usefixtures("fast_argon2")
def test_sign_in_and_resolve_a_session(db: Session, league: League) -> None:
    user = create_user(
        db,
        email="mod@example.com",
        handle="mod",
        password=PASSWORD,
        role=Role.MODERATOR,
        leagues=[league],
    )
    token = sign_in(db, email=" MOD@example.com ", password=PASSWORD, ttl=HOUR)
    assert token.startswith(SESSION_PREFIX)
    assert token not in _all_text_in_db(db)
    principal = resolve_bearer(db, token)
    assert principal == Principal(
        kind="user",
        id=user.id,
        role=Role.MODERATOR,
        league_ids=frozenset({league.id}),
        handle="mod",
    )


@pytest.mark.usefixtures("fast_argon2")
def test_wrong_password_and_unknown_email_raise_the_same_error(db: Session) -> None:
    create_user(db, email="fan@example.com", handle="fan1", password=PASSWORD)
    with pytest.raises(Unauthenticated) as wrong:
        sign_in(db, email="fan@example.com", password="nope-nope", ttl=HOUR)
    with pytest.raises(Unauthenticated) as unknown:
        sign_in(db, email="ghost@example.com", password=PASSWORD, ttl=HOUR)
    assert str(wrong.value) == str(unknown.value) == "wrong email or password"
    assert db.scalars(select(UserSession)).all() == []


def test_the_dummy_password_does_not_sign_in_a_missing_user(db: Session) -> None:
    with pytest.raises(Unauthenticated):
        sign_in(db, email="ghost@example.com", password="courtside-dummy-password", ttl=HOUR)


@pytest.mark.usefixtures("fast_argon2")
def test_session_expires(db: Session) -> None:
    create_user(db, email="fan@example.com", handle="fan1", password=PASSWORD)
    token = sign_in(db, email="fan@example.com", password=PASSWORD, ttl=HOUR)
    now = datetime.now(UTC)
    assert resolve_bearer(db, token, now=now + HOUR - timedelta(seconds=5)).kind == "user"
    with pytest.raises(Unauthenticated, match="expired"):
        resolve_bearer(db, token, now=now + HOUR + timedelta(seconds=5))


@pytest.mark.usefixtures("fast_argon2")
def test_sign_out_deletes_only_that_session(db: Session) -> None:
    create_user(db, email="fan@example.com", handle="fan1", password=PASSWORD)
    first = sign_in(db, email="fan@example.com", password=PASSWORD, ttl=HOUR)
    second = sign_in(db, email="fan@example.com", password=PASSWORD, ttl=HOUR)
    sign_out(db, first)
    db.flush()
    with pytest.raises(Unauthenticated):
        resolve_bearer(db, first)
    assert resolve_bearer(db, second).kind == "user"
    sign_out(db, "cs_ses_unknown")  # not an error


# --- authorisation ---------------------------------------------------------------------------


def _principal(role: Role | None, leagues: set[int] | None = None) -> Principal:
    return Principal(kind="api_key", id=1, role=role, league_ids=frozenset(leagues or set()))


def test_anonymous_is_unauthenticated_for_any_role() -> None:
    with pytest.raises(Unauthenticated):
        require_role(ANONYMOUS, Role.FAN)
    assert not ANONYMOUS.is_authenticated
    assert ANONYMOUS.label == "anonymous"


def test_require_role_allows_listed_roles() -> None:
    require_role(_principal(Role.PARTNER), Role.PARTNER)
    require_role(_principal(Role.MODERATOR), Role.PARTNER, Role.MODERATOR)


@pytest.mark.parametrize("role", [Role.FAN, Role.MODERATOR, Role.RIGHTS_MANAGER])
def test_require_role_forbids_other_roles(role: Role) -> None:
    with pytest.raises(Forbidden, match="partner"):
        require_role(_principal(role), Role.PARTNER)


def test_authenticated_principal_without_role_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        require_role(_principal(None), Role.FAN)


def test_admin_holds_every_role() -> None:
    for role in Role:
        require_role(_principal(Role.ADMIN), role)


def test_require_league() -> None:
    partner = _principal(Role.PARTNER, {1, 2})
    require_league(partner, 1)
    require_league(partner, 2)
    with pytest.raises(Forbidden, match="league"):
        require_league(partner, 3)
    with pytest.raises(Forbidden):
        require_league(_principal(Role.PARTNER), 1)


def test_admin_bypasses_league_scope() -> None:
    require_league(_principal(Role.ADMIN), 42)


def test_league_scope_does_not_grant_roles() -> None:
    """A moderator scoped to a league is still not a partner of it."""
    moderator = _principal(Role.MODERATOR, {1})
    require_league(moderator, 1)
    with pytest.raises(Forbidden):
        require_role(moderator, Role.PARTNER)
