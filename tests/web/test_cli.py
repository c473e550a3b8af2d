"""The ``courtside`` command line, run in-process against a fresh SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

import core.auth
from core.auth import KEY_PREFIX, resolve_bearer, sign_in
from core.db import engine_for
from core.errors import Unauthenticated
from core.models import ApiKey, League, Role, User
from core.settings import get_settings
from web.cli import main


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name in ("COURTSIDE_SECRET_KEY", "COURTSIDE_ENVIRONMENT", "COURTSIDE_NEW_USER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURTSIDE_DATABASE_URL", url)
    monkeypatch.setenv("COURTSIDE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("COURTSIDE_LOG_JSON", "false")
    get_settings.cache_clear()
    try:
        yield url
    finally:
        get_settings.cache_clear()
        # Close the SQLite connections the CLI pooled. Never clear the whole engine cache:
        # other engines' pooled connections would be dropped unclosed.
        engine_for(url).dispose()


@pytest.fixture
def migrated(db_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    return db_url


@pytest.fixture
def demo_league(migrated: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["league", "create", "demo", "--name", "Demo League"]) == 0
    capsys.readouterr()
    return migrated


def _session(url: str) -> Session:
    return Session(engine_for(url))


def test_migrate_creates_the_schema(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "database at head" in capsys.readouterr().out
    tables = set(inspect(engine_for(db_url)).get_table_names())
    assert {"leagues", "users", "api_keys", "assets", "renditions"} <= tables
    # Running it again is harmless.
    assert main(["migrate"]) == 0


def test_settings_come_from_the_environment(db_url: str) -> None:
    assert get_settings().db_url == db_url


def test_league_create(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["league", "create", "demo", "--name", "Demo League"]) == 0
    assert "league created: demo" in capsys.readouterr().out
    assert main(["league", "create", "bare"]) == 0
    with _session(migrated) as session:
        leagues = {lg.slug: lg.name for lg in session.scalars(select(League))}
    assert leagues == {"demo": "Demo League", "bare": "bare"}


def test_partner_key_create_prints_a_working_secret(
    demo_league: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "create", "--role", "partner", "--league", "demo", "--name", "feed"]) == 0
    out = capsys.readouterr().out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith(KEY_PREFIX)
    with _session(demo_league) as session:
        principal = resolve_bearer(session, secret)
        league = session.scalars(select(League).where(League.slug == "demo")).one()
        key = session.scalars(select(ApiKey)).one()
        assert key.name == "feed"
        assert key.secret_hash != secret
    assert principal.kind == "api_key"
    assert principal.role is Role.PARTNER
    assert principal.league_ids == frozenset({league.id})
    # Printed once: only a prefix of it is shown elsewhere in the output.
    assert out.count(secret) == 1


def test_key_create_for_an_unknown_league_exits_2(
    demo_league: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["key", "create", "--role", "partner", "--league", "demo", "--league", "nope"])
    assert code == 2
    captured = capsys.readouterr()
    assert "nope" in captured.err
    assert "no such league" in captured.err
    assert KEY_PREFIX not in captured.out
    with _session(demo_league) as session:
        assert session.scalars(select(ApiKey)).all() == []


def test_partner_key_without_a_league_exits_2(
    demo_league: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "create", "--role", "partner"]) == 2
    assert "league" in capsys.readouterr().err
    with _session(demo_league) as session:
        assert session.scalars(select(ApiKey)).all() == []


def test_admin_key_needs_no_league(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "create", "--role", "admin"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    with _session(migrated) as session:
        assert resolve_bearer(session, secret).role is Role.ADMIN
        with pytest.raises(Unauthenticated):
            resolve_bearer(session, secret + "x")


@pytest.mark.usefixtures("migrated")
def test_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["key", "create", "--role", "superuser"])
    assert exit_info.value.code == 2
    assert "superuser" in capsys.readouterr().err


def test_user_create_with_password_from_the_environment(
    demo_league: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        core.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setenv("COURTSIDE_NEW_USER_PASSWORD", "a long enough password")
    argv = ["user", "create", "--email", "Mod@Example.com", "--handle", "mod"]
    assert main([*argv, "--role", "moderator", "--league", "demo"]) == 0
    assert "user created: mod@example.com (moderator)" in capsys.readouterr().out
    with _session(demo_league) as session:
        user = session.scalars(select(User)).one()
        assert user.role is Role.MODERATOR
        assert [lg.slug for lg in user.leagues] == ["demo"]
        assert user.password_hash.startswith("$argon2")
        token = sign_in(
            session,
            email="mod@example.com",
            password="a long enough password",
            ttl=timedelta(hours=1),
        )
        assert resolve_bearer(session, token).handle == "mod"

    # The same email again is refused with exit code 2 and nothing added.
    assert main(["user", "create", "--email", "mod@example.com", "--handle", "mod2"]) == 2
    assert "already registered" in capsys.readouterr().err
    with _session(demo_league) as session:
        assert len(session.scalars(select(User)).all()) == 1


def test_user_create_with_a_short_password_exits_2(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COURTSIDE_NEW_USER_PASSWORD", "short")
    assert main(["user", "create", "--email", "f@example.com", "--handle", "f"]) == 2
    assert "8 to 256" in capsys.readouterr().err
    with _session(migrated) as session:
        assert session.scalars(select(User)).all() == []


@pytest.mark.usefixtures("migrated")
def test_user_create_for_an_unknown_league_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COURTSIDE_NEW_USER_PASSWORD", "a long enough password")
    argv = ["user", "create", "--email", "f@example.com", "--handle", "f", "--league", "ghost"]
    assert main(argv) == 2
    assert "ghost" in capsys.readouterr().err


def test_duplicate_league_exits_2_with_a_message(
    demo_league: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["league", "create", "demo"])
    except Exception as exc:  # the bug: anything escaping main() is a traceback
        raise AssertionError(f"main() raised {type(exc).__name__}") from exc
    assert code == 2
    assert "demo" in capsys.readouterr().err
    with _session(demo_league) as session:
        assert len(session.scalars(select(League)).all()) == 1
