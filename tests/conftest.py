"""Fixtures against the real services: PostgreSQL (a savepoint per test), Redis, the local
object store in a temp dir, and the app from its composition root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.celery_app import configure_celery
from core.migrate import upgrade
from core.models import League, RightsGrant, Role
from core.settings import Settings
from core.storage import LocalObjectStore
from web.app import create_app

PG_ADMIN_URL = os.environ.get(
    "COURTSIDE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("COURTSIDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def unique_name(base: str) -> str:
    """A database name of this test process's own, so concurrent runs never share one."""
    return f"{base}_{os.getpid()}"


def drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_database(name: str) -> str:
    """Drop and create database ``name``, migrate it to head, return its URL."""
    drop_database(name)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def make_settings(tmp: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": TEST_SECRET,
        "var_dir": tmp,
        "media_dir": tmp / "media",
        "database_url": database_url,
        "redis_url": REDIS_TEST_URL,
        "log_json": False,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = unique_name("courtside_test")
    yield fresh_database(name)
    drop_database(name)


@pytest.fixture
def db_connection(pg_url: str) -> Iterator[Connection]:
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()
    engine.dispose()


@pytest.fixture
def sessions(db_connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits are savepoints inside the test's transaction (rolled back)."""
    return sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture(scope="session", autouse=True)
def celery_on_test_redis(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> None:
    """Tasks sent by code under test (after a commit) go to the test Redis, never to
    Celery's default broker (a RabbitMQ may answer on this machine's localhost)."""
    configure_celery(make_settings(tmp_path_factory.mktemp("celery"), pg_url))


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, pg_url)


@pytest.fixture
def app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = create_app(settings)
    app.state.sessionmaker = sessions
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def worldwide_live(league: League) -> RightsGrant:
    """An approved grant that licenses the league's live streams everywhere."""
    return RightsGrant(
        scope_type="league",
        scope_id=str(league.id),
        license_type="live",
        status="approved",
        worldwide=True,
    )


def worldwide_highlights(league: League) -> RightsGrant:
    """An approved grant that licenses the league's highlights everywhere."""
    return RightsGrant(
        scope_type="league",
        scope_id=str(league.id),
        license_type="highlights",
        status="approved",
        worldwide=True,
    )


@pytest.fixture
def league(db: Session) -> League:
    """A league whose highlights are licensed worldwide (tests of rights make their own)."""
    league = League(slug="premier", name="Premier Test League")
    db.add(league)
    db.flush()
    db.add(worldwide_highlights(league))
    db.commit()
    return league


@pytest.fixture
def other_league(db: Session) -> League:
    other = League(slug="other", name="Other League")
    db.add(other)
    db.flush()
    db.add(worldwide_highlights(other))
    db.commit()
    return other


@pytest.fixture
def partner_key(db: Session, league: League) -> str:
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[league], name="test partner")
    db.commit()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def store_of(client: TestClient) -> LocalObjectStore:
    app = client.app
    assert isinstance(app, FastAPI)
    store = app.state.store
    assert isinstance(store, LocalObjectStore)
    return store
