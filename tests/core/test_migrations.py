"""Alembic migrations: up, down and up again on SQLite and PostgreSQL, and the models' metadata
matches the migrated schema exactly (so autogenerate has nothing to add)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, create_engine, inspect, text

import core.models  # noqa: F401 - registers every table on Base.metadata
from core.db import Base
from core.migrate import alembic_config, downgrade, upgrade
from tests.conftest import drop_database, fresh_database, unique_name

EXPECTED_TABLES = {*Base.metadata.tables, "alembic_version"}
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'courtside.db'}"
        upgrade(url)  # also creates the missing directory
        yield url
        return
    name = unique_name("courtside_migr_test")
    yield fresh_database(name)  # migrated to head
    drop_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _head(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _schema_diff(engine: Engine, metadata: MetaData = Base.metadata) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_creates_every_table_at_head(engine: Engine) -> None:
    assert _tables(engine) == EXPECTED_TABLES
    assert _head(engine) == HEAD


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    assert _schema_diff(engine) == []


def test_the_comparison_notices_drift(engine: Engine) -> None:
    """Guards the test above: a model change the migrations lack is reported."""
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["leagues"].append_column(Column("country", String(2)))
    diff = _schema_diff(engine, drifted)
    assert len(diff) == 1
    assert "country" in repr(diff)


def test_downgrade_to_base_and_upgrade_again(database_url: str, engine: Engine) -> None:
    downgrade(database_url, "base")
    assert _tables(engine) <= {"alembic_version"}
    assert _head(engine) is None

    upgrade(database_url)
    assert _tables(engine) == EXPECTED_TABLES
    assert _head(engine) == HEAD
    assert _schema_diff(engine) == []
    # The re-created schema is usable.
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO leagues (slug, name, created_at) VALUES ('x', 'X', CURRENT_TIMESTAMP)"
            )
        )
        assert connection.execute(text("SELECT count(*) FROM leagues")).scalar_one() == 1


def test_upgrade_at_head_is_a_no_op(database_url: str, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO leagues (slug, name, created_at) "
                "VALUES ('keep', 'Keep', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url)
    with engine.connect() as connection:
        slugs = connection.execute(text("SELECT slug FROM leagues")).scalars().all()
    assert slugs == ["keep"]
