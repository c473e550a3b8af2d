"""RTMP end to end: an ffmpeg publisher pushes a test pattern with a burnt-in clock to the
RTMP edge (nginx-rtmp); the live worker's task encodes it into the store's live layout.

One live stack for the module and one stream that lives through the tests in order: it goes
on air, the publisher drops and returns, the worker process running it is killed, and the
publisher finally leaves for good. Bad and revoked keys are refused on a stream of their own.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess  # noqa: TID251 - the publisher and ffprobe are real processes
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from core.events import LIVE_ALERT
from core.models import AssetStatus, Event, LiveState, LiveStream
from tests.functional.stack import Stack, make_partner, running_stack
from transcode.live_playlists import RungPlaylist, parse_media

pytestmark = pytest.mark.e2e
LEAGUE = "live-rtmp"
# A Redis database of this module's own: another live stack running at the same time (a
# colleague's tests) must not take this stack's live tasks.
REDIS_URL = "redis://127.0.0.1:6379/9"
GRACE_S = 4
# 854x480 input: two rungs (480p, 360p), so alignment across rungs is checked too.
WIDTH, HEIGHT = 854, 480
RUNGS = {"480p": (854, 480), "360p": (640, 360)}


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "COURTSIDE_REDIS_URL": REDIS_URL,
        "COURTSIDE_LIVE_RECONNECT_GRACE_S": str(GRACE_S),
        # Both rungs at veryfast cost ~0.7 core by the model; a small budget keeps the test
        # encode cheap (superfast) on a machine shared with other encodes.
        "COURTSIDE_LIVE_CPU_BUDGET_CORES": "0.5",
        "COURTSIDE_LIVE_TAKEOVER_AFTER_S": "4",
    }
    with running_stack(tmp_path_factory.mktemp("live"), live=True, overrides=overrides) as stack:
        yield stack


@pytest.fixture(scope="module")
def partner(live_stack: Stack) -> str:
    return make_partner(live_stack, LEAGUE)


@pytest.fixture(scope="module")
def client(live_stack: Stack) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=live_stack.base_url, timeout=30) as http:
        yield http


def create_stream(client: httpx2.Client, partner: str, title: str) -> dict[str, object]:
    created = client.post(
        "/v1/live",
        headers={"Authorization": f"Bearer {partner}"},
        json={"league": LEAGUE, "title": title},
    )
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


def publish(rtmp_url: str, key: str, log: Path) -> subprocess.Popen[bytes]:
    """A live publisher: test pattern with the wall clock burnt in, a tone, real time."""
    clock = "drawtext=text='%{localtime\\:%T}':fontsize=40:x=16:y=16:fontcolor=white:box=1"
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=30,{clock}",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                "-g", "30", "-pix_fmt", "yuv420p", "-b:v", "1200k",
                "-c:a", "aac", "-b:a", "64k", "-f", "flv", f"{rtmp_url}/{key}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=10)


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@dataclass
class OnAir:
    """The stream the ordered tests share."""

    stack: Stack
    stream_id: str
    key: str
    logs: Path
    publisher: subprocess.Popen[bytes] | None = None
    notes: dict[str, object] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.stack.media_dir / "live" / self.stream_id / name

    def playlist(self, rung: str, name: str = "live.m3u8") -> RungPlaylist:
        return parse_media(self.path(f"{rung}/{name}").read_text())

    def text(self, name: str) -> str:
        try:
            return self.path(name).read_text()
        except FileNotFoundError:
            return ""

    def row(self) -> LiveStream:
        with self.stack.sessions() as session:
            stream = session.get_one(LiveStream, self.stream_id)
            session.expunge(stream)
            return stream

    def alerts(self) -> dict[str, bool]:
        """The stream's alerts by name: active (True) or over (False), as last said."""
        with self.stack.sessions() as session:
            events = session.scalars(
                select(Event)
                .where(Event.subject_id == self.stream_id, Event.type == LIVE_ALERT)
                .order_by(Event.id)
            )
            return {str(e.data["alert"]): bool(e.data["active"]) for e in events}

    def start(self) -> None:
        self.publisher = publish(self.stack.rtmp_url, self.key, self.logs / "publisher.log")

    def last_seq(self, rung: str = "360p") -> int:
        try:
            return self.playlist(rung, "dvr.m3u8").segments[-1].seq
        except (FileNotFoundError, IndexError):
            return -1


@pytest.fixture(scope="module")
def on_air(
    live_stack: Stack, client: httpx2.Client, partner: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OnAir]:
    body = create_stream(client, partner, "Harbour derby, live")
    air = OnAir(
        live_stack, str(body["id"]), str(body["stream_key"]), tmp_path_factory.mktemp("pub")
    )
    air.start()
    yield air
    if air.publisher is not None:
        stop(air.publisher)


def ffprobe_json(args: list[str]) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args],
        capture_output=True,
        check=True,
        timeout=30,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def probe_segment(
    air: OnAir, rung: str, seq: int, tmp: Path
) -> tuple[list[dict[str, object]], int]:
    """Streams of init + segment ``seq`` joined as a player joins them, and whether the first
    video frame is a keyframe (1)."""
    playlist = air.playlist(rung, "dvr.m3u8")
    segment = next(s for s in playlist.segments if s.seq == seq)
    joined = tmp / f"{rung}-{seq}.mp4"
    joined.write_bytes(
        air.path(f"{rung}/{segment.init}").read_bytes() + air.path(f"{rung}/{seq}.m4s").read_bytes()
    )
    streams = ffprobe_json(["-show_streams", str(joined)])["streams"]
    frames = ffprobe_json(
        [
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame",
            "-read_intervals",
            "%+#1",
            str(joined),
        ]
    )["frames"]
    assert isinstance(streams, list)
    assert isinstance(frames, list)
    return streams, int(frames[0]["key_frame"])


# --- refusals ---------------------------------------------------------------------------------


def test_a_bad_or_revoked_key_is_refused(
    live_stack: Stack, client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    body = create_stream(client, partner, "Refused")
    headers = {"Authorization": f"Bearer {partner}"}
    assert client.delete(f"/v1/live/{body['id']}/key", headers=headers).status_code == 204
    for key in ("cs_live_not-a-real-key", str(body["stream_key"])):
        publisher = publish(live_stack.rtmp_url, key, tmp_path / "refused.log")
        try:
            assert publisher.wait(timeout=20) != 0
        finally:
            stop(publisher)
    got = client.get(f"/v1/live/{body['id']}", headers=headers).json()
    assert got["state"] == "idle"
    assert got["sessions"] == 0
    assert not got["publishing"]


def test_a_feed_without_video_errors_the_stream_with_a_reason(
    live_stack: Stack, client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    body = create_stream(client, partner, "Radio only")
    headers = {"Authorization": f"Bearer {partner}"}
    with (tmp_path / "radio.log").open("ab") as out:
        radio = subprocess.Popen(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                "-c:a", "aac", "-b:a", "64k", "-f", "flv",
                f"{live_stack.rtmp_url}/{body['stream_key']}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = f"/v1/live/{body['id']}"
        wait_until(
            "the stream to error",
            lambda: client.get(url, headers=headers).json()["state"] == "errored",
            45,
        )
    finally:
        stop(radio)
    got = client.get(url, headers=headers).json()
    assert got["error"]["code"] == "live_input_unusable"
    assert "no video" in got["error"]["message"]


# --- on air -----------------------------------------------------------------------------------


def test_the_live_playlist_appears_grows_and_its_segments_probe(
    on_air: OnAir, client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    wait_until("the master playlist", lambda: bool(on_air.text("master.m3u8")), 60)
    first = on_air.last_seq()
    wait_until("the playlist to grow", lambda: on_air.last_seq() >= first + 4, 30)

    master = on_air.text("master.m3u8")
    for rung, (width, height) in RUNGS.items():
        assert f"RESOLUTION={width}x{height}" in master
        assert f"{rung}/live.m3u8" in master
        playlist = on_air.playlist(rung)
        text = on_air.path(f"{rung}/live.m3u8").read_text()
        assert text.count("#EXT-X-PROGRAM-DATE-TIME:") == text.count("#EXTINF:") > 0
        assert "#EXT-X-MAP:" in text
        assert "#EXT-X-ENDLIST" not in text
        assert all(0.9 <= s.duration <= 1.1 for s in playlist.segments), playlist.segments
        seq = playlist.segments[-1].seq
        streams, key_frame = probe_segment(on_air, rung, seq, tmp_path)
        codecs = {str(s["codec_name"]) for s in streams}
        video = next(s for s in streams if s["codec_type"] == "video")
        assert codecs == {"h264", "aac"}
        assert key_frame == 1
        assert (video["width"], video["height"]) == (width, height)
    # Both rungs hold the same segments, with the same program date times.
    top, low = on_air.playlist("480p", "dvr.m3u8"), on_air.playlist("360p", "dvr.m3u8")
    common = min(top.segments[-1].seq, low.segments[-1].seq)
    assert [s.pdt for s in top.segments if s.seq <= common] == [
        s.pdt for s in low.segments if s.seq <= common
    ]
    # Within an encoder run the stamps advance exactly with the media.
    for one, after in itertools.pairwise(top.segments):
        step = (after.pdt - one.pdt).total_seconds()
        assert abs(step - one.duration) < 0.003, (one, after)

    row = on_air.row()
    assert row.state is LiveState.LIVE
    assert row.started_at is not None
    with on_air.stack.sessions() as session:
        stream = session.get_one(LiveStream, on_air.stream_id)
        assert stream.asset.status is AssetStatus.PROCESSING
        assert stream.asset.master_key == f"live/{on_air.stream_id}/master.m3u8"
    health = client.get(
        f"/v1/live/{on_air.stream_id}", headers={"Authorization": f"Bearer {partner}"}
    ).json()["health"]
    assert health["input_width"] == WIDTH
    assert health["input_codec"] == "h264"
    assert health["rungs"] == ["480p", "360p"]
    assert health["encoder_speed"] is not None
    assert health["last_segment_age_s"] is not None
    assert health["last_segment_age_s"] < 5
    assert health["viewers"] == 0


def test_a_publisher_that_returns_within_the_grace_continues_the_playlist(on_air: OnAir) -> None:
    assert on_air.publisher is not None
    stop(on_air.publisher)
    before = on_air.last_seq()
    time.sleep(1.0)
    on_air.start()

    def resumed_for_a_while() -> bool:
        # The encoder may still store what it had when the publisher vanished: wait for the
        # returning publisher's segments, after their discontinuity.
        dvr = on_air.playlist("360p", "dvr.m3u8")
        tagged = [s.seq for s in dvr.segments if s.discontinuity]
        return bool(tagged) and dvr.segments[-1].seq >= tagged[-1] + 2

    wait_until("segments of the returning publisher", resumed_for_a_while, 45)
    for rung in RUNGS:
        dvr = on_air.playlist(rung, "dvr.m3u8")
        seqs = [s.seq for s in dvr.segments]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        resumed = [s for s in dvr.segments if s.discontinuity]
        assert len(resumed) == 1, resumed
        assert resumed[0].seq > before
        assert resumed[0].init != dvr.segments[0].init
        live_lines = on_air.path(f"{rung}/live.m3u8").read_text().splitlines()
        assert "#EXT-X-DISCONTINUITY" in live_lines
    assert on_air.row().state is LiveState.LIVE


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def encoder_parent(worker_pid: int, stream_id: str) -> int | None:
    """The pool process whose child is the ffmpeg encoding ``stream_id``."""
    for child in _children(worker_pid):
        for grandchild in _children(child):
            command = _command(grandchild)
            if command.startswith("ffmpeg") and re.search(f"/{stream_id}[ ?]", command):
                return child
    return None


def test_a_killed_worker_process_is_replaced_and_the_stream_continues(on_air: OnAir) -> None:
    pool_process = encoder_parent(on_air.stack.live_worker_pid, on_air.stream_id)
    assert pool_process is not None, "no pool process runs the encoder"
    before = on_air.last_seq()
    os.kill(pool_process, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until("a segment after the takeover", lambda: on_air.last_seq() >= before + 2, 30)
    # About 2 s of restart and a 1 s segment; the rest is slack for a busy machine.
    assert time.monotonic() - killed_at < 20
    wait_until("more segments", lambda: on_air.last_seq() >= before + 4, 20)
    for rung in RUNGS:
        dvr = on_air.playlist(rung, "dvr.m3u8")
        seqs = [s.seq for s in dvr.segments]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        assert any(s.discontinuity and s.seq > before - 2 for s in dvr.segments)
    assert on_air.row().state is LiveState.LIVE


def test_a_frozen_publisher_raises_no_input_until_a_new_one_is_on_air(on_air: OnAir) -> None:
    # Frozen, the publisher keeps its connection but sends nothing: the encoder stalls (and
    # the edge drops the publisher after 10 s). Its operator restarts it within the grace.
    assert on_air.publisher is not None
    os.killpg(on_air.publisher.pid, signal.SIGSTOP)
    try:
        wait_until("a no_input alert", lambda: on_air.alerts().get("no_input") is True, 30)
    finally:
        os.killpg(on_air.publisher.pid, signal.SIGCONT)
        stop(on_air.publisher)
    before = on_air.last_seq()
    on_air.start()
    wait_until("segments again", lambda: on_air.last_seq() >= before + 3, 45)
    assert on_air.alerts()["no_input"] is False
    assert on_air.row().state is LiveState.LIVE
    dvr = on_air.playlist("360p", "dvr.m3u8")
    assert any(s.discontinuity and s.seq > before for s in dvr.segments)


def test_a_publisher_gone_past_the_grace_ends_the_stream(on_air: OnAir) -> None:
    assert on_air.publisher is not None
    stop(on_air.publisher, signal.SIGINT)
    on_air.publisher = None
    wait_until("the stream to end", lambda: on_air.row().state is LiveState.ENDED, GRACE_S + 30)
    for rung in RUNGS:
        for name in ("live.m3u8", "dvr.m3u8"):
            assert on_air.path(f"{rung}/{name}").read_text().rstrip().endswith("#EXT-X-ENDLIST")
        # Through drops, a takeover and the end, no segment outgrew the target duration.
        dvr = on_air.playlist(rung, "dvr.m3u8")
        assert dvr.target_duration == 1
        assert all(round(s.duration) <= dvr.target_duration for s in dvr.segments), dvr
    assert on_air.row().ended_at is not None
