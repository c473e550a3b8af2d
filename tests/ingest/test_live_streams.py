"""Live streams for partners: creation, stream keys (shown once, hashed, rotated, revoked),
the RTMP edge's publish hooks, the supervisor of lost live tasks, and the edge's config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.auth import create_api_key
from core.models import Asset, AssetStatus, League, LiveState, LiveStream, Role
from core.settings import Settings
from ingest.live_streams import LIVE_TASK, hook_token, orphaned_streams, pull_url
from ingest.rtmp_edge import render_config
from tests.conftest import bearer, make_settings
from tests.queues import sent

HOOKS = "/v1/live/hooks"


def create(client: TestClient, key: str, **extra: object) -> dict[str, object]:
    body = {"league": "premier", "title": "Final, live", **extra}
    response = client.post("/v1/live", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def publish(client: TestClient, settings: Settings, key: str, **form: str) -> int:
    response = client.post(
        f"{HOOKS}/on_publish",
        params={"token": hook_token(settings)},
        data={"name": key, "addr": "203.0.113.9", "app": "live", **form},
        follow_redirects=False,
    )
    return response.status_code


def publish_done(client: TestClient, settings: Settings, key: str) -> int:
    response = client.post(
        f"{HOOKS}/on_publish_done", params={"token": hook_token(settings)}, data={"name": key}
    )
    return response.status_code


# --- creating streams and keys -----------------------------------------------------------------


def test_partner_creates_a_stream_and_sees_its_key_once(
    client: TestClient, db: Session, partner_key: str
) -> None:
    created = create(client, partner_key)
    key = str(created["stream_key"])
    assert key.startswith("cs_live_")
    assert len(key) > 30
    assert created["state"] == "idle"
    assert created["key_hint"] == key[-4:]
    ingest = created["ingest"]
    assert isinstance(ingest, dict)
    assert ingest["rtmp_url"].startswith("rtmp://")
    assert ingest["whip_url"].endswith(f"/v1/live/{created['id']}/whip")
    stream = db.get_one(LiveStream, created["id"])
    assert stream.key_hash is not None
    assert key not in stream.key_hash
    asset = db.get_one(Asset, created["id"])
    assert (asset.origin, asset.status) == ("live", AssetStatus.UPLOADING)
    shown = client.get(f"/v1/live/{created['id']}", headers=bearer(partner_key)).json()
    assert "stream_key" not in shown
    assert shown["title"] == "Final, live"


def test_only_the_leagues_partners_manage_its_streams(
    client: TestClient, db: Session, partner_key: str, other_league: League
) -> None:
    _key, stranger = create_api_key(db, role=Role.PARTNER, leagues=[other_league])
    db.commit()
    assert client.post("/v1/live", json={"league": "premier", "title": "x"}).status_code == 401
    refused = client.post(
        "/v1/live", json={"league": "premier", "title": "x"}, headers=bearer(stranger)
    )
    assert refused.status_code == 403
    created = create(client, partner_key)
    for method, path in (("GET", ""), ("POST", "/key"), ("DELETE", "/key")):
        response = client.request(
            method, f"/v1/live/{created['id']}{path}", headers=bearer(stranger)
        )
        assert response.status_code == 404, (method, path)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"dvr_window_s": 10}, "dvr_window_s"),
        ({"lang": "not a tag"}, "lang"),
    ],
)
def test_bad_stream_input_is_a_clear_400(
    client: TestClient, partner_key: str, body: dict[str, object], field: str
) -> None:
    response = client.post(
        "/v1/live", json={"league": "premier", "title": "ok", **body}, headers=bearer(partner_key)
    )
    assert response.status_code == 422
    assert field in response.text


def test_a_match_of_another_league_is_refused(client: TestClient, partner_key: str) -> None:
    response = client.post(
        "/v1/live",
        json={"league": "premier", "title": "x", "match_id": 999999},
        headers=bearer(partner_key),
    )
    assert response.status_code == 422
    assert "no match" in response.json()["error"]["message"]


# --- the publish hooks -------------------------------------------------------------------------


def test_a_valid_key_publishes_renamed_to_the_stream_id_and_queues_the_live_task(
    client: TestClient, settings: Settings, db: Session, partner_key: str, queue: redis.Redis
) -> None:
    created = create(client, partner_key)
    response = client.post(
        f"{HOOKS}/on_publish",
        params={"token": hook_token(settings)},
        data={"name": created["stream_key"], "addr": "203.0.113.9"},
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"] == created["id"]
    stream = db.get_one(LiveStream, created["id"])
    db.refresh(stream)
    assert (stream.state, stream.publishing, stream.sessions) == (LiveState.CONNECTING, True, 1)
    assert stream.protocol == "rtmp"
    assert stream.publisher_addr == "203.0.113.9"
    queued = [args for _raw, args in sent(queue, "live", LIVE_TASK)]
    assert queued.count([created["id"]]) == 1


def test_bad_revoked_and_rotated_keys_are_refused(
    client: TestClient, settings: Settings, partner_key: str
) -> None:
    created = create(client, partner_key)
    old = str(created["stream_key"])
    assert publish(client, settings, "cs_live_not-a-key") == 403
    assert publish(client, settings, "anything") == 403
    rotated = client.post(f"/v1/live/{created['id']}/key", headers=bearer(partner_key)).json()
    assert rotated["stream_key"] != old
    assert publish(client, settings, old) == 403
    revoked = client.delete(f"/v1/live/{created['id']}/key", headers=bearer(partner_key))
    assert revoked.status_code == 204
    assert publish(client, settings, rotated["stream_key"]) == 403
    assert (
        client.get(f"/v1/live/{created['id']}", headers=bearer(partner_key)).json()["key_hint"]
        == ""
    )
    again = client.post(f"/v1/live/{created['id']}/key", headers=bearer(partner_key)).json()
    assert publish(client, settings, again["stream_key"]) == 302


def test_a_second_publisher_and_an_ended_stream_are_refused(
    client: TestClient, settings: Settings, db: Session, partner_key: str
) -> None:
    created = create(client, partner_key)
    key = str(created["stream_key"])
    assert publish(client, settings, key) == 302
    assert publish(client, settings, key) == 403  # one publisher at a time
    assert publish_done(client, settings, key) == 204
    assert publish(client, settings, key) == 302  # a return (the live task joins the sessions)
    stream = db.get_one(LiveStream, created["id"])
    db.refresh(stream)
    assert stream.sessions == 2
    stream.state = LiveState.ENDED
    db.commit()
    assert publish_done(client, settings, key) == 204
    assert publish(client, settings, key) == 403
    refused = client.post(f"/v1/live/{created['id']}/key", headers=bearer(partner_key))
    assert refused.status_code == 409


def test_whip_republishers_are_marked(
    client: TestClient, settings: Settings, db: Session, partner_key: str
) -> None:
    created = create(client, partner_key)
    assert publish(client, settings, str(created["stream_key"]), via="whip") == 302
    assert db.get_one(LiveStream, created["id"]).protocol == "whip"


def test_hooks_need_the_edges_token(client: TestClient, partner_key: str) -> None:
    created = create(client, partner_key)
    for token in ("", "wrong"):
        response = client.post(
            f"{HOOKS}/on_publish", params={"token": token}, data={"name": created["stream_key"]}
        )
        assert response.status_code == 403
    missing = client.post(f"{HOOKS}/on_publish", data={"name": created["stream_key"]})
    assert missing.status_code == 422


def test_publish_done_marks_the_publisher_gone(
    client: TestClient, settings: Settings, db: Session, partner_key: str
) -> None:
    created = create(client, partner_key)
    publish(client, settings, str(created["stream_key"]))
    assert publish_done(client, settings, str(created["stream_key"])) == 204
    stream = db.get_one(LiveStream, created["id"])
    db.refresh(stream)
    assert not stream.publishing
    assert stream.publisher_left_at is not None
    assert publish_done(client, settings, "cs_live_unknown") == 204  # nothing to do, no error


# --- the supervisor ----------------------------------------------------------------------------


def test_streams_on_air_with_a_silent_task_are_orphans(
    client: TestClient, settings: Settings, db: Session, partner_key: str
) -> None:
    created = create(client, partner_key)
    publish(client, settings, str(created["stream_key"]))
    stream = db.get_one(LiveStream, created["id"])
    now = datetime.now(UTC)
    stream.task_id, stream.heartbeat_at = "task-1", now
    db.commit()
    assert orphaned_streams(db, settings, now + timedelta(seconds=2)) == []
    late = now + timedelta(seconds=settings.live_takeover_after_s + 1)
    assert orphaned_streams(db, settings, late) == [stream]
    # The publisher left: an orphan only while the reconnect grace lasts.
    stream.publishing, stream.publisher_left_at = False, now
    db.commit()
    assert orphaned_streams(db, settings, late) == [stream]
    after_grace = now + timedelta(seconds=settings.live_reconnect_grace_s + 1)
    assert orphaned_streams(db, settings, max(after_grace, late)) == []


# --- the edge's config --------------------------------------------------------------------------


def test_the_edge_config_hooks_the_api_and_lets_only_workers_pull(
    tmp_path: Path, pg_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        pg_url,
        rtmp_listen="0.0.0.0:1936",
        rtmp_hook_base_url="http://10.0.0.5:8000/",
        rtmp_play_networks=["10.0.0.0/24", "127.0.0.1"],
    )
    config = render_config(settings, tmp_path)
    token = hook_token(settings)
    assert "listen 0.0.0.0:1936;" in config
    assert f"on_publish http://10.0.0.5:8000/v1/live/hooks/on_publish?token={token};" in config
    assert f"on_play http://10.0.0.5:8000/v1/live/hooks/on_play?token={token};" in config
    assert "allow play 10.0.0.0/24;" in config
    assert "allow play 127.0.0.1/32;" in config
    assert config.index("allow play") < config.index("deny play all;")
    assert f"pid {tmp_path}/nginx.pid;" in config


@pytest.mark.parametrize(
    "overrides",
    [{"rtmp_listen": "nowhere"}, {"rtmp_listen": "1.2.3.4:99999"}, {"rtmp_play_networks": ["x"]}],
)
def test_a_bad_edge_setting_is_refused(
    tmp_path: Path, pg_url: str, overrides: dict[str, object]
) -> None:
    settings = make_settings(tmp_path, pg_url, **overrides)
    with pytest.raises(ValueError, match=r"."):
        render_config(settings, tmp_path)


# --- pulling from the edge ---------------------------------------------------------------------


def play(client: TestClient, settings: Settings, name: str, pull: str | None) -> int:
    form = {"name": name, "app": "live", **({"pull": pull} if pull is not None else {})}
    response = client.post(f"{HOOKS}/on_play", params={"token": hook_token(settings)}, data=form)
    return response.status_code


def test_only_pullers_with_the_streams_token_may_read_its_feed(
    client: TestClient, settings: Settings, partner_key: str
) -> None:
    stream_id = str(create(client, partner_key)["id"])
    url = pull_url(settings, stream_id)
    token = url.split("?pull=", 1)[1]
    assert url.startswith(f"{settings.rtmp_pull_url}/{stream_id}?pull=")
    assert play(client, settings, stream_id, token) == 204
    assert play(client, settings, stream_id, None) == 403  # knowing the (public) id is not enough
    assert play(client, settings, stream_id, "0" * len(token)) == 403
    other = str(create(client, partner_key)["id"])
    assert play(client, settings, other, token) == 403  # one stream's token opens no other
    refused = client.post(f"{HOOKS}/on_play", params={"token": "x"}, data={"name": stream_id})
    assert refused.status_code == 403
