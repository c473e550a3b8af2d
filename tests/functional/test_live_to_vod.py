"""Clip from live and live to VOD with real workers.

First from the live fixture, which writes a stream's DVR objects into the stack's store (no
live transcoder involved), then from a real RTMP publisher through the live transcoder: a clip
cut while it is on air, and its replay once the publisher has gone past the grace.

One live stack for the module, on a Redis database of its own: a colleague's stack running at
the same time must not take (or flush) this one's tasks."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess  # noqa: TID251 - ffprobe reads the published replay from the store
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from celery import Celery

from core.db import session_scope
from core.models import Asset, AssetStatus, LiveState, LiveStream
from core.storage import LocalObjectStore
from ingest.live_streams import LIVE_REPLAY_TASK
from tests.functional.hls_checks import check_playback
from tests.functional.stack import Stack, make_partner, running_stack, wait_for_status
from tests.live_fixtures import (
    FLASHES,
    LiveLayout,
    Session,
    beeps,
    find_marks,
    render_sessions,
    write_live_layout,
)
from transcode.live_clip import Dvr, NoDvr, read_dvr

pytestmark = pytest.mark.e2e
LEAGUE = "e2e-live-clips"
REDIS_URL = "redis://127.0.0.1:6379/7"
GRACE_S = 2
# 24 s, the publisher away for 3 s, then 12 s more: room for the 10-30 s clips partners cut.
SESSIONS = (Session(1, 0, 24), Session(2, 24, 12, gap_before_s=3.0, tone_hz=660))
RECORDED_S = 36.0
# (start_s, end_s, seconds of media): within one session; across the discontinuity (the 3 s
# away are skipped); on segment boundaries only (nothing re-encoded).
CLIPS = ((3.4, 23.6, 20.2), (14.4, 33.2, 15.8), (5.0, 15.0, 10.0))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "COURTSIDE_REDIS_URL": REDIS_URL,
        "COURTSIDE_LIVE_RECONNECT_GRACE_S": str(GRACE_S),
        "COURTSIDE_LIVE_CPU_BUDGET_CORES": "0.5",  # a cheap ladder on a shared machine
    }
    with running_stack(tmp_path_factory.mktemp("live-vod"), live=True, overrides=overrides) as up:
        yield up


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, LEAGUE)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=stack.base_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_sessions(tmp_path_factory.mktemp("live-rendered"), SESSIONS)


def on_air(
    stack: Stack, client: httpx2.Client, key: str, rendered: Path, *, ended: bool
) -> LiveLayout:
    """A stream whose DVR is in the store, in the state the live task leaves it."""
    response = client.post("/v1/live", json={"league": LEAGUE, "title": "Final"}, headers=auth(key))
    assert response.status_code == 201, response.text
    stream_id = str(response.json()["id"])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    store = LocalObjectStore(stack.media_dir)
    layout = write_live_layout(
        store, stream_id, rendered, start=start, ended=ended, sessions=SESSIONS
    )
    with session_scope(stack.sessions) as session:
        stream = session.get_one(LiveStream, stream_id)
        stream.state = LiveState.ENDED if ended else LiveState.LIVE
        stream.started_at, stream.sessions = start, 2
        asset = session.get_one(Asset, stream_id)
        asset.status, asset.master_key = AssetStatus.PROCESSING, f"live/{stream_id}/master.m3u8"
        asset.playable_at = start
    return layout


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_playable(
    client: httpx2.Client, asset_id: str, key: str, timeout_s: float = 120
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, object] = client.get(f"/v1/assets/{asset_id}", headers=auth(key)).json()
        if body["playable_at"] or body["status"] == "failed":
            return body
        time.sleep(0.05)
    raise AssertionError(f"clip {asset_id} never became playable: {body}")


@pytest.mark.parametrize(("start_s", "end_s", "media_s"), CLIPS, ids=["one-run", "across", "whole"])
def test_a_clip_from_live_is_playable_within_seconds(
    stack: Stack,
    client: httpx2.Client,
    partner: str,
    rendered: Path,
    tmp_path: Path,
    start_s: float,
    end_s: float,
    media_s: float,
) -> None:
    layout = on_air(stack, client, partner, rendered, ended=False)
    asked = time.monotonic()
    response = client.post(
        f"/v1/live/{layout.stream_id}/clips",
        json={"title": "Goal", "start_s": start_s, "end_s": end_s},
        headers=auth(partner),
    )
    assert response.status_code == 202, response.text
    clip = response.json()
    assert clip["status"] in ("uploading", "queued", "processing")
    playable = wait_playable(client, clip["id"], partner)
    request_to_playable_s = time.monotonic() - asked
    assert playable["status"] in ("processing", "ready"), playable
    server_s = (
        datetime.fromisoformat(str(playable["playable_at"]))
        - datetime.fromisoformat(str(playable["created_at"]))
    ).total_seconds()
    print(  # noqa: T201
        f"clip from live, {media_s:g} s: request to playable {request_to_playable_s:.2f} s "
        f"(created_at to playable_at {server_s:.2f} s)"
    )
    assert request_to_playable_s < 30  # seconds on an idle machine; generous when shared

    ready = wait_for_status(client, clip["id"], partner, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    assert ready["duration_s"] == pytest.approx(media_s, abs=0.15)
    with session_scope(stack.sessions) as session:
        asset = session.get_one(Asset, clip["id"])
        assert asset.origin == "live_clip"
        assert (asset.master_key or "").startswith(f"hls/{asset.id}/")
    source = stack.media_dir / f"sources/{clip['id']}/original"
    assert find_marks(source, tmp_path).inside(media_s).in_step()
    playback = client.post(f"/v1/playback/{clip['id']}").json()
    check_playback(client, playback["master_url"], duration_s=media_s, has_audio=True)


def test_an_ended_stream_becomes_its_own_replay(
    stack: Stack, client: httpx2.Client, partner: str, rendered: Path, tmp_path: Path
) -> None:
    layout = on_air(stack, client, partner, rendered, ended=True)
    sender = Celery(broker=REDIS_URL)
    sender.send_task(LIVE_REPLAY_TASK, args=[layout.stream_id], queue="transcode")
    sender.send_task(LIVE_REPLAY_TASK, args=[layout.stream_id], queue="transcode")  # redelivered
    ready = wait_for_status(client, layout.stream_id, partner, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    assert ready["origin"] == "live"
    assert ready["duration_s"] == pytest.approx(RECORDED_S, abs=0.15)  # gap skipped
    with session_scope(stack.sessions) as session:
        asset = session.get_one(Asset, layout.stream_id)
        master = asset.master_key or ""
        assert master.startswith(f"hls/{asset.id}/")
        assert asset.attempt == 1  # the second delivery found the work done
        assert asset.poster_key
        assert asset.storyboard_key
    probed = probe_master(stack.media_dir / master)
    assert {"h264", "aac"} <= {s["codec_name"] for s in probed["streams"]}
    marks = find_marks(stack.media_dir / f"sources/{layout.stream_id}/original", tmp_path)
    assert marks.inside(RECORDED_S).in_step()
    assert len(marks.flashes) == 2 * RECORDED_S
    # The DVR stays: clips can still be cut from it.
    assert (stack.media_dir / f"live/{layout.stream_id}/360p/dvr.m3u8").is_file()


kinds = ("video", "audio")


def probe_file(path: Path) -> dict[str, list[dict[str, str]]]:
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, list[dict[str, str]]] = json.loads(done.stdout)
    return probed


def probe_master(path: Path) -> dict[str, list[dict[str, str]]]:
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams"]
    argv += ["-protocol_whitelist", "file", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, list[dict[str, str]]] = json.loads(done.stdout)
    return probed


# --- through the real live pipeline ----------------------------------------------------------


def publish(rtmp_url: str, key: str, log: Path) -> subprocess.Popen[bytes]:
    """A live publisher in real time: a 640x360 test pattern and silence, with the fixture's
    sync marks (a white picture and a beep together, twice a second)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25,{FLASHES}",
                "-f", "lavfi", "-i", beeps(1000, 600),
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                "-g", "25", "-pix_fmt", "yuv420p", "-b:v", "800k",
                "-c:a", "aac", "-b:a", "64k", "-f", "flv", f"{rtmp_url}/{key}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stored_dvr(stack: Stack, stream_id: str) -> Dvr | None:
    try:
        return read_dvr(LocalObjectStore(stack.media_dir), stream_id)
    except NoDvr:
        return None


def segments(stack: Stack, stream_id: str) -> int:
    dvr = stored_dvr(stack, stream_id)
    return len(dvr.segments) if dvr else 0


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def recorded(stack: Stack, stream_id: str, path: Path) -> Path:
    """The first encoder run of the top rung as one fMP4 file: what fans were shown."""
    dvr = stored_dvr(stack, stream_id)
    assert dvr is not None
    first = [s for s in dvr.segments if s.init_key == dvr.segments[0].init_key]
    keys = [first[0].init_key, *(segment.key for segment in first)]
    path.write_bytes(b"".join((stack.media_dir / key).read_bytes() for key in keys))
    return path


def stream_state(stack: Stack, stream_id: str) -> LiveState:
    with stack.sessions() as session:
        return session.get_one(LiveStream, stream_id).state


def test_a_real_stream_is_clipped_on_air_then_replayed(
    stack: Stack, client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    created = client.post(
        "/v1/live", json={"league": LEAGUE, "title": "Derby"}, headers=auth(partner)
    )
    assert created.status_code == 201, created.text
    stream_id, key = str(created.json()["id"]), str(created.json()["stream_key"])
    publisher = publish(stack.rtmp_url, key, tmp_path / "publisher.log")
    try:
        wait_for("15 segments in the DVR", lambda: segments(stack, stream_id) >= 15, 90)
        asked = time.monotonic()
        response = client.post(
            f"/v1/live/{stream_id}/clips",
            json={"title": "Chance", "start_s": 2.5, "end_s": 12.5},
            headers=auth(partner),
        )
        assert response.status_code == 202, response.text
        clip_id = str(response.json()["id"])
        playable = wait_playable(client, clip_id, partner)
        took_s = time.monotonic() - asked
        print(f"clip from a real live stream, 10 s: request to playable {took_s:.2f} s")  # noqa: T201
        assert playable["status"] in ("processing", "ready"), playable
    finally:
        stop(publisher)
    ready = wait_for_status(client, clip_id, partner, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    assert ready["duration_s"] == pytest.approx(10.0, abs=0.15)
    source = probe_file(stack.media_dir / f"sources/{clip_id}/original")
    video, audio = (next(s for s in source["streams"] if s["codec_type"] == k) for k in kinds)
    assert float(video["duration"]) == pytest.approx(10.0, abs=0.1)
    assert float(audio["duration"]) == pytest.approx(10.0, abs=0.1)
    # Pictures and sound as much in step as the live segments were.
    live_marks = find_marks(recorded(stack, stream_id, tmp_path / "live.mp4"), tmp_path)
    baseline_s = statistics.median(live_marks.offsets_s())
    marks = find_marks(stack.media_dir / f"sources/{clip_id}/original", tmp_path)
    assert marks.inside(10.0).in_step(baseline_s), (marks, baseline_s)

    ended = LiveState.ENDED
    wait_for("the stream to end", lambda: stream_state(stack, stream_id) is ended, GRACE_S + 40)
    dvr = stored_dvr(stack, stream_id)
    assert dvr is not None
    assert dvr.ended
    recorded_s = sum(segment.duration_s for segment in dvr.segments)
    replay = wait_for_status(client, stream_id, partner, {"ready", "failed"}, timeout_s=240)
    assert replay["status"] == "ready", replay
    assert replay["duration_s"] == pytest.approx(recorded_s, abs=0.2)
    with session_scope(stack.sessions) as session:
        assert (session.get_one(Asset, stream_id).master_key or "").startswith(f"hls/{stream_id}/")
