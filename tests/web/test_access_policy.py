"""Every endpoint states who may call it, and nothing but the listed public ones admits an
anonymous caller: a new route that forgets its check fails here."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

# (method, path) pairs anonymous callers may use; everything else must answer 401.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/highlights"),
    ("GET", "/v1/highlights/{asset_id}"),
    ("GET", "/v1/highlights/{asset_id}/poster"),
    ("GET", "/v1/highlights/{asset_id}/storyboard/{file}"),
    ("POST", "/v1/views/{token}"),  # the playback token is the credential
    ("POST", "/v1/playback/{asset_id}"),
    ("GET", "/v1/stream/{token}/{path}"),  # the signed token is the credential
    ("POST", "/v1/accounts"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/me"),
    # Leagues, teams, matches and the schedule (player_api/sports_routes.py).
    ("GET", "/v1/leagues"),
    ("GET", "/v1/leagues/{slug}"),
    ("GET", "/v1/leagues/{slug}/teams"),
    ("GET", "/v1/leagues/{slug}/teams/{team}"),
    ("GET", "/v1/matches"),
    ("GET", "/v1/matches/{match_id}"),
    ("GET", "/v1/schedule"),
    # Resumable upload parts (local store): the signed part URL is the credential, as on S3.
    ("PUT", "/v1/uploads/{upload_id}/parts/{number}"),
    # Comments: anyone who may watch the item reads them (player_api/comments).
    ("GET", "/v1/comments/{channel_id}"),
    ("GET", "/v1/comments/{channel_id}/replay"),
    ("GET", "/v1/comments/{channel_id}/events"),
}


def api_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, description) of every operation, from the OpenAPI schema."""
    return [
        (method.upper(), path, operation.get("description", ""))
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_api_endpoint_documents_who_may_call_it(app: FastAPI) -> None:
    routes = api_routes(app)
    assert len(routes) >= 10
    undocumented = [f"{m} {p}" for m, p, doc in routes if "**Who:**" not in doc]
    assert undocumented == []


def test_public_list_names_only_existing_routes(app: FastAPI) -> None:
    existing = {(method, path) for method, path, _ in api_routes(app)}
    assert existing >= PUBLIC


def test_anonymous_callers_are_refused_everywhere_else(client: TestClient, app: FastAPI) -> None:
    guarded = [(m, p) for m, p, _ in api_routes(app) if (m, p) not in PUBLIC]
    assert guarded, "expected some guarded routes"
    for method, path in guarded:
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = client.request(method, url)
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_public_routes_do_not_demand_credentials(
    client: TestClient, method: str, path: str
) -> None:
    url = re.sub(r"\{[^}]+\}", "x", path)
    assert client.request(method, url).status_code != 401
