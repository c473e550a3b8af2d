"""Health probes, the error shape, the API docs, request ids and the fan page."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import configure_celery
from tests.conftest import make_settings
from web.app import create_app

ERROR_KEYS = {"code", "message", "details"}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


@pytest.fixture
def no_redis_client(
    tmp_path: Path, pg_url: str, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, pg_url, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    app = create_app(settings)
    app.state.sessionmaker = sessions
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        # create_app configured the process-wide Celery app with the dead broker: undo that.
        configure_celery(make_settings(tmp_path, pg_url))


# --- health ----------------------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_everything_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {
        "database": "ok",
        "redis": "ok",
        "store": "ok",
        "ffmpeg": "ok",
        "geoip": "ok",
    }


def test_readyz_is_503_naming_redis_when_it_is_down(no_redis_client: TestClient) -> None:
    response = no_redis_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"].startswith("error:")
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["store"] == "ok"
    assert body["checks"]["ffmpeg"] == "ok"
    # Liveness does not depend on Redis.
    assert no_redis_client.get("/healthz").status_code == 200


def test_readyz_is_503_naming_ffmpeg_when_it_is_missing(
    tmp_path: Path, pg_url: str, sessions: sessionmaker[Session]
) -> None:
    app = create_app(make_settings(tmp_path, pg_url, ffmpeg_bin="no-such-ffmpeg-binary"))
    app.state.sessionmaker = sessions
    with TestClient(app) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "no-such-ffmpeg-binary" in checks["ffmpeg"]
    assert checks["redis"] == "ok"


# --- errors ----------------------------------------------------------------------------------


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.put("/v1/highlights")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.json()["error"]) == ERROR_KEYS


def test_validation_errors_share_the_shape(client: TestClient) -> None:
    response = client.post("/v1/accounts", json={})
    assert response.status_code == 422
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == "validation_error"
    assert isinstance(error["details"], list)
    assert {"field", "problem"} <= set(error["details"][0])


def test_project_errors_share_the_shape(client: TestClient) -> None:
    response = client.get("/v1/assets/abc")  # anonymous: 401
    assert response.status_code == 401
    assert set(response.json()["error"]) == ERROR_KEYS


# --- docs ------------------------------------------------------------------------------------


def test_openapi_lists_the_public_api(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "Courtside API"
    paths = spec["paths"]
    for path in (
        "/v1/assets",
        "/v1/assets/{asset_id}",
        "/v1/highlights",
        "/v1/playback/{asset_id}",
    ):
        assert path in paths
    assert "post" in paths["/v1/assets"]
    assert "post" in paths["/v1/playback/{asset_id}"]
    assert "get" in paths["/v1/highlights"]
    assert "/" not in paths  # the fan page is not an API operation


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# --- request ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["abc-123", "req.2026_11_29", "X" * 64])
def test_sane_request_id_is_echoed(client: TestClient, given: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given", ["has spaces", "<script>alert(1)</script>", "X" * 65, "semi;colon", "new\\nline"]
)
def test_unsafe_request_id_is_replaced(client: TestClient, given: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": given})
    echoed = response.headers["x-request-id"]
    assert echoed != given
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_request_id_is_on_error_responses_too(client: TestClient) -> None:
    response = client.get("/nowhere", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-me"


# --- the fan page ----------------------------------------------------------------------------


def test_fan_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'src="/static/vendor/hls.min.js"' in html
    assert 'src="/static/app.js"' in html
    assert "<video" in html


def test_fan_page_script_is_served(client: TestClient) -> None:
    response = client.get("/static/app.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert "/v1/highlights" in response.text
    assert client.get("/static/style.css").status_code == 200


def test_static_files_do_not_leak_outside_their_directory(client: TestClient) -> None:
    response = client.get("/static/%2e%2e/app.py")
    assert response.status_code == 404
    assert "create_app" not in response.text
