"""Cutting clips (and the replay) from a live stream's DVR objects: the playlist, which
segments a span takes, which are copied and which re-encoded, and the MP4 that comes out."""

from __future__ import annotations

import json
import subprocess  # noqa: TID251 - ffprobe checks the MP4 the cut wrote
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from core.storage import LocalObjectStore
from tests.live_fixtures import LiveLayout, find_marks, render_sessions, write_live_layout
from transcode.live_clip import (
    CopyRun,
    CutTools,
    Dvr,
    Edge,
    NoDvr,
    OutsideWindow,
    copy_command,
    cut_span,
    edge_command,
    parse_codecs,
    parse_dvr,
    parse_starts,
    placement,
    plan_parts,
    read_dvr,
    select,
    top_variant,
)
from transcode.live_replay import StillLive, build_replay
from transcode.master import rung_from_ffmpeg_master
from transcode.quick import COPY_MASTER, remux_command
from transcode.runner import run_ffmpeg

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
# The fixture: session 1 is 0..8 s (seq 0-7), the publisher is away 3 s, session 2 is 11..17 s
# (seq 8-13).


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_sessions(tmp_path_factory.mktemp("live-rendered"))


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.fixture
def layout(store: LocalObjectStore, rendered: Path) -> LiveLayout:
    return write_live_layout(store, "stream1", rendered, start=T0, ended=True)


@pytest.fixture
def dvr(store: LocalObjectStore, layout: LiveLayout) -> Dvr:
    return read_dvr(store, layout.stream_id)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def probe_json(path: Path) -> dict[str, list[dict[str, float | str]]]:
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, list[dict[str, float | str]]] = json.loads(done.stdout)
    return probed


def probe(path: Path) -> dict[str, dict[str, float | str]]:
    return {str(s["codec_type"]): s for s in probe_json(path)["streams"]}


def packet_times(path: Path, stream: str) -> list[float]:
    argv = ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries"]
    argv += ["packet=pts_time", "-of", "csv=p=0", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return sorted(float(line) for line in done.stdout.split())


def stream_duration(stream: dict[str, float | str]) -> float:
    return float(stream["duration"])


# --- the playlist ---------------------------------------------------------------------------


def test_the_top_rung_dvr_is_read_with_sessions_dates_and_end(dvr: Dvr) -> None:
    assert len(dvr.segments) == 14
    assert dvr.ended
    assert dvr.start == T0
    assert dvr.end == at(17)
    assert dvr.fps == 25
    first, returning = dvr.segments[0], dvr.segments[8]
    assert first.key == "live/stream1/360p/0.m4s"
    assert first.init_key == "live/stream1/360p/init-1.mp4"
    assert (returning.seq, returning.session, returning.pdt) == (8, 1, at(11))
    assert returning.init_key == "live/stream1/360p/init-2.mp4"


def test_a_stream_still_live_has_no_end(store: LocalObjectStore, rendered: Path) -> None:
    write_live_layout(store, "onair", rendered, start=T0, ended=False)
    assert not read_dvr(store, "onair").ended


def test_the_tallest_variant_is_the_top_rung() -> None:
    master = (
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x180\n180p/dvr.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360\n360p/dvr.m3u8\n"
    )
    assert top_variant(master).uri == "360p/dvr.m3u8"


def test_a_stream_without_dvr_objects_has_no_dvr(store: LocalObjectStore) -> None:
    with pytest.raises(NoDvr):
        read_dvr(store, "never-live")


# --- choosing segments ----------------------------------------------------------------------


def test_a_span_inside_segments_has_two_edges_and_a_copied_run(dvr: Dvr) -> None:
    parts = plan_parts(select(dvr, at(1.4), at(5.6)))
    assert [type(part) for part in parts] == [Edge, CopyRun, Edge]
    head, run, tail = parts
    assert isinstance(head, Edge)
    assert isinstance(run, CopyRun)
    assert isinstance(tail, Edge)
    assert (head.piece.segment.seq, head.piece.start_s, head.piece.end_s) == (1, 0.4, 1.0)
    assert [segment.seq for segment in run.segments] == [2, 3, 4]
    assert tail.piece.segment.seq == 5
    assert tail.piece.start_s == 0
    assert tail.piece.end_s == pytest.approx(0.6)


def test_a_span_on_segment_boundaries_is_copied_only(dvr: Dvr) -> None:
    parts = plan_parts(select(dvr, at(2), at(5)))
    assert len(parts) == 1
    assert isinstance(parts[0], CopyRun)
    assert [segment.seq for segment in parts[0].segments] == [2, 3, 4]


def test_edges_fall_on_the_frame_grid(dvr: Dvr) -> None:
    (piece,) = select(dvr, at(3.21), at(3.73))  # 25 fps: frames every 0.04 s
    assert piece.start_s == pytest.approx(0.2)
    assert piece.end_s == pytest.approx(0.72)


def test_a_span_within_one_segment_is_one_edge(dvr: Dvr) -> None:
    parts = plan_parts(select(dvr, at(3.2), at(3.72)))
    assert len(parts) == 1
    assert isinstance(parts[0], Edge)
    assert parts[0].piece.duration_s == pytest.approx(0.52)


def test_a_span_across_the_discontinuity_skips_the_gap(dvr: Dvr) -> None:
    pieces = select(dvr, at(6.52), at(13.32))  # on the 25 fps frame grid
    parts = plan_parts(pieces)
    assert [type(part) for part in parts] == [Edge, CopyRun, CopyRun, Edge]
    first_run, second_run = parts[1], parts[2]
    assert isinstance(first_run, CopyRun)
    assert isinstance(second_run, CopyRun)
    assert [s.seq for s in first_run.segments] == [7]
    assert [s.seq for s in second_run.segments] == [8, 9]  # another init: another run
    assert sum(piece.duration_s for piece in pieces) == pytest.approx(1.48 + 2.32)


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1.0, 2.0), (16.0, 18.0), (4.0, 4.0), (5.0, 3.0), (8.2, 10.5)],
    ids=["before-the-window", "after-the-end", "empty", "backwards", "only-the-gap"],
)
def test_a_span_the_dvr_does_not_hold_is_refused(dvr: Dvr, start: float, end: float) -> None:
    with pytest.raises(OutsideWindow):
        select(dvr, at(start), at(end))


# --- commands ---------------------------------------------------------------------------------


def test_only_edges_are_encoded_and_copied_runs_are_not(dvr: Dvr, tmp_path: Path) -> None:
    head, run, _tail = plan_parts(select(dvr, at(1.4), at(5.6)))
    assert isinstance(head, Edge)
    assert isinstance(run, CopyRun)
    codecs = parse_codecs(
        json.dumps(
            {
                "streams": [
                    {"codec_type": "video", "codec_name": "h264", "profile": "High", "level": 30},
                    {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000"},
                ]
            }
        )
    )
    source, out = tmp_path / "in.mp4", tmp_path / "out.ts"
    edge = edge_command("ffmpeg", source, out, head.piece, codecs, placement(1.08, 0.0))
    copy = copy_command("ffmpeg", source, out, placement(2.08, 0.6).shift_s)
    assert "libx264" in edge
    assert edge[edge.index("-profile:v") + 1] == "high"
    assert edge[edge.index("-level:v") + 1] == "3.0"
    assert "trim=start=1.480000:end=2.080000" in edge[edge.index("-filter_complex") + 1]
    assert "libx264" not in copy
    assert copy[copy.index("-c") + 1] == "copy"
    for argv in (edge, copy):
        assert argv[argv.index("-protocol_whitelist") + 1] == "file"


# --- the MP4 ----------------------------------------------------------------------------------


def cut(store: LocalObjectStore, dvr: Dvr, work: Path, start: float, end: float) -> Path:
    made = cut_span(CutTools(store), dvr, at(start), at(end), work)
    return made.path


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(1.4, 5.6, 4.2), (2.0, 5.0, 3.0), (3.32, 3.72, 0.4), (6.5, 13.3, 3.8)],
    ids=["edges-and-copy", "copy-only", "one-edge", "across-discontinuity"],
)
def test_the_cut_lasts_what_was_asked_with_sound_in_step(
    store: LocalObjectStore, dvr: Dvr, tmp_path: Path, start: float, end: float, expected: float
) -> None:
    streams = probe(cut(store, dvr, tmp_path / "cut", start, end))
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    assert stream_duration(video) == pytest.approx(expected, abs=0.1)
    assert stream_duration(audio) == pytest.approx(expected, abs=0.1)
    # Sound and pictures start together (within a frame of 25 fps plus an AAC frame).
    assert abs(float(video["start_time"]) - float(audio["start_time"])) < 0.1
    assert int(video["nb_frames"]) == pytest.approx(expected * 25, abs=2)
    # The sync marks (a white picture and a beep together) stay together.
    marks = find_marks(tmp_path / "cut" / "clip.mp4", tmp_path).inside(expected)
    assert marks.in_step(), marks
    # Pictures every 1/25 s, none twice and none missing where parts join.
    times = packet_times(tmp_path / "cut" / "clip.mp4", "v")
    assert all(
        later - earlier == pytest.approx(0.04, abs=0.002) for earlier, later in pairwise(times)
    )


def test_the_replay_is_every_session_copied(
    store: LocalObjectStore, layout: LiveLayout, tmp_path: Path
) -> None:
    made = build_replay(CutTools(store), layout.stream_id, tmp_path / "replay")
    assert all(isinstance(part, CopyRun) for part in made.parts)
    assert len(made.parts) == 2  # one run per publisher session
    streams = probe(made.path)
    assert stream_duration(streams["video"]) == pytest.approx(14.0, abs=0.1)
    assert stream_duration(streams["audio"]) == pytest.approx(14.0, abs=0.1)
    assert int(streams["video"]["nb_frames"]) == 14 * 25
    marks = find_marks(made.path, tmp_path).inside(14.0)
    assert marks.in_step(), marks
    assert len(marks.flashes) == 2 * 14


def test_a_stream_still_on_air_has_no_replay_yet(
    store: LocalObjectStore, rendered: Path, tmp_path: Path
) -> None:
    write_live_layout(store, "onair", rendered, start=T0, ended=False)
    with pytest.raises(StillLive):
        build_replay(CutTools(store), "onair", tmp_path / "replay")


def test_the_cut_copied_into_a_rung_announces_its_h264_codec(
    store: LocalObjectStore, dvr: Dvr, tmp_path: Path
) -> None:
    source = cut(store, dvr, tmp_path / "cut", 1.4, 5.6)
    out = tmp_path / "hls"
    argv = remux_command("ffmpeg", source, out, has_audio=True, segment_s=4, copy_audio=True)
    run_ffmpeg(argv, timeout_s=60)
    rung = rung_from_ffmpeg_master(out, COPY_MASTER, "360p", 25.0)
    # ffmpeg's own master has no video CODECS for a copy from MP4; the init segment has it.
    assert rung.codecs.startswith("avc1.64")


def test_segments_of_one_encoder_run_are_laid_end_to_end_from_the_median_anchor() -> None:
    # As a live encoder stamping segments when they complete wrote them: the first stamp is
    # off by over a second, the others jitter by ~20 ms.
    stamps = ["55.316", "54.656", "55.647", "56.647", "57.647", "58.647", "59.647"]
    lines = ["#EXTM3U", "#EXT-X-MEDIA-SEQUENCE:0", '#EXT-X-MAP:URI="init-1.mp4"']
    for seq, stamp in enumerate(stamps):
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:2026-11-30T04:41:{stamp}Z", "#EXTINF:1.000,"]
        lines.append(f"{seq}.m4s")
    dvr = parse_dvr("\n".join(lines), "live/s/360p")
    starts = [segment.pdt for segment in dvr.segments]
    anchor = datetime(2026, 11, 30, 4, 41, 53, 647000, tzinfo=UTC)
    assert starts == [anchor + timedelta(seconds=n) for n in range(len(stamps))]


def test_an_edge_ends_where_the_copied_run_after_it_starts(
    store: LocalObjectStore, dvr: Dvr, tmp_path: Path
) -> None:
    head, run, _tail = plan_parts(select(dvr, at(1.4), at(5.6)))
    assert isinstance(head, Edge)
    assert isinstance(run, CopyRun)

    def fmp4(name: str, keys: list[str]) -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(store.get_bytes(key) for key in keys))
        return path

    edge_in = fmp4("edge.mp4", [head.piece.segment.init_key, head.piece.segment.key])
    run_in = fmp4("run.mp4", [run.segments[0].init_key, *(s.key for s in run.segments)])
    edge_probe = json.dumps(probe_json(edge_in))
    edge_at = placement(parse_starts(edge_probe).video, 0.0)
    run_at = placement(parse_starts(json.dumps(probe_json(run_in))).video, head.piece.duration_s)
    codecs = parse_codecs(edge_probe)
    run_ffmpeg(
        edge_command("ffmpeg", edge_in, tmp_path / "e.ts", head.piece, codecs, edge_at),
        timeout_s=60,
    )
    run_ffmpeg(copy_command("ffmpeg", run_in, tmp_path / "r.ts", run_at.shift_s), timeout_s=60)
    edge_video = probe(tmp_path / "e.ts")["video"]
    run_video = probe(tmp_path / "r.ts")["video"]
    edge_end = float(edge_video["start_time"]) + stream_duration(edge_video)
    assert edge_end == pytest.approx(float(run_video["start_time"]), abs=0.001)
