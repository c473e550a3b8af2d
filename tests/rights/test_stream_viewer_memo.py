"""The stream route remembers each request's viewer by everything that places it (peer,
headers, query string): a request that differs in any of them is placed again, so a memo
never carries one viewer's country over to another."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import League
from rights.cache import RightsCache
from tests.rights.conftest import MASTER, ClientFrom, add_asset, insert_grant, publish_media

GB = "2.125.160.217"  # GB-ENG in the City test database, not flagged anonymous
SE = "89.160.20.112"
CN = "175.16.199.0"
PROXY = "10.0.0.5"  # inside the trusted 10.0.0.0/8


def start(client: TestClient, asset_id: str, headers: dict[str, str]) -> str:
    response = client.post(f"/v1/playback/{asset_id}", headers=headers)
    assert response.status_code == 200, response.text
    url = response.json()["master_url"]
    assert isinstance(url, str)
    return "/v1/stream/" + url.split("/v1/stream/", 1)[1]


def test_each_request_is_placed_by_its_own_peer_and_headers(
    db: Session,
    geo_app: FastAPI,
    client_from: ClientFrom,
    rights_cache: RightsCache,
    rights_league: League,
) -> None:
    insert_grant(db, rights_cache, "league", rights_league.id, territories=["GB"])
    asset = add_asset(db, rights_league, title="GB-only clip")
    publish_media(geo_app, asset)
    proxy = client_from(PROXY)
    from_gb = {"X-Forwarded-For": GB}
    master = start(proxy, asset.id, from_gb)
    for _ in range(3):  # the same request again: the remembered viewer
        assert proxy.get(master, headers=from_gb).content == MASTER
    for refused in (
        proxy.get(master, headers={"X-Forwarded-For": SE}),  # one header differs
        proxy.get(master, headers=[("X-Forwarded-For", GB), ("X-Forwarded-For", SE)]),
        proxy.get(master),  # the proxy itself, no forwarded client
        client_from(CN).get(master, headers=from_gb),  # another peer, untrusted
    ):
        assert refused.status_code == 403, refused.text
        assert MASTER not in refused.content
    assert proxy.get(master, headers=from_gb).content == MASTER
    # Five distinct requests, five remembered viewers: the memo was in the path.
    assert len(geo_app.state.stream_viewers) == 5
