"""End to end with real ffmpeg: tiny clips in, a playable HLS ladder out.

Every output is checked the way a player and an operator would: ffprobe reads every rung
(codec, profile, pixel format, size, rate, keyframe instants) and the ``m3u8`` package reads
every playlist (the master's attributes, the audio-only variant, every segment on disk).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import m3u8
import pytest

from tests.media import OddVideo, make_clip
from transcode.commands import FORMAT_WHITELIST, HlsOptions
from transcode.errors import UnsupportedInput
from transcode.hls import HlsOutput, available_filters, encode_ladder, transcode_to_hls
from transcode.ladder import RUNG_240P, RUNG_720P, Rung, renditions_for
from transcode.playlists import parse_master, segment_durations
from transcode.probe import probe
from transcode.runner import run_capture

TIMEOUT_S = 60.0
# The output is ours, so here the hls demuxer (and the mp4 one for its segments) may run.
READ_HLS = ["-protocol_whitelist", "file", "-format_whitelist", f"hls,{FORMAT_WHITELIST}"]
Made = tuple[Path, HlsOutput]


def ffprobe_json(target: Path, *entries: str) -> dict[str, Any]:
    argv = ["ffprobe", "-v", "error", *READ_HLS, "-print_format", "json", *entries, str(target)]
    document: dict[str, Any] = json.loads(run_capture(argv, timeout_s=TIMEOUT_S))
    return document


def ffprobe_output(master: Path) -> list[dict[str, Any]]:
    """The streams ffprobe finds through the master playlist, as a player would walk it."""
    streams: list[dict[str, Any]] = ffprobe_json(master, "-show_streams")["streams"]
    return streams


def rung_stream(playlist: Path) -> dict[str, Any]:
    streams: list[dict[str, Any]] = ffprobe_json(playlist, "-show_streams")["streams"]
    assert len(streams) == 1
    return streams[0]


def keyframe_times(target: Path) -> list[float]:
    """Times of the video keyframes from the first one (packets only: nothing is decoded).

    Relative, because x264's B-frames delay every presentation time by the same amount.
    """
    packets = ffprobe_json(
        target, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags"
    )["packets"]
    times = [float(p["pts_time"]) for p in packets if "K" in p["flags"]]
    return [round(time - times[0], 3) for time in times]


def check_ladder(out_dir: Path, output: HlsOutput, *, audio: bool = True) -> None:
    """Every rung is H.264 High 8-bit 4:2:0 at its size and rate, keyframes aligned, and
    every playlist is valid HLS whose segments exist."""
    for rendition in output.renditions:
        stream = rung_stream(out_dir / rendition.playlist)
        assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == (
            "h264",
            "High",
            "yuv420p",
        )
        assert (stream["width"], stream["height"]) == (rendition.width, rendition.height)
        assert rendition.frame_rate is not None
        assert float(Fraction(stream["avg_frame_rate"])) == pytest.approx(
            rendition.frame_rate, rel=0.01
        )
    keyframes = [keyframe_times(out_dir / r.playlist) for r in output.renditions]
    assert all(times == keyframes[0] for times in keyframes)
    check_playlists(out_dir, output, audio=audio)


def check_playlists(out_dir: Path, output: HlsOutput, *, audio: bool) -> None:
    master = m3u8.load(str(out_dir / output.master))
    assert master.is_variant
    video = [p for p in master.playlists if p.stream_info.resolution]
    assert [p.uri for p in video] == [r.playlist for r in output.renditions]
    for variant in video:
        info = variant.stream_info
        assert info.bandwidth is not None
        assert info.average_bandwidth is not None
        assert info.bandwidth >= info.average_bandwidth > 0
        assert (info.codecs or "").startswith("avc1.64")
        assert info.frame_rate
    audio_only = [p for p in master.playlists if not p.stream_info.resolution]
    if audio:
        (only,) = audio_only
        assert only.stream_info.codecs == "mp4a.40.2"
        assert only.uri == output.audio_playlist == master.media[0].uri
    else:
        assert audio_only == []
        assert list(master.media) == []
    for uri in [p.uri for p in master.playlists]:
        check_media_playlist(out_dir / str(uri))


def check_media_playlist(path: Path) -> None:
    media = m3u8.load(str(path))
    assert media.is_endlist
    assert media.segments
    assert (path.parent / str(media.segment_map[0].uri)).is_file()
    assert all((path.parent / str(segment.uri)).is_file() for segment in media.segments)


def transcode(source: Path, out_dir: Path, **kwargs: Any) -> Made:
    return out_dir, transcode_to_hls(source, out_dir, timeout_s=TIMEOUT_S, **kwargs)


@pytest.fixture(scope="module")
def with_audio(
    clip_with_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, HlsOutput, list[float]]:
    out_dir = tmp_path_factory.mktemp("hls-audio") / "out"
    progress: list[float] = []
    output = transcode_to_hls(
        clip_with_audio, out_dir, timeout_s=TIMEOUT_S, on_progress=progress.append
    )
    return out_dir, output, progress


@pytest.fixture(scope="module")
def without_audio(clip_without_audio: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    return transcode(clip_without_audio, tmp_path_factory.mktemp("hls-silent"))


def test_a_360p_clip_gets_the_360p_and_240p_rungs(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio

    assert [(r.name, r.width, r.height) for r in output.renditions] == [
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    for rendition in output.renditions:
        assert rendition.codecs.startswith("avc1.64")  # High profile
        assert rendition.codecs.endswith(",mp4a.40.2")
        assert rendition.bandwidth >= rendition.average_bandwidth > 0
        assert rendition.frame_rate == 30.0
    assert output.renditions[0].average_bandwidth > output.renditions[1].average_bandwidth
    assert output.duration_s == pytest.approx(2.0, abs=0.1)
    check_ladder(out_dir, output)


def test_files_are_listed_for_an_atomic_publish(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio
    on_disk = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}

    assert set(output.files) == on_disk
    assert output.files[-1] == output.master == "master.m3u8"
    first_playlist = min(i for i, f in enumerate(output.files) if f.endswith(".m3u8"))
    assert all(f.endswith((".m4s", ".mp4")) for f in output.files[:first_playlist])
    assert output.audio_playlist in output.files


def test_master_playlist_is_complete_with_a_shared_audio_group_and_an_audio_only_variant(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio
    text = (out_dir / output.master).read_text()
    *video, audio_only = parse_master(text)

    assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"' in text
    assert f'URI="{output.audio_playlist}"' in text
    for variant in video:
        for attribute in ("BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "RESOLUTION", "FRAME-RATE"):
            assert attribute in variant.attributes
        assert variant.attributes["FRAME-RATE"] == "30.000"
    assert [v.attributes["RESOLUTION"] for v in video] == ["640x360", "426x240"]
    assert audio_only.uri == output.audio_playlist
    assert audio_only.attributes["CODECS"] == "mp4a.40.2"
    assert int(audio_only.attributes["BANDWIDTH"]) == output.audio_bandwidth


def test_the_master_plays_through_ffprobe(with_audio: tuple[Path, HlsOutput, list[float]]) -> None:
    out_dir, output, _ = with_audio

    streams = ffprobe_output(out_dir / output.master)

    video = {
        (s["codec_name"], s["profile"], s["height"]) for s in streams if s["codec_type"] == "video"
    }
    assert video == {("h264", "High", 360), ("h264", "High", 240)}
    assert {s["codec_name"] for s in streams if s["codec_type"] == "audio"} == {"aac"}


def test_progress_reaches_one(with_audio: tuple[Path, HlsOutput, list[float]]) -> None:
    _, _, progress = with_audio

    assert progress[-1] == 1.0
    assert progress == sorted(progress)


def test_a_silent_clip_gets_no_audio_rendition(without_audio: Made) -> None:
    out_dir, output = without_audio
    text = (out_dir / output.master).read_text()

    assert output.audio_playlist is None
    assert output.audio_bandwidth is None
    assert "EXT-X-MEDIA" not in text
    assert "mp4a" not in text
    assert [r.playlist for r in output.renditions] == ["v0/index.m3u8", "v1/index.m3u8"]
    assert output.files[-1] == "master.m3u8"
    streams = ffprobe_output(out_dir / output.master)
    assert {s["codec_type"] for s in streams} == {"video"}
    check_ladder(out_dir, output, audio=False)


def test_rungs_are_keyframe_aligned_at_the_segment_length(media_dir: Path, tmp_path: Path) -> None:
    # 5 s at 2 s segments: keyframes every 2 s, segments of 2, 2 and 1 s on every rung.
    source = make_clip(media_dir, seconds=5, width=320, height=180, fps=25, audio=True)
    ladder = (Rung("180p", 180, 0.17), Rung("90p", 90, 0.19))

    out_dir, output = transcode(source, tmp_path / "out", ladder=ladder, segment_s=2)

    assert [(r.name, r.width, r.height) for r in output.renditions] == [
        ("180p", 320, 180),
        ("90p", 160, 90),
    ]
    durations = [
        [d for d, _ in segment_durations((out_dir / r.playlist).read_text())]
        for r in output.renditions
    ]
    assert (
        durations[0] == durations[1] == [pytest.approx(2.0), pytest.approx(2.0), pytest.approx(1.0)]
    )
    assert keyframe_times(out_dir / output.renditions[0].playlist)[:3] == [0.0, 2.0, 4.0]
    check_ladder(out_dir, output)


def test_a_portrait_phone_clip_stays_upright(rotated_clip: Path, tmp_path: Path) -> None:
    out_dir, output = transcode(rotated_clip, tmp_path / "out")

    assert [(r.width, r.height) for r in output.renditions] == [(360, 640), (240, 426)]
    streams = ffprobe_output(out_dir / output.master)
    assert sorted((s["width"], s["height"]) for s in streams) == [(240, 426), (360, 640)]
    check_ladder(out_dir, output, audio=False)


def test_a_10_bit_source_becomes_8_bit_high_profile(media_dir: Path, tmp_path: Path) -> None:
    source = make_clip(
        media_dir, seconds=1, width=320, height=240, odd=OddVideo(pix_fmt="yuv420p10le")
    )
    assert probe(source, timeout_s=TIMEOUT_S).bit_depth == 10

    out_dir, output = transcode(source, tmp_path / "out")

    assert [(r.width, r.height) for r in output.renditions] == [(320, 240)]
    check_ladder(out_dir, output)  # yuv420p, High (not High 10)


def test_an_odd_sized_444_source_becomes_even_420(media_dir: Path, tmp_path: Path) -> None:
    odd = OddVideo(pix_fmt="yuv444p")  # 4:4:4 allows odd sizes; 4:2:0 output does not
    source = make_clip(media_dir, seconds=1, width=321, height=241, audio=False, odd=odd)

    out_dir, output = transcode(source, tmp_path / "out")

    assert [(r.width, r.height) for r in output.renditions] == [(320, 240)]
    check_ladder(out_dir, output, audio=False)


def test_an_hdr_source_is_tone_mapped_to_sdr(media_dir: Path, tmp_path: Path) -> None:
    odd = OddVideo(pix_fmt="yuv420p10le", hdr=True)
    source = make_clip(media_dir, seconds=1, width=320, height=240, audio=False, odd=odd)
    assert probe(source, timeout_s=TIMEOUT_S).hdr

    out_dir, output = transcode(source, tmp_path / "out")

    stream = rung_stream(out_dir / output.renditions[0].playlist)
    if "zscale" in available_filters("ffmpeg"):
        assert stream["color_transfer"] == "bt709"
    assert stream.get("color_transfer") != "smpte2084"
    check_ladder(out_dir, output, audio=False)


def test_without_zscale_hdr_still_becomes_8_bit_bt709(media_dir: Path, tmp_path: Path) -> None:
    odd = OddVideo(pix_fmt="yuv420p10le", hdr=True)
    source = make_clip(media_dir, seconds=1, width=320, height=240, audio=False, odd=odd)
    info = probe(source, timeout_s=TIMEOUT_S)

    output = encode_ladder(
        source,
        tmp_path / "out",
        info,
        renditions_for(info),
        HlsOptions(hdr_conversion="matrix"),
        timeout_s=TIMEOUT_S,
    )

    assert output.renditions[0].height == 240
    check_ladder(tmp_path / "out", output, audio=False)


def test_an_interlaced_source_comes_out_progressive(media_dir: Path, tmp_path: Path) -> None:
    odd = OddVideo(interlaced=True)
    source = make_clip(media_dir, seconds=1, width=320, height=240, fps=25, odd=odd)
    assert probe(source, timeout_s=TIMEOUT_S).interlaced

    out_dir, output = transcode(source, tmp_path / "out")

    stream = rung_stream(out_dir / output.renditions[0].playlist)
    assert stream.get("field_order", "progressive") in ("progressive", "unknown")
    assert output.renditions[0].frame_rate == 25.0  # one frame per frame
    check_ladder(out_dir, output)


def test_the_first_of_two_audio_tracks_is_downmixed_to_stereo(
    media_dir: Path, tmp_path: Path
) -> None:
    source = make_clip(
        media_dir, seconds=1, width=320, height=240, audio_tracks=2, audio_channels=6
    )
    info = probe(source, timeout_s=TIMEOUT_S)
    assert (info.audio_streams, info.audio_channels) == (2, 6)

    out_dir, output = transcode(source, tmp_path / "out")

    assert output.audio_playlist is not None
    (audio,) = ffprobe_json(out_dir / output.audio_playlist, "-show_streams")["streams"]
    assert (audio["codec_name"], audio["channels"]) == ("aac", 2)
    playlists = [f for f in output.files if f.endswith("/index.m3u8")]
    assert playlists == ["v0/index.m3u8", "v1/index.m3u8"]  # one video rung, one audio
    check_ladder(out_dir, output)


def test_a_60_fps_source_keeps_60_in_hd_and_gets_30_below(media_dir: Path, tmp_path: Path) -> None:
    # The one source taller than 240: 720p is needed for a rung that keeps 60 fps.
    source = make_clip(media_dir, seconds=1.2, width=1280, height=720, fps=60, audio=False)

    out_dir, output = transcode(
        source, tmp_path / "out", ladder=(RUNG_720P, RUNG_240P), segment_s=1
    )

    assert [(r.name, r.frame_rate) for r in output.renditions] == [("720p", 60.0), ("240p", 30.0)]
    master = m3u8.load(str(out_dir / output.master))
    assert [p.stream_info.frame_rate for p in master.playlists] == [60.0, 30.0]
    # Keyframes every second on both rungs, at the same instants despite the rates.
    assert keyframe_times(out_dir / output.renditions[0].playlist)[:2] == [0.0, 1.0]
    check_ladder(out_dir, output, audio=False)


def test_a_variable_rate_source_gets_a_constant_standard_rate(
    media_dir: Path, tmp_path: Path
) -> None:
    source = make_clip(media_dir, seconds=1, width=320, height=240, odd=OddVideo(vfr=True))
    info = probe(source, timeout_s=TIMEOUT_S)
    assert info.vfr

    out_dir, output = transcode(source, tmp_path / "out")

    stream = rung_stream(out_dir / output.renditions[0].playlist)
    assert stream["r_frame_rate"] == stream["avg_frame_rate"] == "24000/1001"
    assert output.renditions[0].frame_rate == pytest.approx(23.976, abs=0.001)
    check_ladder(out_dir, output)


def test_keyframes_can_follow_the_source(media_dir: Path, tmp_path: Path) -> None:
    # Keyframes every 12 frames (0.4 s) in the source, a 1 s segment target: encoded rungs
    # must cut where a stream copy of the source would.
    source = make_clip(
        media_dir, seconds=2, width=320, height=180, audio=False, odd=OddVideo(gop=12)
    )
    ladder = (Rung("180p", 180, 0.17), Rung("90p", 90, 0.19))

    out_dir, output = transcode(
        source, tmp_path / "out", ladder=ladder, segment_s=1, keyframes="source"
    )

    expected = keyframe_times(source)
    assert expected[:3] == [0.0, 0.4, 0.8]
    for rendition in output.renditions:
        assert keyframe_times(out_dir / rendition.playlist) == expected
    check_ladder(out_dir, output, audio=False)


def test_encode_ladder_can_leave_the_audio_out(clip_with_audio: Path, tmp_path: Path) -> None:
    info = probe(clip_with_audio, timeout_s=TIMEOUT_S)
    renditions = renditions_for(info)[1:]  # the 240p rung alone

    output = encode_ladder(
        clip_with_audio, tmp_path / "out", info, renditions, timeout_s=TIMEOUT_S, has_audio=False
    )

    assert [r.name for r in output.renditions] == ["240p"]
    assert output.audio_playlist is None
    assert {s["codec_type"] for s in ffprobe_output(tmp_path / "out" / output.master)} == {"video"}


def test_refused_input_writes_nothing(tmp_path: Path) -> None:
    text_file = tmp_path / "upload.mp4"
    text_file.write_text("not a video\n")
    out_dir = tmp_path / "out"

    with pytest.raises(UnsupportedInput) as caught:
        transcode_to_hls(text_file, out_dir, timeout_s=TIMEOUT_S)

    assert caught.value.code == "not_media"
    assert list(out_dir.iterdir()) == []


def test_a_used_output_folder_is_refused(clip_with_audio: Path, tmp_path: Path) -> None:
    (tmp_path / "stale.m4s").write_bytes(b"old")

    with pytest.raises(ValueError, match="not empty"):
        transcode_to_hls(clip_with_audio, tmp_path, timeout_s=TIMEOUT_S)
