"""ffprobe results, what we refuse and why; playlists and lists inside uploads are not followed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from transcode.commands import probe_command
from transcode.errors import FFmpegFailed, UnsupportedInput
from transcode.probe import InputLimits, ProbeResult, parse_probe, probe
from transcode.runner import run_capture

TIMEOUT_S = 30.0
FIXTURES = Path(__file__).parent / "probe_fixtures"


def fixture(name: str) -> str:
    """ffprobe's real output for a tiny clip made with ffmpeg (see probe_fixtures/)."""
    return (FIXTURES / f"{name}.json").read_text()


def probe_json(*streams: dict[str, Any], duration: str = "12.5", size: str = "1000") -> str:
    fmt = {"format_name": "matroska,webm", "duration": duration, "size": size}
    return json.dumps({"streams": list(streams), "format": fmt})


def video_stream(**overrides: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "codec_type": "video",
        "codec_name": "h264",
        "width": 1920,
        "height": 1080,
        "pix_fmt": "yuv420p",
        "avg_frame_rate": "30000/1001",
        "r_frame_rate": "30000/1001",
        "sample_aspect_ratio": "1:1",
    }
    return stream | overrides


AUDIO = {"codec_type": "audio", "codec_name": "aac"}


def refusal_code(json_text: str) -> str:
    with pytest.raises(UnsupportedInput) as caught:
        parse_probe(json_text)
    assert caught.value.message.endswith(".")  # a whole sentence for the partner
    return caught.value.code


def test_parse_probe_reads_the_facts() -> None:
    result = parse_probe(probe_json(video_stream(), AUDIO))

    assert (result.width, result.height, result.video_codec) == (1920, 1080, "h264")
    assert result.fps == pytest.approx(29.97, abs=0.01)
    assert (result.duration_s, result.size_bytes, result.has_audio) == (12.5, 1000, True)
    assert (result.container, result.pix_fmt, result.rotation) == ("matroska,webm", "yuv420p", 0)


def test_parse_probe_reads_rotation_and_pixel_shape() -> None:
    rotated = video_stream(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}])
    anamorphic = video_stream(width=720, height=576, sample_aspect_ratio="64:45")

    upright = parse_probe(probe_json(rotated))

    assert upright.rotation == 270
    assert (upright.display_width, upright.display_height) == (1080, 1920)
    assert parse_probe(probe_json(anamorphic)).display_width == 1024


def test_parse_probe_reads_what_the_ladder_needs_from_a_10_bit_hdr_source() -> None:
    result = parse_probe(fixture("hevc_hdr10"))

    assert (result.video_codec, result.video_profile, result.pix_fmt) == (
        "hevc",
        "Main 10",
        "yuv420p10le",
    )
    assert (result.bit_depth, result.chroma, result.color_transfer) == (10, "420", "smpte2084")
    assert result.hdr
    assert (result.interlaced, result.vfr, result.avg_fps) == (False, False, 25.0)
    assert result.video_bitrate == 131032
    assert (result.audio_codec, result.audio_channels, result.audio_streams) == (None, 0, 0)


@pytest.mark.parametrize(
    ("name", "profile", "bit_depth", "chroma"),
    [
        ("h264_10bit", "High 10", 10, "420"),
        ("h264_422", "High 4:2:2", 8, "422"),
        ("h264_interlaced", "Main", 8, "420"),
    ],
)
def test_parse_probe_reads_profile_depth_and_chroma(
    name: str, profile: str, bit_depth: int, chroma: str
) -> None:
    result = parse_probe(fixture(name))

    assert (result.video_profile, result.bit_depth, result.chroma) == (profile, bit_depth, chroma)
    assert not result.hdr


def test_parse_probe_sees_interlacing() -> None:
    assert parse_probe(fixture("h264_interlaced")).interlaced
    assert not parse_probe(fixture("h264_10bit")).interlaced


def test_parse_probe_sees_variable_frame_rate() -> None:
    # Made with setpts: 30 frames at 30 fps, then 30 at 15 fps; r_frame_rate still says 30.
    result = parse_probe(fixture("h264_vfr"))

    assert result.vfr
    assert result.avg_fps == pytest.approx(20.22, abs=0.01)
    assert result.fps == result.avg_fps


def test_parse_probe_counts_audio_streams_and_takes_the_file_bitrate_for_matroska() -> None:
    result = parse_probe(fixture("mkv_two_audio"))

    assert (result.audio_codec, result.audio_channels, result.audio_streams) == ("aac", 2, 2)
    # Matroska gives no stream bit rate and no audio rate: the whole file's is the best guess.
    assert result.video_bitrate == 601822
    assert result.has_audio


def test_parse_probe_video_bitrate_subtracts_known_audio() -> None:
    audio = AUDIO | {"bit_rate": "128000", "channels": 6}
    text = json.dumps(
        {
            "streams": [video_stream(), audio],
            "format": {"format_name": "mpegts", "duration": "2", "bit_rate": "1128000"},
        }
    )

    result = parse_probe(text)

    assert (result.video_bitrate, result.audio_channels) == (1_000_000, 6)


def test_parse_probe_marks_known_hlg_as_hdr() -> None:
    assert parse_probe(probe_json(video_stream(color_transfer="arib-std-b67"))).hdr
    assert not parse_probe(probe_json(video_stream(color_transfer="bt709"))).hdr


HOSTILE = [
    # Each: fields an attacker controls, set to junk; the parse must not crash or believe them.
    {"profile": 7, "pix_fmt": ["yuv420p"], "field_order": None, "color_transfer": {"x": 1}},
    {"avg_frame_rate": "1e999/1", "r_frame_rate": "N/A", "bit_rate": "inf"},
    {"avg_frame_rate": "9" * 5000, "bits_per_raw_sample": "-10", "sample_aspect_ratio": "1:0"},
    {"bit_rate": "99999999999999999999", "side_data_list": [{"rotation": "nan"}, "junk"]},
    {"tags": "rotate", "disposition": "attached_pic", "sample_aspect_ratio": "100000:1"},
]


@pytest.mark.parametrize("junk", HOSTILE)
def test_parse_probe_survives_junk_fields(junk: dict[str, Any]) -> None:
    bad_audio = AUDIO | {"channels": "1e30", "codec_name": 5}

    result = parse_probe(probe_json(video_stream(**junk), bad_audio))

    assert (result.width, result.height, result.rotation, result.sample_aspect) == (
        1920,
        1080,
        0,
        1.0,
    )
    assert result.bit_depth == 8
    assert result.video_bitrate is None or result.video_bitrate < 10**10
    assert result.fps is None or 0 < result.fps < 10**6
    assert (result.audio_codec, result.audio_channels, result.audio_streams) == (None, 0, 1)


@pytest.mark.parametrize(
    "document",
    [
        {"streams": "video"},
        {"streams": [1, "two", None]},
        {"streams": [{"codec_type": "video", "codec_name": "h264", "width": "wide"}]},
        [],
    ],
)
def test_parse_probe_refuses_malformed_documents_cleanly(document: object) -> None:
    with pytest.raises(UnsupportedInput) as caught:
        parse_probe(json.dumps(document))
    assert caught.value.code in {"not_media", "no_video_stream", "corrupt"}


def test_defaults_keep_old_constructors_working() -> None:
    result = ProbeResult(
        container="mpegts",
        duration_s=1.0,
        width=2,
        height=2,
        fps=None,
        video_codec="h264",
        pix_fmt="yuv420p",
        has_audio=False,
        size_bytes=1,
    )

    assert (result.bit_depth, result.chroma, result.hdr, result.vfr) == (8, "420", False, False)
    assert (result.audio_streams, result.video_bitrate, result.avg_fps) == (0, None, None)


def test_parse_probe_falls_back_when_rates_and_durations_are_missing() -> None:
    stream = video_stream(avg_frame_rate="0/0", r_frame_rate="25/1", duration="3.0")

    result = parse_probe(probe_json(stream, duration="N/A"))

    assert (result.fps, result.duration_s) == (25.0, 3.0)


@pytest.mark.parametrize(
    ("json_text", "code"),
    [
        ("not json", "not_media"),
        (json.dumps({"streams": [], "format": {}}), "not_media"),
        (probe_json(AUDIO), "no_video_stream"),
        # Cover art makes an MP3 or M4A look like it has video; it is not a video.
        (probe_json(AUDIO, video_stream(disposition={"attached_pic": 1})), "no_video_stream"),
        (probe_json(video_stream(codec_name="theora")), "unsupported_codec"),
        (probe_json(video_stream(), duration="N/A"), "corrupt"),
        (probe_json(video_stream(), duration="0.000000"), "corrupt"),
        (probe_json(video_stream(width=0)), "corrupt"),
        (probe_json(video_stream(width=7680, height=4320)), "dimensions_too_large"),
        (probe_json(video_stream(width=8, height=8)), "dimensions_too_small"),
        (probe_json(video_stream(), duration=str(5 * 3600)), "too_long"),
    ],
)
def test_parse_probe_refuses_with_a_code(json_text: str, code: str) -> None:
    assert refusal_code(json_text) == code


def test_limits_are_configurable_and_named_in_the_message() -> None:
    with pytest.raises(UnsupportedInput, match="12 s long; the limit is 10 s") as caught:
        parse_probe(probe_json(video_stream()), limits=InputLimits(max_duration_s=10))
    assert caught.value.code == "too_long"


def test_probe_reads_a_real_clip(clip_with_audio: Path) -> None:
    result = probe(clip_with_audio, timeout_s=TIMEOUT_S)

    assert (result.width, result.height, result.fps) == (640, 360, 30.0)
    assert (result.video_codec, result.pix_fmt, result.has_audio) == ("h264", "yuv420p", True)
    assert result.duration_s == pytest.approx(2.0, abs=0.1)
    assert "mp4" in result.container.split(",")
    assert result.size_bytes == clip_with_audio.stat().st_size
    assert (result.bit_depth, result.chroma, result.interlaced, result.vfr) == (
        8,
        "420",
        False,
        False,
    )
    assert (result.audio_codec, result.audio_channels, result.audio_streams) == ("aac", 1, 1)
    assert result.video_profile == "Constrained Baseline"  # x264 -preset ultrafast
    assert (result.video_bitrate or 0) > 0


def test_probe_applies_the_limits_it_is_given(clip_with_audio: Path) -> None:
    settings = Settings(max_duration_s=1, max_dimension_px=4096, max_fps=120.0)

    with pytest.raises(UnsupportedInput, match="2 s long; the limit is 1 s") as caught:
        probe(clip_with_audio, timeout_s=TIMEOUT_S, limits=InputLimits.from_settings(settings))

    assert caught.value.code == "too_long"


def test_probe_sees_a_phone_portrait_clip_upright(rotated_clip: Path) -> None:
    result = probe(rotated_clip, timeout_s=TIMEOUT_S)

    assert result.rotation in (90, 270)
    assert (result.display_width, result.display_height) == (360, 640)


def test_probe_refuses_audio_only(audio_only: Path) -> None:
    with pytest.raises(UnsupportedInput) as caught:
        probe(audio_only, timeout_s=TIMEOUT_S)
    assert caught.value.code == "no_video_stream"


def test_probe_refuses_random_bytes_after_ffprobe_fails(tmp_path: Path) -> None:
    path = tmp_path / "random.mp4"
    # A NUL byte up front so the bytes are not text, and no container's signature.
    path.write_bytes(b"\x00\x01" + os.urandom(64 * 1024))

    with pytest.raises(UnsupportedInput) as caught:
        probe(path, timeout_s=TIMEOUT_S)

    assert caught.value.code == "not_media"
    assert isinstance(caught.value.__cause__, FFmpegFailed)  # ffprobe's words kept for logs


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"Final score 2-1, highlights to follow.\n", "not_media"),
        (b"", "empty_file"),
        (b"see https://example.invalid/clip for the goal\n", "references_external"),
    ],
)
def test_probe_refuses_text_and_empty_files_before_ffprobe(
    tmp_path: Path, content: bytes, code: str
) -> None:
    path = tmp_path / "upload.mov"
    path.write_bytes(content)

    with pytest.raises(UnsupportedInput) as caught:
        probe(path, ffprobe_bin=str(tmp_path / "no-such-ffprobe"), timeout_s=TIMEOUT_S)

    # Had ffprobe been started, the missing binary would have raised something else.
    assert caught.value.code == code
    assert caught.value.__cause__ is None


def _playlist_to(target: Path) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2.0,\nfile://{target}\n#EXT-X-ENDLIST\n"
    )


def _concat_list_to(target: Path) -> str:
    return f"ffconcat version 1.0\nfile '{target.name}'\n"


@pytest.mark.parametrize(
    ("name", "make_content", "demuxer"),
    [
        ("playlist.m3u8", _playlist_to, "hls"),
        ("upload.mp4", _playlist_to, "hls"),  # a playlist in disguise
        ("list.txt", _concat_list_to, "concat"),
        ("upload.mkv", _concat_list_to, "concat"),
    ],
)
def test_probe_never_follows_references_inside_an_upload(
    tmp_path: Path, clip_with_audio: Path, name: str, make_content: Any, demuxer: str
) -> None:
    target = tmp_path / "private.mp4"
    target.write_bytes(clip_with_audio.read_bytes())
    upload = tmp_path / name
    upload.write_text(make_content(target))
    # The danger is real: unguarded, ffprobe opens the file as a playlist or list.
    unguarded = ["ffprobe", "-v", "quiet", "-show_entries", "format=format_name", "-of", "csv=p=0"]
    assert run_capture([*unguarded, str(upload)], timeout_s=TIMEOUT_S).strip() == demuxer

    with pytest.raises(UnsupportedInput) as caught:
        probe(upload, timeout_s=TIMEOUT_S)
    assert caught.value.code == "references_external"
    # And the second fence: were the sniff ever fooled, ffprobe itself still refuses.
    with pytest.raises(FFmpegFailed) as failed:
        run_capture(probe_command("ffprobe", upload), timeout_s=TIMEOUT_S)
    assert "not on whitelist" in failed.value.stderr_tail


def test_probe_of_a_missing_file_is_not_the_partners_fault(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "gone.mp4", timeout_s=TIMEOUT_S)


def test_probe_goes_by_content_not_by_name(tmp_path: Path, clip_with_audio: Path) -> None:
    # The worker downloads every upload to a file called "source", without an extension.
    source = tmp_path / "source"
    source.write_bytes(clip_with_audio.read_bytes())

    assert probe(source, timeout_s=TIMEOUT_S).video_codec == "h264"
