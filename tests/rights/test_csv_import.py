"""Grants from a CSV sheet: parsing, row errors, and the all-or-nothing API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import create_api_key
from core.errors import InvalidInput
from core.models import League, RightsGrant, Role
from rights.csv_import import parse_csv
from tests.conftest import bearer

HEADER = "scope_type,scope_id,license_type,territories,excluded,start,end_event,end_lag_s,platforms,status,max_clip_s\n"  # noqa: E501


def test_rows_become_grants() -> None:
    sheet = (
        HEADER
        + "league,7,highlights,GB;IE EU,FR,2026-01-01T00:00:00+00:00,final_whistle,86400,web ios,approved,60\n"  # noqa: E501
    )
    (grant,) = parse_csv(sheet)
    assert grant.scope_id == "7"
    assert grant.territories == ["GB", "IE", "EU"]
    assert grant.excluded == ["FR"]
    assert grant.window.start is not None
    assert grant.window.start.at is not None
    assert grant.window.end is not None
    assert grant.window.end.lag_s == 86400
    assert grant.platforms == ["web", "ios"]
    assert grant.clip_limits.max_clip_s == 60


def test_every_bad_row_is_named() -> None:
    sheet = (
        HEADER
        + "league,1,highlights,GB,,,,,,,\nplanet,1,highlights,GB,,,,,,,\nleague,1,opera,GB,,,,,,,\n"
    )
    with pytest.raises(InvalidInput) as caught:
        parse_csv(sheet)
    assert "row 3" in str(caught.value)
    assert "row 4" in str(caught.value)
    assert "row 2" not in str(caught.value)


def test_an_empty_sheet_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no rows"):
        parse_csv(HEADER)


def test_import_is_all_or_nothing(client: TestClient, db: Session, league: League) -> None:
    _key, secret = create_api_key(db, role=Role.RIGHTS_MANAGER, leagues=[league])
    db.commit()
    before = len(list(db.scalars(select(RightsGrant))))
    good = f"league,{league.id},news_access,GB,,,,,,approved,\n"
    bad = f"league,{league.id},news_access,QQ,,,,,,approved,\n"  # not a country
    headers = {**bearer(secret), "Content-Type": "text/csv"}
    refused = client.post("/v1/rights/grants/import.csv", content=HEADER + good + bad,
                          headers=headers)  # fmt: skip
    assert refused.status_code == 422
    assert "QQ" in refused.json()["error"]["message"]
    assert len(list(db.scalars(select(RightsGrant)))) == before
    created = client.post("/v1/rights/grants/import.csv", content=HEADER + good, headers=headers)
    assert created.status_code == 201
    assert len(created.json()["created"]) == 1
