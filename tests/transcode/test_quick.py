"""First playable fast: which sources may be stream-copied, and the copy command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from transcode.probe import ProbeResult
from transcode.quick import audio_is_copyable, parse_keyframes, remux_command, verdict

H264_1080 = ProbeResult(
    container="mov,mp4,m4a,3gp,3g2,mj2",
    duration_s=12.0,
    width=1920,
    height=1080,
    fps=30.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    has_audio=True,
    size_bytes=6_000_000,
    video_bitrate=4_000_000,
)
EVERY_2S = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_keyframes_are_read_from_packet_flags_skipping_junk() -> None:
    text = "0.000000,K__\n0.033333,___\n2.000000,K_\nN/A,K__\ngarbage\n4.0,KD_\n"
    assert parse_keyframes(text) == [0.0, 2.0, 4.0]


def test_a_plain_h264_source_with_a_regular_gop_is_copied_and_kept_as_the_top_rung() -> None:
    decision = verdict(H264_1080, EVERY_2S, segment_s=4)
    assert (decision.remux, decision.keep) == (True, True)


def test_a_camera_original_is_copied_first_but_not_kept_in_the_ladder() -> None:
    decision = verdict(replace(H264_1080, video_bitrate=40_000_000), EVERY_2S, segment_s=4)
    assert (decision.remux, decision.keep) == (True, False)
    assert "bitrate" in decision.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"video_codec": "hevc"}, "not H.264"),
        ({"pix_fmt": "yuv422p"}, "pixel format"),
        ({"bit_depth": 10}, "10-bit"),
        ({"interlaced": True}, "interlaced"),
        ({"vfr": True}, "VFR"),
        ({"rotation": 90}, "rotated"),
        ({"sample_aspect": 4 / 3}, "anamorphic"),
        ({"fps": 120.0}, "frame rate"),
        ({"fps": None}, "frame rate"),
    ],
)
def test_sources_fans_could_not_play_well_are_encoded(
    change: dict[str, object], reason: str
) -> None:
    decision = verdict(replace(H264_1080, **change), EVERY_2S, segment_s=4)  # type: ignore[arg-type]
    assert not decision.remux
    assert reason in decision.reason


@pytest.mark.parametrize(
    "keyframes",
    [
        [],  # no keyframe at all
        [0.5, 2.5, 4.5],  # the first frame is not a keyframe
        [0.0, 9.0],  # a 9 s gap makes 9 s segments
        [0.0, 2.0],  # the last keyframe is 10 s before the end
    ],
)
def test_a_long_or_irregular_gop_is_encoded(keyframes: list[float]) -> None:
    decision = verdict(H264_1080, keyframes, segment_s=4)
    assert not decision.remux
    assert "GOP" in decision.reason


def test_the_copy_command_copies_video_encodes_audio_once_and_keeps_the_whitelists(
    tmp_path: Path,
) -> None:
    argv = remux_command(
        "ffmpeg", tmp_path / "in.mp4", tmp_path / "out", has_audio=True, segment_s=4
    )
    joined = " ".join(argv)
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert argv[argv.index("-c:a") + 1] == "aac"
    assert argv[argv.index("-ac") + 1] == "2"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert "hls" not in argv[argv.index("-format_whitelist") + 1].split(",")
    assert argv[argv.index("-var_stream_map") + 1] == "v:0,agroup:aud a:0,agroup:aud"
    assert argv[argv.index("-hls_segment_type") + 1] == "fmp4"
    assert f"{tmp_path}/out/src/v%v/index.m3u8" in joined


def test_a_silent_source_gets_no_audio_rendition(tmp_path: Path) -> None:
    argv = remux_command(
        "ffmpeg", tmp_path / "in.mp4", tmp_path / "out", has_audio=False, segment_s=4
    )
    assert "-c:a" not in argv
    assert argv[argv.index("-var_stream_map") + 1] == "v:0"


def test_a_50fps_source_with_keyframes_on_odd_frames_is_encoded() -> None:
    fifty = replace(H264_1080, fps=50.0)
    assert verdict(fifty, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], segment_s=4).remux
    decision = verdict(fifty, [0.0, 0.5, 2.5, 4.5, 6.5, 8.5, 10.5], segment_s=4)  # frame 25...
    assert not decision.remux
    assert "drops" in decision.reason


def test_stereo_aac_is_copied_too_and_anything_else_encoded_once(tmp_path: Path) -> None:
    assert audio_is_copyable(replace(H264_1080, audio_codec="aac", audio_channels=2))
    assert not audio_is_copyable(replace(H264_1080, audio_codec="aac", audio_channels=6))
    assert not audio_is_copyable(replace(H264_1080, audio_codec="mp3", audio_channels=2))
    argv = remux_command(
        "ffmpeg", tmp_path / "in.mp4", tmp_path / "out", has_audio=True, segment_s=4,
        copy_audio=True,
    )  # fmt: skip
    assert argv[argv.index("-c:a") + 1] == "copy"
