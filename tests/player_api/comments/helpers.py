"""Talking to a channel the way clients do."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from tests.conftest import bearer


def receive(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    frame = json.loads(ws.receive_text())
    assert isinstance(frame, list)
    return frame


def receive_until(ws: WebSocketTestSession, kind: str, **match: object) -> dict[str, Any]:
    """The next event of ``kind`` (with those fields), skipping others."""
    for _ in range(50):
        for event in receive(ws):
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event
    raise AssertionError(f"no {kind} event")


def send(ws: WebSocketTestSession, **frame: object) -> None:
    ws.send_text(json.dumps(frame))


def post(client: TestClient, channel: str, token: str, text: str, **extra: object) -> Any:
    return client.post(
        f"/v1/comments/{channel}", json={"text": text, **extra}, headers=bearer(token)
    )


def history(client: TestClient, channel: str, token: str | None = None, **params: str | int) -> Any:
    headers = bearer(token) if token else {}
    response = client.get(f"/v1/comments/{channel}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()
