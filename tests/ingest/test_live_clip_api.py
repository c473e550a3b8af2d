"""``POST /v1/live/{id}/clips``: who may cut, what a span may be, the licence's clip limits,
and the asset and task a clip request makes. The DVR objects come from the live fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.auth import create_api_key
from core.models import Asset, AssetStatus, League, RightsGrant, Role
from ingest.live_clips import LIVE_CLIP_TASK, Span
from tests.conftest import bearer, store_of
from tests.live_fixtures import LiveLayout, render_sessions, write_live_layout
from tests.queues import forget, sent
from tests.rights.conftest import scope_tree

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_sessions(tmp_path_factory.mktemp("live-rendered"))


def create_stream(client: TestClient, key: str, **extra: object) -> str:
    body = {"league": "premier", "title": "Final, live", **extra}
    response = client.post("/v1/live", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def stream(client: TestClient, partner_key: str, rendered: Path) -> LiveLayout:
    stream_id = create_stream(client, partner_key)
    return write_live_layout(store_of(client), stream_id, rendered, start=T0, ended=False)


def clip(client: TestClient, key: str | None, stream_id: str, **body: object) -> dict[str, object]:
    headers = bearer(key) if key else {}
    response = client.post(
        f"/v1/live/{stream_id}/clips", json={"title": "Goal", **body}, headers=headers
    )
    answer: dict[str, object] = response.json()
    answer["_status"] = response.status_code
    return answer


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def test_a_clip_request_makes_a_queued_clip_asset(
    client: TestClient, db: Session, partner_key: str, stream: LiveLayout, queue: redis.Redis
) -> None:
    answer = clip(client, partner_key, stream.stream_id, start=iso(1.4), end=iso(5.6))
    assert answer["_status"] == 202, answer
    assert answer["origin"] == "live_clip"
    assert answer["league"] == "premier"
    assert answer["status"] == "uploading"
    assert str(answer["status_url"]).endswith(f"/v1/assets/{answer['id']}")
    asset = db.get_one(Asset, str(answer["id"]))
    span = Span.parse(asset.source_url or "")
    assert (span.stream_id, span.start, span.end) == (
        stream.stream_id,
        T0 + timedelta(seconds=1.4),
        T0 + timedelta(seconds=5.6),
    )
    messages = [raw for raw, args in sent(queue, "transcode", LIVE_CLIP_TASK) if args == [asset.id]]
    assert len(messages) == 1
    forget(queue, "transcode", messages)


def test_the_clip_shares_the_streams_match(
    client: TestClient, db: Session, league: League, partner_key: str, rendered: Path
) -> None:
    match = scope_tree(db, league, kickoff=T0)
    stream_id = create_stream(client, partner_key, match_id=match.id)
    write_live_layout(store_of(client), stream_id, rendered, start=T0)
    answer = clip(client, partner_key, stream_id, start_s=1, end_s=3)
    assert answer["_status"] == 202, answer
    assert db.get_one(Asset, str(answer["id"])).match_id == match.id


def test_seconds_count_from_the_first_segment_the_dvr_holds(
    client: TestClient, db: Session, partner_key: str, stream: LiveLayout
) -> None:
    answer = clip(client, partner_key, stream.stream_id, start_s=12, end_s=14.5)
    assert answer["_status"] == 202, answer
    span = Span.parse(db.get_one(Asset, str(answer["id"])).source_url or "")
    assert span.start == stream.start + timedelta(seconds=12)
    assert span.end == stream.start + timedelta(seconds=14.5)


def test_an_ended_stream_can_still_be_clipped(
    client: TestClient, partner_key: str, rendered: Path
) -> None:
    stream_id = create_stream(client, partner_key)
    write_live_layout(store_of(client), stream_id, rendered, start=T0, ended=True)
    assert clip(client, partner_key, stream_id, start_s=0, end_s=2)["_status"] == 202


# --- who ------------------------------------------------------------------------------------


def test_anonymous_callers_are_refused(client: TestClient, stream: LiveLayout) -> None:
    answer = clip(client, None, stream.stream_id, start_s=1, end_s=2)
    assert answer["_status"] == 401
    assert answer["error"]["code"] == "unauthenticated"  # type: ignore[index]


def test_another_leagues_partner_does_not_see_the_stream(
    client: TestClient, db: Session, other_league: League, stream: LiveLayout
) -> None:
    _key, other = create_api_key(db, role=Role.PARTNER, leagues=[other_league], name="other")
    db.commit()
    answer = clip(client, other, stream.stream_id, start_s=1, end_s=2)
    assert answer["_status"] == 404
    assert db.query(Asset).filter(Asset.origin == "live_clip").count() == 0


# --- what ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"start_s": 5, "end_s": 3}, "outside_dvr_window"),
        ({"start_s": 4, "end_s": 4}, "outside_dvr_window"),
        ({"start": iso(-30), "end": iso(2)}, "outside_dvr_window"),
        ({"start_s": 15, "end_s": 40}, "outside_dvr_window"),
        ({"start_s": 8.5, "end_s": 10.5}, "outside_dvr_window"),  # the publisher was away
        ({"start_s": 1}, "validation_error"),
        ({"start": iso(1), "end": iso(2), "start_s": 1, "end_s": 2}, "validation_error"),
        ({"start": "2026-11-30T04:00:01", "end": iso(2)}, "validation_error"),  # no zone
        ({"start_s": 1, "end_s": 2, "title": ""}, "validation_error"),
    ],
    ids=[
        "backwards",
        "empty",
        "before-the-window",
        "after-the-end",
        "only-the-gap",
        "one-end",
        "both-kinds",
        "naive-time",
        "no-title",
    ],
)
def test_a_span_that_cannot_be_cut_is_refused(
    client: TestClient, partner_key: str, stream: LiveLayout, body: dict[str, object], code: str
) -> None:
    answer = clip(client, partner_key, stream.stream_id, **body)
    assert answer["_status"] == 422, answer
    assert answer["error"]["code"] == code  # type: ignore[index]


def test_a_clip_longer_than_the_setting_is_refused(
    client: TestClient, partner_key: str, stream: LiveLayout
) -> None:
    client.app.state.settings.live_clip_max_s = 5  # type: ignore[attr-defined]
    answer = clip(client, partner_key, stream.stream_id, start_s=0, end_s=6)
    assert answer["_status"] == 422
    assert "at most 5 s" in str(answer["error"])


def test_a_stream_without_a_recording_cannot_be_clipped(
    client: TestClient, partner_key: str
) -> None:
    stream_id = create_stream(client, partner_key)
    answer = clip(client, partner_key, stream_id, start_s=0, end_s=2)
    assert answer["_status"] == 409
    assert answer["error"]["code"] == "no_dvr"  # type: ignore[index]


# --- the licence -----------------------------------------------------------------------------


def limits(db: Session, league: League, **values: int) -> None:
    db.add(
        RightsGrant(
            scope_type="league",
            scope_id=str(league.id),
            license_type="news_access",
            status="approved",
            worldwide=True,
            clip_limits=values,
        )
    )
    db.commit()


def test_the_licences_longest_clip_is_enforced_at_once(
    client: TestClient, db: Session, league: League, partner_key: str, stream: LiveLayout
) -> None:
    limits(db, league, max_clip_s=3)
    answer = clip(client, partner_key, stream.stream_id, start_s=0, end_s=4)
    assert answer["_status"] == 422
    assert answer["error"]["code"] == "clip_limit_exceeded"  # type: ignore[index]
    assert "at most 3 s" in str(answer["error"])
    assert db.query(Asset).filter(Asset.origin == "live_clip").count() == 0
    assert clip(client, partner_key, stream.stream_id, start_s=0, end_s=3)["_status"] == 202


def test_a_clip_before_the_licences_delay_is_refused(
    client: TestClient, db: Session, league: League, partner_key: str, rendered: Path
) -> None:
    match = scope_tree(db, league, kickoff=T0)  # on air: no broadcast end yet
    stream_id = create_stream(client, partner_key, match_id=match.id)
    write_live_layout(store_of(client), stream_id, rendered, start=T0, ended=False)
    limits(db, league, min_delay_after_live_s=1800)
    answer = clip(client, partner_key, stream_id, start_s=0, end_s=2)
    assert answer["_status"] == 422
    assert answer["error"]["code"] == "clip_too_early"  # type: ignore[index]


def test_the_clip_asset_stays_uploading_until_cut(
    client: TestClient, db: Session, partner_key: str, stream: LiveLayout
) -> None:
    answer = clip(client, partner_key, stream.stream_id, start_s=0, end_s=2)
    asset = db.get_one(Asset, str(answer["id"]))
    assert asset.status is AssetStatus.UPLOADING
    assert asset.source_key is None


def test_a_deleted_streams_recording_cannot_be_clipped(
    client: TestClient, db: Session, partner_key: str, stream: LiveLayout
) -> None:
    db.get_one(Asset, stream.stream_id).status = AssetStatus.DELETED
    db.commit()
    assert clip(client, partner_key, stream.stream_id, start_s=0, end_s=2)["_status"] == 404
