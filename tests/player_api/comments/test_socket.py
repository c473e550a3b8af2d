"""The WebSocket: history on join, resume, posting and receiving, who may read and post."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from core.models import (
    LIVE_ORIGIN,
    Asset,
    AssetStatus,
    League,
    LiveState,
    LiveStream,
    RightsGrant,
    Role,
    utcnow,
)
from tests.conftest import worldwide_live
from tests.player_api.comments.conftest import make_user
from tests.player_api.comments.helpers import history, post, receive, receive_until, send
from tests.published import add_asset


def test_a_post_reaches_every_client_and_acks_its_poster(
    client: TestClient, db: Session, channel: Asset
) -> None:
    user, token = make_user(db, "ana")
    url = f"/v1/comments/{channel.id}/ws"
    with (
        client.websocket_connect(url) as reader,
        client.websocket_connect(f"{url}?token={token}") as poster,
    ):
        assert receive(reader)[0]["type"] == "mode"
        assert receive(poster)[0]["type"] == "mode"
        send(poster, type="post", text="what a goal", nonce="n1", media_ms=1500)
        seen = receive_until(reader, "message")
        assert seen["text"] == "what a goal"
        assert seen["author"] == {"id": f"user:{user.id}", "handle": user.handle, "badge": None}
        assert seen["media_ms"] == 1500
        assert seen["state"] == "visible"
        assert seen["likes"] == 0
        assert seen["server_time"].endswith("Z")
        assert receive_until(poster, "ack") == {"type": "ack", "nonce": "n1", "id": seen["id"]}


def test_joining_sends_the_mode_and_recent_history_in_order(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _mod, token = make_user(db, "mod", role=Role.MODERATOR)  # no rate limit
    ids = [post(client, channel.id, token, f"m{i}").json()["id"] for i in range(5)]
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws") as reader:
        first = receive(reader)
    assert first[0] == {"type": "mode", "mode": "open", "min_account_age_s": 0, "slow_mode_s": 0}
    assert [event["id"] for event in first[1:]] == ids
    assert [event["text"] for event in first[1:]] == [f"m{i}" for i in range(5)]


def test_resuming_after_an_id_sends_only_what_was_missed_then_live(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _mod, token = make_user(db, "mod", role=Role.MODERATOR)
    ids = [post(client, channel.id, token, f"m{i}").json()["id"] for i in range(5)]
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws?after={ids[1]}") as reader:
        assert [event.get("id") for event in receive(reader)[1:]] == ids[2:]
        new = post(client, channel.id, token, "later").json()["id"]
        assert receive_until(reader, "message")["id"] == new


def test_rest_history_pages_with_after_and_limit(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _mod, token = make_user(db, "mod", role=Role.MODERATOR)
    ids = [post(client, channel.id, token, f"m{i}").json()["id"] for i in range(6)]
    assert [m["id"] for m in history(client, channel.id, limit=2)["messages"]] == ids[4:]
    page = history(client, channel.id, after=ids[0], limit=3)["messages"]
    assert [m["id"] for m in page] == ids[1:4]


def test_anonymous_viewers_read_but_may_not_post(client: TestClient, channel: Asset) -> None:
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws") as anonymous:
        receive(anonymous)
        send(anonymous, type="post", text="hi", nonce="x")
        error = receive_until(anonymous, "error")
    assert error["code"] == "unauthenticated"
    assert error["nonce"] == "x"
    refused = client.post(f"/v1/comments/{channel.id}", json={"text": "hi"})
    assert refused.status_code == 401


def test_a_bad_token_closes_with_4401(client: TestClient, channel: Asset) -> None:
    with (
        client.websocket_connect(f"/v1/comments/{channel.id}/ws?token=cs_ses_nope") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 4401


def test_no_such_channel_closes_with_4404(client: TestClient) -> None:
    with (
        client.websocket_connect("/v1/comments/nope/ws") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 4404


def test_a_viewer_who_may_not_watch_the_item_may_not_read_its_channel(
    client: TestClient, db: Session
) -> None:
    unlicensed = League(slug="unlicensed-comments", name="No grants")
    db.add(unlicensed)
    db.commit()
    item = add_asset(db, unlicensed, title="not here")
    _fan, token = make_user(db, "fan")
    with (
        client.websocket_connect(f"/v1/comments/{item.id}/ws?token={token}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 4451
    assert client.get(f"/v1/comments/{item.id}").status_code == 451
    assert client.get(f"/v1/comments/{item.id}/replay").status_code == 451
    assert client.get(f"/v1/comments/{item.id}/events").status_code == 451
    assert post(client, item.id, token, "hi").status_code == 451
    # The league's moderators still can (they moderate whatever the territory).
    _mod, mod_token = make_user(db, "mod", role=Role.MODERATOR)
    assert post(client, item.id, mod_token, "hi").status_code == 201


def test_malformed_frames_get_an_error_not_a_disconnect(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _user, token = make_user(db, "ana")
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws?token={token}") as ws:
        receive(ws)
        ws.send_text("not json")
        assert receive_until(ws, "error")["code"] == "invalid_frame"
        send(ws, type="like", id="<script>")
        assert receive_until(ws, "error")["code"] == "invalid_frame"
        send(ws, type="post", text="still here", nonce="ok")
        assert receive_until(ws, "ack")["nonce"] == "ok"


def test_text_is_cleaned_and_limited(client: TestClient, db: Session, channel: Asset) -> None:
    _user, token = make_user(db, "ana")
    response = post(client, channel.id, token, "  <b>hi</b>\u202e\x00  ")
    assert response.status_code == 201
    assert response.json()["text"] == "<b>hi</b>"  # stored as text; pages use textContent
    too_long = post(client, channel.id, token, "x" * 301)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "too_long"
    assert post(client, channel.id, token, " \u200b ").json()["error"]["code"] == "empty"


def test_media_time_is_clamped_to_the_clip(client: TestClient, db: Session, channel: Asset) -> None:
    _user, token = make_user(db, "ana")
    assert post(client, channel.id, token, "late", media_ms=99_000_000).json()["media_ms"] == 30_000


def closed_with(ws: WebSocketTestSession) -> int:
    """Read until the server closes; its close code."""
    for _ in range(100):
        try:
            receive(ws)
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("still open")


def test_a_revoked_grant_closes_open_readers_with_4451(
    app: FastAPI, client: TestClient, db: Session, channel: Asset, league: League
) -> None:
    _mod, mod_token = make_user(db, "mod", role=Role.MODERATOR)
    url = f"/v1/comments/{channel.id}/ws"
    with (
        client.websocket_connect(url) as fan,
        client.websocket_connect(f"{url}?token={mod_token}") as moderator,
    ):
        receive(fan)
        receive(moderator)
        for grant in db.scalars(select(RightsGrant).where(RightsGrant.scope_id == str(league.id))):
            grant.status = "revoked"
        db.commit()
        app.state.rights_cache.invalidate()
        assert closed_with(fan) == 4451
        # Moderators read whatever the rights: still connected, still served.
        post(client, channel.id, mod_token, "still here")
        assert receive_until(moderator, "message")["text"] == "still here"


def test_a_live_streams_channel_anchors_comments_to_program_date_time(
    client: TestClient, db: Session, league: League
) -> None:
    db.add(worldwide_live(league))
    live = Asset(
        league_id=league.id,
        title="Final, live",
        origin=LIVE_ORIGIN,
        status=AssetStatus.PROCESSING,
        playable_at=utcnow(),
    )
    db.add(live)
    db.flush()
    db.add(LiveStream(id=live.id, league_id=league.id, state=LiveState.LIVE, started_at=utcnow()))
    db.commit()
    _fan, token = make_user(db, "fan")
    seen_at_ms = int(utcnow().timestamp() * 1000) - 8_000  # the picture is 8 s behind
    assert post(client, live.id, token, "goal!", media_ms=seen_at_ms).json()["media_ms"] == (
        seen_at_ms
    )
    before = int(utcnow().timestamp() * 1000)
    unanchored = post(client, live.id, token, "no time").json()["media_ms"]
    assert before <= unanchored <= before + 5_000  # the server's clock
    assert post(client, live.id, token, "nonsense", media_ms=5).json()["media_ms"] >= before
