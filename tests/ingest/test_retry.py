"""POST /v1/assets/{id}/retry: a failed asset is processed again from its stored source."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import Asset, AssetStatus, League
from tests.conftest import bearer


def _asset(db: Session, league: League, status: AssetStatus) -> Asset:
    asset = Asset(league=league, title="t", status=status, source_key="sources/x/original",
                  error_code="clip_too_early", error_message="later")  # fmt: skip
    db.add(asset)
    db.commit()
    return asset


def test_a_failed_asset_is_queued_again(
    client: TestClient, db: Session, league: League, partner_key: str
) -> None:
    asset = _asset(db, league, AssetStatus.FAILED)
    response = client.post(f"/v1/assets/{asset.id}/retry", headers=bearer(partner_key))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["error"] is None


def test_only_failed_assets_can_be_retried(
    client: TestClient, db: Session, league: League, partner_key: str
) -> None:
    asset = _asset(db, league, AssetStatus.READY)
    response = client.post(f"/v1/assets/{asset.id}/retry", headers=bearer(partner_key))
    assert response.status_code == 409
    assert "only a failed asset" in response.json()["error"]["message"]


def test_retry_needs_the_leagues_partner(client: TestClient, db: Session, league: League) -> None:
    asset = _asset(db, league, AssetStatus.FAILED)
    assert client.post(f"/v1/assets/{asset.id}/retry").status_code == 401
