"""Identity: API keys and fan sessions (both opaque bearer secrets, stored hashed), passwords
(argon2), and the principal every endpoint authorises against."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Forbidden, InvalidInput, Unauthenticated
from core.models import ApiKey, League, Role, User, UserSession, utcnow

KEY_PREFIX = "cs_key_"
SESSION_PREFIX = "cs_ses_"
_hasher = PasswordHasher()
# Verifying against this keeps sign-in timing the same whether or not the email exists.
_DUMMY_HASH = _hasher.hash("courtside-dummy-password")


@dataclass(frozen=True)
class Principal:
    """Who is calling. Anonymous viewers are principals too, with no role."""

    kind: str  # "anonymous" | "user" | "api_key"
    id: int | None = None
    role: Role | None = None
    league_ids: frozenset[int] = field(default_factory=frozenset)
    handle: str = ""

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind


ANONYMOUS = Principal(kind="anonymous")


def hash_secret(secret: str) -> str:
    """SHA-256 is right for 256-bit random secrets (not for passwords: see hash_password)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    if not 8 <= len(password) <= 256:
        raise InvalidInput("a password must be 8 to 256 characters long")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_api_key(
    session: Session, *, role: Role, leagues: Iterable[League] = (), name: str = ""
) -> tuple[ApiKey, str]:
    """A new key and its secret. The secret is returned once and never stored."""
    league_list = list(leagues)
    if role is Role.PARTNER and not league_list:
        raise InvalidInput("a partner key must be scoped to at least one league")
    secret = _new_secret(KEY_PREFIX)
    key = ApiKey(
        name=name,
        prefix=secret[: len(KEY_PREFIX) + 6],
        secret_hash=hash_secret(secret),
        role=role,
        leagues=league_list,
    )
    session.add(key)
    session.flush()
    return key, secret


def create_user(
    session: Session,
    *,
    email: str,
    handle: str,
    password: str,
    role: Role = Role.FAN,
    leagues: Iterable[League] = (),
) -> User:
    email = email.strip().lower()
    taken = session.scalar(select(User.id).where((User.email == email) | (User.handle == handle)))
    if taken is not None:
        raise InvalidInput("that email or handle is already registered")
    user = User(
        email=email,
        handle=handle,
        password_hash=hash_password(password),
        role=role,
        leagues=list(leagues),
    )
    session.add(user)
    session.flush()
    return user


def sign_in(session: Session, *, email: str, password: str, ttl: timedelta) -> str:
    """A new session token for valid credentials; the same error for every failure."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if not verify_password(user.password_hash if user else _DUMMY_HASH, password) or not user:
        raise Unauthenticated("wrong email or password")
    secret = _new_secret(SESSION_PREFIX)
    session.add(
        UserSession(user_id=user.id, secret_hash=hash_secret(secret), expires_at=utcnow() + ttl)
    )
    session.flush()
    return secret


def sign_out(session: Session, token: str) -> None:
    found = session.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(token)))
    if found is not None:
        session.delete(found)


def resolve_bearer(session: Session, token: str, *, now: datetime | None = None) -> Principal:
    """The principal behind a bearer secret, or Unauthenticated."""
    if token.startswith(KEY_PREFIX):
        return _principal_for_key(session, token)
    if token.startswith(SESSION_PREFIX):
        return _principal_for_session(session, token, now or utcnow())
    raise Unauthenticated("unrecognised bearer token")


def _principal_for_key(session: Session, token: str) -> Principal:
    key = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(token)))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key")
    leagues = frozenset(league.id for league in key.leagues)
    return Principal(kind="api_key", id=key.id, role=key.role, league_ids=leagues)


def _principal_for_session(session: Session, token: str, now: datetime) -> Principal:
    found = session.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(token)))
    if found is None or found.expires_at <= now:
        raise Unauthenticated("session expired; sign in again")
    user = found.user
    leagues = frozenset(league.id for league in user.leagues)
    return Principal(
        kind="user", id=user.id, role=user.role, league_ids=leagues, handle=user.handle
    )


def require_role(principal: Principal, *roles: Role) -> None:
    """Deny unless the principal holds one of ``roles`` (admins hold every role)."""
    if not principal.is_authenticated:
        raise Unauthenticated("sign in or send an API key")
    if principal.role is not Role.ADMIN and principal.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(r.value for r in roles)}")


def require_league(principal: Principal, league_id: int) -> None:
    """Partners act only for the leagues they are scoped to."""
    if principal.role is not Role.ADMIN and league_id not in principal.league_ids:
        raise Forbidden("this key is not scoped to that league")
