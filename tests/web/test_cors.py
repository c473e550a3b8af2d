"""CORS: web players read playlists and segments; partners' browsers PUT upload parts."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_browser_may_put_upload_parts_and_read_their_etag(client: TestClient) -> None:
    preflight = client.options(
        "/v1/uploads/abc/parts/1",
        headers={
            "Origin": "https://partner.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    simple = client.get("/healthz", headers={"Origin": "https://partner.example"})
    assert "etag" in simple.headers["access-control-expose-headers"].lower()
