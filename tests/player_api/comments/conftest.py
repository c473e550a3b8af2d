"""Comment tests run against the real app (TestClient), PostgreSQL and Redis database 7
(only ``comments:*`` keys are touched there).

Unlike most API tests these commit for real: several connections, the archiver and the
thread pool use the database at once, which one savepointed connection cannot serve. Every
test makes its own league, users and items (unique names), in the session's test database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from core.auth import SESSION_PREFIX, hash_secret
from core.models import Asset, League, Role, User, UserSession, utcnow
from core.settings import Settings
from tests.conftest import (
    drop_database,
    fresh_database,
    make_settings,
    unique_name,
    worldwide_highlights,
)
from tests.published import add_asset
from web.app import create_app

COMMENTS_REDIS_URL = "redis://127.0.0.1:6379/7"


def clear_comment_keys(url: str = COMMENTS_REDIS_URL) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("comments:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Iterator[Settings]:
    clear_comment_keys()
    yield make_settings(
        tmp_path,
        pg_url,
        redis_url=COMMENTS_REDIS_URL,
        comments_flush_ms=20,
        comments_rights_recheck_s=0.2,
        # 3 messages a minute, then 30 s: a slow machine cannot refill the bucket mid-test.
        comments_rate_window_s=60,
        comments_cooldown_s=30,
        log_level="WARNING",
    )
    clear_comment_keys()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of the comment tests' own: they commit for real (see above), and what they
    leave must not show in the other tests' catalog, accounts or counts."""
    name = unique_name("courtside_comments")
    yield fresh_database(name)
    drop_database(name)


@pytest.fixture
def db(pg_url: str) -> Iterator[Session]:
    engine = create_engine(pg_url)
    with sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def league(db: Session) -> League:
    league = League(slug=f"l{secrets.token_hex(6)}", name="Comment League")
    db.add(league)
    db.flush()
    db.add(worldwide_highlights(league))
    db.commit()
    return league


@pytest.fixture
def channel(db: Session, league: League) -> Asset:
    asset = add_asset(db, league, title="a goal")
    asset.duration_s = 30.0
    db.commit()
    return asset


def make_user(
    db: Session,
    handle: str,
    *,
    role: Role = Role.FAN,
    created_at: datetime | None = None,
    leagues: list[League] | None = None,
) -> tuple[User, str]:
    """A user and a session token for them (no password hashing: tests need many)."""
    unique = f"{handle}-{secrets.token_hex(4)}"
    user = User(
        email=f"{unique}@example.com",
        handle=unique,
        password_hash="unused",
        role=role,
        created_at=created_at or utcnow() - timedelta(days=30),
        leagues=leagues or [],
    )
    db.add(user)
    db.flush()
    token = SESSION_PREFIX + secrets.token_urlsafe(16)
    db.add(
        UserSession(
            user_id=user.id, secret_hash=hash_secret(token), expires_at=utcnow() + timedelta(days=1)
        )
    )
    db.commit()
    return user, token


@pytest.fixture
def other_league_channel(db: Session) -> Asset:
    other = League(slug=f"o{secrets.token_hex(6)}", name="Other Comment League")
    db.add(other)
    db.flush()
    db.add(worldwide_highlights(other))
    db.commit()
    return add_asset(db, other, title="elsewhere")
