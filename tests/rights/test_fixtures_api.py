"""Competitions, seasons, matches and a clip's match, through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.auth import create_api_key
from core.models import Asset, AssetStatus, League, Match, Role
from tests.conftest import bearer


def _tree(client: TestClient, key: str) -> int:
    headers = bearer(key)
    comp = client.post("/v1/leagues/premier/competitions", json={"slug": "cup", "name": "Cup"},
                       headers=headers)  # fmt: skip
    assert comp.status_code == 201, comp.text
    season = client.post(f"/v1/competitions/{comp.json()['id']}/seasons", json={"name": "2026"},
                         headers=headers)  # fmt: skip
    assert season.status_code == 201
    match = client.post(
        f"/v1/seasons/{season.json()['id']}/matches",
        json={"home": "Reds", "away": "Blues", "kickoff": "2026-05-01T19:00:00Z"},
        headers=headers,
    )
    assert match.status_code == 201
    match_id: int = match.json()["id"]
    return match_id


def test_a_partner_builds_the_tree_and_times_the_match(
    client: TestClient, db: Session, partner_key: str
) -> None:
    match_id = _tree(client, partner_key)
    response = client.patch(f"/v1/matches/{match_id}", headers=bearer(partner_key),
                            json={"final_whistle": "2026-05-01T20:55:00Z"})  # fmt: skip
    assert response.status_code == 200
    match = db.get(Match, match_id)
    assert match is not None
    db.refresh(match)
    assert match.final_whistle is not None
    assert match.final_whistle.hour == 20


def test_times_must_be_zoned_and_in_order(client: TestClient, partner_key: str) -> None:
    match_id = _tree(client, partner_key)
    naive = client.patch(f"/v1/matches/{match_id}", headers=bearer(partner_key),
                         json={"final_whistle": "2026-05-01T20:55:00"})  # fmt: skip
    assert naive.status_code == 422
    backwards = client.patch(f"/v1/matches/{match_id}", headers=bearer(partner_key),
                             json={"final_whistle": "2026-05-01T18:00:00Z"})  # fmt: skip
    assert backwards.status_code == 422


def test_a_clip_joins_its_match(
    client: TestClient, db: Session, league: League, other_league: League, partner_key: str
) -> None:
    match_id = _tree(client, partner_key)
    clip = Asset(league=league, title="goal", status=AssetStatus.READY)
    foreign = Asset(league=other_league, title="theirs", status=AssetStatus.READY)
    db.add_all([clip, foreign])
    db.commit()
    ok = client.put(f"/v1/assets/{clip.id}/match", json={"match_id": match_id},
                    headers=bearer(partner_key))  # fmt: skip
    assert ok.status_code == 200
    db.refresh(clip)
    assert clip.match_id == match_id
    refused = client.put(f"/v1/assets/{foreign.id}/match", json={"match_id": match_id},
                         headers=bearer(partner_key))  # fmt: skip
    assert refused.status_code == 403


@pytest.mark.usefixtures("league")
def test_another_leagues_partner_cannot_add_competitions(
    client: TestClient, db: Session, other_league: League
) -> None:
    _key, theirs = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    db.commit()
    response = client.post("/v1/leagues/premier/competitions", json={"slug": "x", "name": "X"},
                           headers=bearer(theirs))  # fmt: skip
    assert response.status_code == 403
