"""ffprobe results, what we refuse and why; playlists and lists inside uploads are not followed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from transcode.errors import FFmpegFailed, UnsupportedInput
from transcode.probe import InputLimits, parse_probe, probe
from transcode.runner import run_capture

TIMEOUT_S = 30.0


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
        (probe_json(video_stream(width=7680, height=4320)), "too_large_dimensions"),
        (probe_json(video_stream(width=8, height=8)), "too_small_dimensions"),
        (probe_json(video_stream(), duration=str(5 * 3600)), "too_long"),
    ],
)
def test_parse_probe_refuses_with_a_code(json_text: str, code: str) -> None:
    assert refusal_code(json_text) == code


def test_limits_are_configurable_and_named_in_the_message() -> None:
    with pytest.raises(UnsupportedInput, match="0:00:10") as caught:
        parse_probe(probe_json(video_stream()), limits=InputLimits(max_duration_s=10))
    assert caught.value.code == "too_long"


def test_probe_reads_a_real_clip(clip_with_audio: Path) -> None:
    result = probe(clip_with_audio, timeout_s=TIMEOUT_S)

    assert (result.width, result.height, result.fps) == (640, 360, 30.0)
    assert (result.video_codec, result.pix_fmt, result.has_audio) == ("h264", "yuv420p", True)
    assert result.duration_s == pytest.approx(2.0, abs=0.1)
    assert "mp4" in result.container.split(",")
    assert result.size_bytes == clip_with_audio.stat().st_size


def test_probe_sees_a_phone_portrait_clip_upright(rotated_clip: Path) -> None:
    result = probe(rotated_clip, timeout_s=TIMEOUT_S)

    assert result.rotation in (90, 270)
    assert (result.display_width, result.display_height) == (360, 640)


def test_probe_refuses_audio_only(audio_only: Path) -> None:
    with pytest.raises(UnsupportedInput) as caught:
        probe(audio_only, timeout_s=TIMEOUT_S)
    assert caught.value.code == "no_video_stream"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"Final score 2-1, highlights to follow.\n"),
        ("random.mp4", os.urandom(64 * 1024)),
        ("empty.mov", b""),
    ],
)
def test_probe_refuses_what_is_not_media(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(UnsupportedInput) as caught:
        probe(path, timeout_s=TIMEOUT_S)

    assert caught.value.code == "not_media"
    assert isinstance(caught.value.__cause__, FFmpegFailed)  # ffprobe's words kept for logs


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

    assert caught.value.code == "not_media"
    assert isinstance(caught.value.__cause__, FFmpegFailed)
    assert "not on whitelist" in caught.value.__cause__.stderr_tail


def test_probe_of_a_missing_file_is_not_the_partners_fault(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "gone.mp4", timeout_s=TIMEOUT_S)


def test_probe_goes_by_content_not_by_name(tmp_path: Path, clip_with_audio: Path) -> None:
    # The worker downloads every upload to a file called "source", without an extension.
    source = tmp_path / "source"
    source.write_bytes(clip_with_audio.read_bytes())

    assert probe(source, timeout_s=TIMEOUT_S).video_codec == "h264"
