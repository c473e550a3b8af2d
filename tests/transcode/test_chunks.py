"""Chunked encoding with real ffmpeg: split at keyframes, encode each chunk, join by copy.

The source is 6 s at 320x180 with a keyframe every second, split into 2 s chunks, so three
chunks go through the whole path; the joined ladder is checked with ffprobe and ``m3u8``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
import pytest

from transcode.chunks import (
    CONCAT_FORMAT_WHITELIST,
    ChunkJob,
    chunk_encode_command,
    chunk_suffix,
    encode_chunk,
    join_chunks,
    join_command,
    split_command,
    split_source,
    stream_options,
    write_concat_list,
)
from transcode.commands import FORMAT_WHITELIST, HlsOptions
from transcode.ladder import RUNG_144P, Rendition, Rung, renditions_for
from transcode.master import VideoRung
from transcode.probe import ProbeResult, probe
from transcode.runner import run_capture, run_ffmpeg

TIMEOUT_S = 60.0
SOURCE_S = 6.0
FPS = 30
FRAME_S = 1 / FPS
OPTIONS = HlsOptions(segment_s=2)
READ_OURS = ["-protocol_whitelist", "file", "-format_whitelist", f"hls,{FORMAT_WHITELIST}"]
LADDER = (Rung("180p", 180, bpp=0.15), RUNG_144P)


@dataclass(frozen=True)
class Chunked:
    source: Path
    info: ProbeResult
    renditions: list[Rendition]
    chunks: list[Path]
    out: Path


def ffprobe_json(target: Path, *entries: str) -> dict[str, Any]:
    argv = ["ffprobe", "-v", "error", *READ_OURS, "-print_format", "json", *entries, str(target)]
    document: dict[str, Any] = json.loads(run_capture(argv, timeout_s=TIMEOUT_S))
    return document


def video_packets(target: Path) -> list[dict[str, Any]]:
    entries = ("-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags")
    packets: list[dict[str, Any]] = ffprobe_json(target, *entries)["packets"]
    return packets


def first_pts(target: Path, stream: str) -> float:
    entries = ("-select_streams", stream, "-show_entries", "packet=pts_time")
    packets = ffprobe_json(target, *entries, "-read_intervals", "%+#5")["packets"]
    return min(float(p["pts_time"]) for p in packets)


def keyed_source(directory: Path) -> Path:
    """6 s, 320x180, 30 fps, a keyframe every 30 frames, with a tone (AAC)."""
    path = directory / "keyed.mp4"
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration={SOURCE_S:g}"]
    argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SOURCE_S:g}"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p"]
    argv += ["-c:a", "aac", "-b:a", "64k", str(path)]
    run_ffmpeg(argv, timeout_s=TIMEOUT_S)
    return path


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Chunked:
    """The whole path once: split, encode every chunk, join with the source's audio."""
    work = tmp_path_factory.mktemp("chunked")
    source = keyed_source(work)
    info = probe(source, ffprobe_bin="ffprobe", timeout_s=TIMEOUT_S)
    renditions = renditions_for(info, LADDER)
    chunks = split_source(
        source, work / "chunks", ffmpeg_bin="ffmpeg", chunk_s=2, timeout_s=TIMEOUT_S
    )
    encoded = [
        encode_chunk(
            chunk,
            work / "enc" / str(index),
            renditions,
            info,
            ffmpeg_bin="ffmpeg",
            timeout_s=TIMEOUT_S,
            options=OPTIONS,
        )
        for index, chunk in enumerate(chunks)
    ]
    out = work / "out"
    join_chunks(
        encoded,
        work / "lists",
        out,
        audio_source=source,
        ffmpeg_bin="ffmpeg",
        timeout_s=TIMEOUT_S,
        options=OPTIONS,
    )
    return Chunked(source, info, renditions, chunks, out)


def playlist_duration(path: Path) -> float:
    return sum(segment.duration or 0.0 for segment in m3u8.load(str(path)).segments)


# --- the whole path ----------------------------------------------------------------------


def test_split_gives_chunks_that_each_start_on_a_keyframe(chunked: Chunked) -> None:
    assert len(chunked.chunks) >= 3
    assert [c.suffix for c in chunked.chunks] == [".mov"] * len(chunked.chunks)
    total = 0.0
    for chunk in chunked.chunks:
        packets = video_packets(chunk)
        first = min(packets, key=lambda p: float(p["pts_time"]))
        assert "K" in first["flags"]
        assert float(first["pts_time"]) == pytest.approx(0.0, abs=FRAME_S)  # reset timestamps
        total += len(packets) * FRAME_S
    assert total == pytest.approx(SOURCE_S, abs=FRAME_S / 2)  # no frame lost or doubled


def test_joined_rungs_last_as_long_as_the_source(chunked: Chunked) -> None:
    for index in range(len(chunked.renditions)):
        playlist = chunked.out / f"v{index}" / "index.m3u8"
        assert playlist_duration(playlist) == pytest.approx(SOURCE_S, abs=0.1)
        frames = video_packets(playlist)
        assert len(frames) == pytest.approx(SOURCE_S * FPS, abs=len(chunked.chunks))


def test_joined_timestamps_are_continuous_and_monotonic(chunked: Chunked) -> None:
    for index in range(len(chunked.renditions)):
        packets = video_packets(chunked.out / f"v{index}" / "index.m3u8")
        dts = [float(p["dts_time"]) for p in packets]
        assert all(b > a for a, b in itertools.pairwise(dts))
        pts = sorted(float(p["pts_time"]) for p in packets)
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert max(steps) == pytest.approx(FRAME_S, abs=0.002)  # no gap at a chunk boundary
        assert min(steps) == pytest.approx(FRAME_S, abs=0.002)  # and no overlap


def test_rung_keyframes_and_segments_line_up(chunked: Chunked) -> None:
    def keyframes(index: int) -> list[float]:
        packets = video_packets(chunked.out / f"v{index}" / "index.m3u8")
        return [round(float(p["pts_time"]), 3) for p in packets if "K" in p["flags"]]

    def durations(index: int) -> list[float]:
        playlist = m3u8.load(str(chunked.out / f"v{index}" / "index.m3u8"))
        return [round(segment.duration or 0.0, 3) for segment in playlist.segments]

    assert keyframes(0) == keyframes(1)
    # Forced every 2 s, chunk starts included (the muxer shifts every stream alike so that
    # B-frame decoding times are not negative; the audio moves with it).
    assert [round(k - keyframes(0)[0], 3) for k in keyframes(0)] == [0.0, 2.0, 4.0]
    assert durations(0) == durations(1) == [2.0, 2.0, 2.0]


def test_audio_lasts_as_long_as_the_video(chunked: Chunked) -> None:
    audio = chunked.out / f"v{len(chunked.renditions)}" / "index.m3u8"
    video = chunked.out / "v0" / "index.m3u8"
    assert playlist_duration(audio) == pytest.approx(playlist_duration(video), abs=0.1)
    (stream,) = ffprobe_json(audio, "-show_streams")["streams"]
    assert (stream["codec_name"], stream["channels"]) == ("aac", 2)


def test_audio_starts_where_it_does_in_the_source(chunked: Chunked) -> None:
    def lead_of_video(video: Path, audio: Path, audio_stream: str) -> float:
        """How much later the first picture starts than the first sound."""
        return first_pts(video, "v:0") - first_pts(audio, audio_stream)

    joined = lead_of_video(
        chunked.out / "v0" / "index.m3u8",
        chunked.out / f"v{len(chunked.renditions)}" / "index.m3u8",
        "a:0",
    )
    source = lead_of_video(chunked.source, chunked.source, "a:0")
    assert joined == pytest.approx(source, abs=0.01)


def test_joined_master_lists_every_rung_with_codecs(chunked: Chunked) -> None:
    master = m3u8.load(str(chunked.out / "master.m3u8"))
    video = [p for p in master.playlists if p.stream_info.resolution]
    assert [p.uri for p in video] == ["v0/index.m3u8", "v1/index.m3u8"]
    assert [p.stream_info.resolution for p in video] == [(320, 180), (256, 144)]
    assert all((p.stream_info.codecs or "").startswith("avc1.64") for p in video)  # High profile
    assert [m.uri for m in master.media] == ["v2/index.m3u8"]


def test_joined_rungs_are_the_ladder_encoding(chunked: Chunked) -> None:
    for index, rendition in enumerate(chunked.renditions):
        (stream,) = ffprobe_json(chunked.out / f"v{index}" / "index.m3u8", "-show_streams")[
            "streams"
        ]
        assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == (
            "h264",
            "High",
            "yuv420p",
        )
        assert (stream["width"], stream["height"]) == (rendition.width, rendition.height)


# --- builders, no ffmpeg -------------------------------------------------------------------


def test_split_command_copies_the_first_video_stream_behind_whitelists(tmp_path: Path) -> None:
    argv = split_command("ffmpeg", Path("in.mp4"), tmp_path, chunk_s=120)
    joined = " ".join(argv)
    assert f"-protocol_whitelist file -format_whitelist {FORMAT_WHITELIST} -i " in joined
    assert "-map 0:v:0 -c copy -f segment -segment_time 120 -reset_timestamps 1" in joined
    assert argv[-1] == str(tmp_path / "chunk_%05d.mov")
    assert argv[argv.index("-i") + 1] == str(Path("in.mp4").absolute())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"chunk_s": 0}, "chunk_s"), ({"chunk_s": 2, "suffix": ".m3u8"}, "chunks are")],
)
def test_split_command_refuses_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        split_command("ffmpeg", Path("in.mp4"), tmp_path, **kwargs)


def test_chunks_keep_rotation_except_for_webm_codecs() -> None:
    assert chunk_suffix("h264") == ".mov"  # MOV keeps a phone's display matrix
    assert chunk_suffix("vp9") == ".mkv"


def test_chunk_encode_command_is_one_decode_with_each_rung_on_its_own(
    chunked: Chunked, tmp_path: Path
) -> None:
    argv = chunk_encode_command(
        "ffmpeg", chunked.chunks[0], tmp_path, chunked.renditions, chunked.info, OPTIONS
    )
    assert argv.count("-i") == 1
    assert argv[argv.index("-i") - 4 : argv.index("-i")] == [
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-protocol_whitelist",
        "file",
    ]
    assert "split=2" in argv[argv.index("-filter_complex") + 1]
    assert [a for a in argv if a.startswith(str(tmp_path))] == [
        str(tmp_path / "r0.mp4"),
        str(tmp_path / "r1.mp4"),
    ]
    bitrates = [argv[i + 1] for i, a in enumerate(argv) if a == "-b:v"]
    assert bitrates == [f"{r.video_kbps}k" for r in chunked.renditions]
    assert argv.count("-c:v") == 2
    assert argv.count("libx264") == 2
    assert "-sc_threshold" in argv
    assert "-c:a" not in argv


def test_stream_options_pick_one_stream() -> None:
    options = {"c:v": "libx264", "b:v:0": "1k", "b:v:1": "2k", "maxrate:v:1": "3k"}
    assert stream_options(options, 1) == {"c:v": "libx264", "b:v": "2k", "maxrate:v": "3k"}
    assert stream_options(options, 0) == {"c:v": "libx264", "b:v": "1k"}


def test_join_command_copies_video_behind_fenced_concat_inputs(tmp_path: Path) -> None:
    lists = [tmp_path / "list_0.txt", tmp_path / "list_1.txt"]
    argv = join_command(
        "ffmpeg", lists, tmp_path / "out", audio_source=Path("src.mp4"), options=OPTIONS
    )
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    assert [argv[i + 1] for i in inputs] == [*map(str, lists), str(Path("src.mp4").absolute())]
    # Each input's own options: from after the previous input's path up to its -i.
    starts = [1] + [i + 2 for i in inputs[:-1]]
    *concats, audio_input = [argv[s:i] for s, i in zip(starts, inputs, strict=True)]
    for before in concats:
        assert before[before.index("-f") + 1] == "concat"
        assert before[before.index("-format_whitelist") + 1] == CONCAT_FORMAT_WHITELIST
        assert before[before.index("-protocol_whitelist") + 1] == "file"
    assert audio_input[audio_input.index("-format_whitelist") + 1] == FORMAT_WHITELIST
    assert "concat" not in FORMAT_WHITELIST.split(",")
    assert "-vn" in audio_input
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert argv[argv.index("-c:a") + 1] == "aac"
    assert argv[argv.index("-ac") + 1] == "2"
    assert argv[argv.index("-hls_time") + 1] == "2"
    assert argv[argv.index("-var_stream_map") + 1] == "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud"


def test_join_command_without_audio_encodes_none(tmp_path: Path) -> None:
    argv = join_command("ffmpeg", [tmp_path / "l"], tmp_path, audio_source=None, options=OPTIONS)
    assert "-c:a" not in argv
    assert argv.count("-i") == 1
    assert argv[argv.index("-var_stream_map") + 1] == "v:0"


def test_concat_lists_quote_paths_and_refuse_line_breaks(tmp_path: Path) -> None:
    listed = write_concat_list(tmp_path / "l.txt", [tmp_path / "it's.mp4"])
    assert listed.read_text().splitlines() == [
        "ffconcat version 1.0",
        "file '" + str(tmp_path) + "/it'\\''s.mp4'",
    ]
    with pytest.raises(ValueError, match="concat list"):
        write_concat_list(tmp_path / "m.txt", [tmp_path / "a\nfile '/etc/passwd'"])


def test_a_job_survives_its_json(chunked: Chunked) -> None:
    job = ChunkJob(
        source_key="sources/a/original",
        info=chunked.info,
        renditions=tuple(chunked.renditions),
        options=OPTIONS,
        with_audio=False,
        chunk_keys=("work/a/1/chunks/00000.mov",),
        kept_rungs=(VideoRung("180p", "src/v0/index.m3u8", 320, 180, "avc1.42c00d", 30.0),),
        kept_audio="src/v1/index.m3u8",
    )
    assert ChunkJob.from_json(job.to_json()) == job
