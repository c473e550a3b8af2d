"""The WebSocket: history on join, posting and receiving, acks and errors to the poster."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession

from core.models import Asset
from tests.player_api.comments.conftest import make_user


def receive(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    frame = json.loads(ws.receive_text())
    assert isinstance(frame, list)
    return frame


def receive_until(ws: WebSocketTestSession, kind: str) -> dict[str, Any]:
    for _ in range(20):
        for event in receive(ws):
            if event["type"] == kind:
                return event
    raise AssertionError(f"no {kind} event")


def test_a_post_reaches_every_client_and_acks_its_poster(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _user, token = make_user(db, "ana")
    url = f"/v1/comments/{channel.id}/ws"
    with (
        client.websocket_connect(url) as reader,
        client.websocket_connect(f"{url}?token={token}") as poster,
    ):
        assert receive(reader)[0]["type"] == "mode"
        assert receive(poster)[0]["type"] == "mode"
        poster.send_text(
            json.dumps({"type": "post", "text": "what a goal", "nonce": "n1", "media_ms": 1500})
        )
        seen = receive_until(reader, "message")
        assert seen["text"] == "what a goal"
        assert seen["author"] == {"id": f"user:{_user.id}", "handle": _user.handle, "badge": None}
        assert seen["media_ms"] == 1500
        assert seen["state"] == "visible"
        ack = receive_until(poster, "ack")
        assert ack == {"type": "ack", "nonce": "n1", "id": seen["id"]}
