"""The live encoder's command and what it reports (progress blocks, its own playlists), the
health and alerts built from them, and the store side of the live loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.s3server import moto_s3_server, moto_settings
from transcode.errors import TranscodeError
from transcode.live_encoder import (
    EncoderJob,
    EncoderStats,
    live_command,
    parse_local_playlist,
    parse_progress,
)
from transcode.live_ladder import LiveLadder, LiveRung
from transcode.live_playlists import LiveSegment, RungPlaylist, render_media
from transcode.live_session import (
    Health,
    LiveConfig,
    Publisher,
    PublisherStatus,
    resume_playlists,
)

LADDER = LiveLadder(
    "superfast",
    (LiveRung("480p", 854, 480, 30.0, 1000, 1250), LiveRung("360p", 640, 360, 30.0, 600, 750)),
)
# Two blocks as ffmpeg 5.1 writes them with -progress pipe:1.
PROGRESS = """frame=1
fps=0.00
stream_0_0_q=27.0
bitrate=N/A
total_size=N/A
out_time_us=33333
out_time_ms=33333
out_time=00:00:00.033333
dup_frames=0
drop_frames=0
speed=0.983x
progress=continue
frame=61
fps=30.01
stream_0_0_q=28.0
bitrate= 812.3kbits/s
total_size=N/A
out_time_us=2033333
out_time_ms=2033333
out_time=00:00:02.033333
dup_frames=0
drop_frames=3
speed=1.01x
progress=continue
frame=62
"""


def config(tmp_path: Path) -> LiveConfig:
    return LiveConfig(
        stream_id="s1", input_url="rtmp://127.0.0.1:1935/live/s1", work_root=tmp_path / "work",
        ffmpeg_bin="ffmpeg", ffprobe_bin="ffprobe", segment_s=1.0, window_segments=3,
        dvr_window_s=5, grace_s=4, budget_cores=1.5, stall_s=8,
    )  # fmt: skip


def test_one_process_pulls_rtmp_only_and_writes_every_rung(tmp_path: Path) -> None:
    job = EncoderJob("rtmp://127.0.0.1:1935/live/s1", LADDER, tmp_path, 1.0, has_audio=True)
    argv = live_command("ffmpeg", job)
    value = {flag: argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag.startswith("-")}
    assert value["-protocol_whitelist"] == "rtmp,rtmps,tcp,tls"
    assert value["-rw_timeout"] == "10000000"
    assert value["-i"] == "rtmp://127.0.0.1:1935/live/s1"
    assert value["-filter_complex"].startswith("[0:v:0]split=2[s0][s1];")
    assert "scale=854:480" in value["-filter_complex"]
    assert value["-force_key_frames"] == "expr:gte(t,n_forced*1)"
    assert value["-sc_threshold"] == "0"
    assert value["-preset"] == "superfast"
    assert value["-hls_time"] == "1"
    assert value["-hls_segment_type"] == "fmp4"
    assert "independent_segments" in value["-hls_flags"]
    assert value["-var_stream_map"] == "v:0,a:0,name:480p v:1,a:1,name:360p"
    assert value["-progress"] == "pipe:1"
    assert argv.count("0:a:0") == 2
    assert argv[-1] == str(tmp_path / "%v" / "index.m3u8")


def test_a_feed_without_audio_makes_video_only_rungs(tmp_path: Path) -> None:
    job = EncoderJob("rtmp://127.0.0.1/live/s1", LADDER, tmp_path, 2.0, has_audio=False)
    argv = live_command("ffmpeg", job)
    assert "0:a:0" not in argv
    assert "-c:a" not in argv
    assert argv[argv.index("-var_stream_map") + 1] == "v:0,name:480p v:1,name:360p"
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*1)"
    assert argv[argv.index("-hls_time") + 1] == "2"


def test_progress_blocks_are_parsed_and_an_unfinished_one_waits() -> None:
    blocks = parse_progress(PROGRESS.splitlines())
    assert blocks == [
        EncoderStats(1, 0.0, 0.983, 0, 0.033333, None),
        EncoderStats(61, 30.01, 1.01, 3, 2.033333, 812.3),
    ]


def test_ffmpegs_own_playlist_says_which_segments_are_complete(tmp_path: Path) -> None:
    text = (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n"
        '#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI="init_0.mp4"\n'
        "#EXTINF:1.000000,\nseg_000004.m4s\n#EXTINF:0.966667,\nseg_000005.m4s\n"
    )
    segments = parse_local_playlist(text, tmp_path)
    assert [(s.index, s.path.name, s.duration) for s in segments] == [
        (4, "seg_000004.m4s", 1.0), (5, "seg_000005.m4s", 0.966667),
    ]  # fmt: skip
    assert segments[0].init == tmp_path / "init_0.mp4"


@dataclass
class RecordingControl:
    """The alerts the loop raised (the rest of LiveControl is not used here)."""

    alerts: list[tuple[str, bool]] = field(default_factory=list)

    def status(self) -> PublisherStatus:
        return PublisherStatus(True, 1, None, active=True, ladder=[])

    def heartbeat(self, health: dict[str, object]) -> bool:
        return True

    def save_ladder(self, ladder: list[dict[str, object]]) -> None:
        pass

    def went_live(self, master_key: str) -> None:
        pass

    def alert(self, name: str, active: bool, data: dict[str, object]) -> None:
        self.alerts.append((name, active))

    def finished(self, error: TranscodeError | None) -> None:
        pass


def test_alerts_are_raised_and_cleared_on_transitions_only() -> None:
    now = [0.0]
    control = RecordingControl()
    health = Health(control, clock=lambda: now[0])
    for second in range(12):  # slow for 12 s, then fast again for 6 s
        now[0] = second
        health.observe(EncoderStats(second * 30, 25.0, 0.8, 0, second, 500.0))
    for second in range(12, 19):
        now[0] = second
        health.observe(EncoderStats(second * 30, 30.0, 1.0, 0, second, 500.0))
    health.set_input_gone(True)
    health.set_input_gone(True)
    health.segment_stored(datetime.now(UTC))
    assert control.alerts == [
        ("behind_real_time", True), ("behind_real_time", False),
        ("no_input", True), ("no_input", False),
    ]  # fmt: skip


def test_a_silent_input_is_not_a_slow_encoder() -> None:
    now = [0.0]
    control = RecordingControl()
    health = Health(control, clock=lambda: now[0])
    for second in range(12):  # ffmpeg waits for input: frames stand still, speed falls
        now[0] = second
        health.observe(EncoderStats(90, 30.0, 3 / (second + 3), 0, 3.0, 500.0))
    assert control.alerts == []


def test_dropped_frames_alert_counts_recent_drops_only() -> None:
    now = [0.0]
    control = RecordingControl()
    health = Health(control, clock=lambda: now[0])
    for second, dropped in enumerate([0, 5, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20]):
        now[0] = second
        health.observe(EncoderStats(second * 30, 30.0, 1.0, dropped, second, 500.0))
    assert control.alerts == [("dropped_frames", True), ("dropped_frames", False)]


def test_health_says_what_the_partner_needs() -> None:
    health = Health(RecordingControl())
    health.ladder = LADDER
    health.observe(EncoderStats(61, 30.0, 1.01, 3, 2.0, 800.0))
    at = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    health.segment_stored(at)
    snapshot = health.snapshot(at + timedelta(seconds=1.5))
    assert snapshot["encoder_speed"] == 1.01
    assert snapshot["dropped_frames"] == 3
    assert snapshot["last_segment_age_s"] == 1.5
    assert snapshot["preset"] == "superfast"
    assert snapshot["rungs"] == ["480p", "360p"]


class OrderedStore(LocalObjectStore):
    """A real local store that also remembers the order of writes and deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.log: list[str] = []

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        super().put_bytes(key, data, content_type=content_type)
        self.log.append(f"put {key}")

    def delete(self, key: str) -> None:
        super().delete(key)
        self.log.append(f"delete {key}")


def test_segments_are_stored_before_the_playlists_that_name_them(tmp_path: Path) -> None:
    store = OrderedStore(tmp_path / "store")
    playlists = {r.name: RungPlaylist(2) for r in LADDER.rungs}
    publisher = Publisher(store, config(tmp_path), LADDER, True, playlists)
    local = tmp_path / "seg.m4s"
    local.write_bytes(b"media")
    start = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    for seq in range(7):
        segment = LiveSegment(seq, 1.0, start + timedelta(seconds=seq), "init-1.mp4")
        publisher.add_segment("360p", segment, local)
    prefix = "live/s1/360p/"
    assert store.log[:3] == [
        f"put {prefix}0.m4s",
        f"put {prefix}live.m3u8",
        f"put {prefix}dvr.m3u8",
    ]
    # A DVR window of 5 s: segment 0 goes once segment 5 is listed, and only after.
    assert store.log.index(f"delete {prefix}0.m4s") > store.log.index(f"put {prefix}5.m4s")
    assert sorted(store.list_keys(prefix)) == sorted(
        [f"{prefix}{n}.m4s" for n in (2, 3, 4, 5, 6)] + [f"{prefix}live.m3u8", f"{prefix}dvr.m3u8"]
    )
    live = store.get_bytes(f"{prefix}live.m3u8").decode()
    assert "#EXT-X-MEDIA-SEQUENCE:4" in live


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each backend: what the live loop reads back and deletes must work on S3 too."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3ObjectStore.from_settings(moto_settings(endpoint, f"live-{uuid.uuid4().hex[:12]}"))
    s3.ensure_bucket()
    return s3


def test_a_takeover_resumes_every_rung_at_the_same_sequence(
    tmp_path: Path, store: ObjectStore
) -> None:
    start = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    for rung, count in (("480p", 5), ("360p", 4)):  # lost between the two rungs' uploads
        playlist = RungPlaylist(2)
        for seq in range(count):
            playlist.append(LiveSegment(seq, 1.0, start + timedelta(seconds=seq), "init-1.mp4"))
            store.put_bytes(f"live/s1/{rung}/{seq}.m4s", b"x")
        store.put_bytes(f"live/s1/{rung}/dvr.m3u8", render_media(playlist).encode())
    playlists = resume_playlists(store, config(tmp_path), LADDER)
    assert {rung: p.next_seq for rung, p in playlists.items()} == {"480p": 4, "360p": 4}
    assert not store.exists("live/s1/480p/4.m4s")
