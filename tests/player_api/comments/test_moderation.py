"""Moderation: each action takes effect and reaches connected clients at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import Asset, League, Role, utcnow
from tests.conftest import bearer
from tests.player_api.comments.conftest import make_user
from tests.player_api.comments.helpers import history, post, receive, receive_until, send


@pytest.fixture
def mod_token(db: Session) -> str:
    return make_user(db, "mod", role=Role.MODERATOR)[1]


def settings_of(client: TestClient, channel: str, token: str, **values: object) -> None:
    response = client.put(f"/v1/comments/{channel}/settings", json=values, headers=bearer(token))
    assert response.status_code == 200, response.text


def test_a_blocked_term_holds_the_message_until_a_moderator_approves_it(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    terms = client.put(
        "/v1/comments/blocked-terms", json={"terms": ["Free Tickets"]}, headers=bearer(mod_token)
    )
    assert terms.json() == {"terms": ["free tickets"]}
    _fan, token = make_user(db, "fan")
    url = f"/v1/comments/{channel.id}/ws"
    with (
        client.websocket_connect(url) as reader,
        client.websocket_connect(f"{url}?token={mod_token}") as moderator,
        client.websocket_connect(f"{url}?token={token}") as poster,
    ):
        for ws in (reader, moderator, poster):
            receive(ws)
        send(poster, type="post", text="ＦＲＥＥ ti\u200bckets here", nonce="h")
        held = receive_until(poster, "error", code="held_for_review")
        assert receive_until(moderator, "message")["state"] == "held"
        send(poster, type="post", text="fine words", nonce="f")
        # The fan's next message is the fine one: the held one never reached them.
        assert receive_until(reader, "message")["text"] == "fine words"
        assert [m["text"] for m in history(client, channel.id)["messages"]] == ["fine words"]
        held_too = history(client, channel.id, mod_token, include="held")["messages"]
        assert [m["state"] for m in held_too] == ["held", "visible"]
        approved = client.post(
            f"/v1/comments/{channel.id}/{held['id']}/approve", headers=bearer(mod_token)
        )
        assert approved.status_code == 200
        shown = receive_until(reader, "message", id=held["id"])
    assert shown["state"] == "visible"
    assert len(history(client, channel.id)["messages"]) == 2
    client.put("/v1/comments/blocked-terms", json={"terms": []}, headers=bearer(mod_token))


def test_fans_may_not_moderate(client: TestClient, db: Session, channel: Asset) -> None:
    _fan, token = make_user(db, "fan")
    message = post(client, channel.id, token, "mine").json()["id"]
    base = f"/v1/comments/{channel.id}"
    for response in (
        client.delete(f"{base}/{message}", headers=bearer(token)),
        client.put(f"{base}/settings", json={"mode": "closed"}, headers=bearer(token)),
        client.post(f"{base}/bans", json={"user_id": 1}, headers=bearer(token)),
        client.post(f"{base}/timeouts", json={"user_id": 1, "seconds": 5}, headers=bearer(token)),
        client.post(f"{base}/{message}/approve", headers=bearer(token)),
        client.get(f"{base}/reports", headers=bearer(token)),
        client.put("/v1/comments/blocked-terms", json={"terms": []}, headers=bearer(token)),
        client.get(base, params={"include": "held"}, headers=bearer(token)),
    ):
        assert response.status_code == 403, response.request.url


def test_delete_hides_the_message_everywhere_at_once(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    _fan, token = make_user(db, "fan")
    message = post(client, channel.id, token, "oops").json()["id"]
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws") as reader:
        assert receive(reader)[1]["id"] == message
        deleted = client.delete(f"/v1/comments/{channel.id}/{message}", headers=bearer(mod_token))
        assert deleted.status_code == 204
        assert receive_until(reader, "hide") == {"type": "hide", "ids": [message]}
    page = history(client, channel.id)
    assert page["messages"] == []
    assert page["next_after"] == message  # paging carries on past the hidden one


def test_a_ban_hides_earlier_messages_and_refuses_new_ones(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    troll, token = make_user(db, "troll")
    _fan, fan_token = make_user(db, "fan")
    earlier = [post(client, channel.id, token, f"bad {i}").json()["id"] for i in range(2)]
    kept = post(client, channel.id, fan_token, "good").json()["id"]
    with (
        client.websocket_connect(f"/v1/comments/{channel.id}/ws") as reader,
        client.websocket_connect(f"/v1/comments/{channel.id}/ws?token={token}") as banned,
    ):
        receive(reader)
        receive(banned)
        response = client.post(
            f"/v1/comments/{channel.id}/bans", json={"user_id": troll.id}, headers=bearer(mod_token)
        )
        assert response.json() == {"user_id": f"user:{troll.id}", "hidden": earlier}
        assert sorted(receive_until(reader, "hide")["ids"]) == sorted(earlier)
        send(banned, type="post", text="again", nonce="b")
        assert receive_until(banned, "error")["code"] == "banned"
    assert [m["id"] for m in history(client, channel.id)["messages"]] == [kept]
    refused = post(client, channel.id, token, "rest")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "banned"
    unban = client.delete(
        f"/v1/comments/{channel.id}/bans/user:{troll.id}", headers=bearer(mod_token)
    )
    assert unban.status_code == 204
    assert post(client, channel.id, token, "sorry").status_code == 201


def test_a_timeout_refuses_posts_for_its_duration(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    fan, token = make_user(db, "fan")
    response = client.post(
        f"/v1/comments/{channel.id}/timeouts",
        json={"user_id": f"user:{fan.id}", "seconds": 60},
        headers=bearer(mod_token),
    )
    assert response.status_code == 204
    refused = post(client, channel.id, token, "hello")
    assert refused.status_code == 403
    body = refused.json()["error"]
    assert body["code"] == "timed_out"
    assert 55_000 < body["details"]["retry_after_ms"] <= 60_000


def test_the_rate_limit_allows_a_burst_then_a_cool_down(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _fan, token = make_user(db, "fan")
    assert [post(client, channel.id, token, f"m{i}").status_code for i in range(3)] == [201] * 3
    refused = post(client, channel.id, token, "m3")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert 29_000 < error["details"]["retry_after_ms"] <= 30_000  # the cool-down
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws?token={token}") as ws:
        receive(ws)
        send(ws, type="post", text="still?", nonce="r")
        error = receive_until(ws, "error")
    assert error["code"] == "rate_limited"
    assert error["retry_after_ms"] > 25_000


def test_slow_mode_spaces_one_authors_messages(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    with client.websocket_connect(f"/v1/comments/{channel.id}/ws") as reader:
        receive(reader)
        settings_of(client, channel.id, mod_token, mode="open", slow_mode_s=30)
        assert receive_until(reader, "mode")["slow_mode_s"] == 30
    _fan, token = make_user(db, "fan")
    _other, other_token = make_user(db, "other")
    assert post(client, channel.id, token, "one").status_code == 201
    refused = post(client, channel.id, token, "two")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "slow_mode"
    assert 29_000 < refused.json()["error"]["details"]["retry_after_ms"] <= 30_000
    assert post(client, channel.id, other_token, "mine").status_code == 201
    assert post(client, channel.id, mod_token, "mods are exempt").status_code == 201
    assert post(client, channel.id, mod_token, "twice").status_code == 201


def test_channel_modes(client: TestClient, db: Session, channel: Asset) -> None:
    _mod, mod_token = make_user(db, "mod", role=Role.MODERATOR)
    _old, old = make_user(db, "old", created_at=utcnow() - timedelta(days=10))
    _new, new = make_user(db, "new", created_at=utcnow() - timedelta(minutes=5))
    _partner, partner = make_user(db, "partner", role=Role.PARTNER)

    def code(token: str) -> object:
        response = post(client, channel.id, token, "hi")
        return (
            response.status_code if response.status_code < 400 else response.json()["error"]["code"]
        )

    settings_of(client, channel.id, mod_token, mode="closed")
    assert (code(old), code(partner), code(mod_token)) == ("channel_closed", "channel_closed", 201)
    settings_of(client, channel.id, mod_token, mode="verified")
    assert (code(old), code(partner)) == ("verified_only", 201)
    settings_of(client, channel.id, mod_token, mode="account_age", min_account_age_s=86_400)
    assert (code(new), code(old)) == ("account_too_new", 201)
    settings_of(client, channel.id, mod_token, mode="open")
    assert code(new) == 201


def test_a_leagues_partner_moderates_its_own_channels_only(
    client: TestClient, db: Session, channel: Asset, league: League, other_league_channel: Asset
) -> None:
    partner, token = make_user(db, "partner", role=Role.PARTNER, leagues=[league])
    assert history(client, channel.id, token)["viewer"] == {
        "moderator": True,
        "author_id": f"user:{partner.id}",
    }
    assert history(client, other_league_channel.id, token)["viewer"]["moderator"] is False
    assert history(client, channel.id)["viewer"] == {"moderator": False, "author_id": None}
    own = client.put(
        f"/v1/comments/{channel.id}/settings", json={"mode": "closed"}, headers=bearer(token)
    )
    assert own.status_code == 200
    other = client.put(
        f"/v1/comments/{other_league_channel.id}/settings",
        json={"mode": "closed"},
        headers=bearer(token),
    )
    assert other.status_code == 403


def test_likes_count_once_per_viewer_and_reach_clients(
    client: TestClient, db: Session, channel: Asset
) -> None:
    _author, author = make_user(db, "author")
    _fan, fan = make_user(db, "fan")
    message = post(client, channel.id, author, "great").json()["id"]
    with (
        client.websocket_connect(f"/v1/comments/{channel.id}/ws") as reader,
        client.websocket_connect(f"/v1/comments/{channel.id}/ws?token={fan}") as liker,
    ):
        receive(reader)
        receive(liker)
        send(liker, type="like", id=message)
        assert receive_until(reader, "likes") == {"type": "likes", "id": message, "likes": 1}
        assert receive_until(liker, "liked")["likes"] == 1
        send(liker, type="like", id=message)
        assert receive_until(liker, "liked")["likes"] is None  # already liked
    again = client.post(f"/v1/comments/{channel.id}/{message}/likes", headers=bearer(author))
    assert again.json() == {"id": message, "liked": True, "likes": 2}
    assert history(client, channel.id)["messages"][0]["likes"] == 2


def test_reports_reach_moderators_only(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    _author, author = make_user(db, "author")
    _fan, fan = make_user(db, "fan")
    message = post(client, channel.id, author, "hmm").json()["id"]
    url = f"/v1/comments/{channel.id}/ws"
    with client.websocket_connect(f"{url}?token={mod_token}") as moderator:
        receive(moderator)
        with client.websocket_connect(f"{url}?token={fan}") as reporter:
            receive(reporter)
            send(reporter, type="report", id=message, reason="spam")
            assert receive_until(reporter, "reported")["id"] == message
        event = receive_until(moderator, "report")
    assert event == {"type": "report", "id": message, "reason": "spam", "reports": 1}
    listed = client.get(f"/v1/comments/{channel.id}/reports", headers=bearer(mod_token)).json()
    assert listed["reports"][0]["reason"] == "spam"
    unknown = client.post(
        f"/v1/comments/{channel.id}/1-0/reports", json={"reason": "x"}, headers=bearer(fan)
    )
    assert unknown.status_code == 404


def test_replay_buckets_by_second_most_liked_first(
    client: TestClient, db: Session, channel: Asset, mod_token: str
) -> None:
    posted = {
        text: post(client, channel.id, mod_token, text, media_ms=ms).json()["id"]
        for text, ms in [("a", 1_100), ("b", 1_500), ("c", 1_900), ("d", 2_000), ("e", 9_000)]
    }
    _fan, fan = make_user(db, "fan")
    client.post(f"/v1/comments/{channel.id}/{posted['c']}/likes", headers=bearer(fan))
    replay = client.get(
        f"/v1/comments/{channel.id}/replay", params={"from_ms": 1000, "to_ms": 5000, "per_s": 2}
    ).json()
    seconds = {b["second"]: [m["text"] for m in b["messages"]] for b in replay["buckets"]}
    assert seconds == {1: ["a", "c"], 2: ["d"]}  # c (liked) and a (earliest); b dropped
