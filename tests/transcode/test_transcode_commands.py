"""The argv builders, checked without running ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcode.commands import (
    FORMAT_WHITELIST,
    HlsOptions,
    hls_command,
    probe_command,
)
from transcode.ladder import DEFAULT_LADDER, Rendition

TOP = Rendition(DEFAULT_LADDER[0], 1280, 720)
LOW = Rendition(DEFAULT_LADDER[1], 640, 360)
OUT = Path("/work/out")


def option(argv: list[str], name: str) -> str:
    """The value after the only occurrence of ``name``."""
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times"
    return argv[argv.index(name) + 1]


def values(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == name]


def test_whitelist_names_only_container_demuxers() -> None:
    demuxers = set(FORMAT_WHITELIST.split(","))

    assert {"mov", "mp4", "matroska", "webm", "mpegts", "flv", "avi", "mxf"} <= demuxers
    assert not demuxers & {"hls", "concat", "image2", "image2pipe", "lavfi", "dash", "tty"}


def test_probe_command_guards_the_input_with_both_whitelists() -> None:
    argv = probe_command("/usr/bin/ffprobe", Path("upload.mp4"))

    assert argv[0] == "/usr/bin/ffprobe"
    assert option(argv, "-protocol_whitelist") == "file"
    assert option(argv, "-format_whitelist") == FORMAT_WHITELIST
    assert {"-show_format", "-show_streams"} <= set(argv)
    assert option(argv, "-print_format") == "json"
    # Absolute, so a name like "-i" or "concat:a|b" is never read as an option or protocol.
    assert argv[-1] == str(Path("upload.mp4").absolute())


def test_probe_command_makes_relative_names_starting_with_a_dash_safe() -> None:
    argv = probe_command("ffprobe", Path("-f"))

    assert argv[-1].startswith("/")


def test_hls_command_is_one_process_decoding_once_and_splitting() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], has_audio=True)

    assert argv[0] == "ffmpeg"
    assert values(argv, "-i") == ["/in/source"]
    graph = option(argv, "-filter_complex")
    assert graph.startswith("[0:v:0]split=2")
    assert "scale=1280:720" in graph
    assert "scale=640:360" in graph
    assert graph.count("setsar=1") == 2


def test_hls_command_guards_its_input_with_both_whitelists() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], has_audio=True)
    input_at = argv.index("-i")

    assert argv.index("-protocol_whitelist") < input_at
    assert argv.index("-format_whitelist") < input_at
    assert option(argv, "-protocol_whitelist") == "file"
    assert option(argv, "-format_whitelist") == FORMAT_WHITELIST


def test_hls_command_aligns_keyframes_on_every_rung() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], has_audio=True)

    assert option(argv, "-force_key_frames") == "expr:gte(t,n_forced*2)"
    assert option(argv, "-sc_threshold") == "0"
    # Unsuffixed, so each applies to every video stream.
    assert option(argv, "-c:v") == "libx264"
    assert option(argv, "-profile:v") == "high"
    assert option(argv, "-pix_fmt") == "yuv420p"
    assert option(argv, "-preset") == "veryfast"


def test_hls_command_caps_each_rung_bitrate() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], has_audio=True)

    assert (option(argv, "-b:v:0"), option(argv, "-maxrate:v:0")) == ("3000k", "3600k")
    assert (option(argv, "-b:v:1"), option(argv, "-maxrate:v:1")) == ("800k", "1000k")
    assert option(argv, "-bufsize:v:1") == "2000k"


def test_hls_command_encodes_audio_once_as_a_shared_group() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], has_audio=True)

    assert values(argv, "-map")[-1] == "0:a:0"
    assert (option(argv, "-c:a"), option(argv, "-b:a"), option(argv, "-ac")) == (
        "aac",
        "128k",
        "2",
    )
    assert option(argv, "-var_stream_map") == "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud"


def test_hls_command_without_audio_maps_no_audio() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], has_audio=False)

    assert all(not m.startswith("0:a") for m in values(argv, "-map"))
    assert len(values(argv, "-map")) == 2
    assert "-c:a" not in argv
    assert option(argv, "-var_stream_map") == "v:0 v:1"


def test_hls_command_writes_fmp4_vod_hls_with_a_master() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], has_audio=True)

    assert option(argv, "-f") == "hls"
    assert option(argv, "-hls_time") == "4"
    assert option(argv, "-hls_playlist_type") == "vod"
    assert option(argv, "-hls_segment_type") == "fmp4"
    assert option(argv, "-hls_flags") == "independent_segments"
    assert option(argv, "-master_pl_name") == "master.m3u8"
    assert option(argv, "-hls_segment_filename") == "/work/out/v%v/seg_%05d.m4s"
    assert "/work/out/v%v/index.m3u8" in argv
    assert option(argv, "-map_metadata") == "-1"


def test_hls_command_reports_progress_on_stdout_and_never_prompts() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], has_audio=True)

    assert option(argv, "-progress") == "pipe:1"
    assert {"-nostats", "-nostdin", "-y"} <= set(argv)


def test_hls_command_follows_the_options() -> None:
    options = HlsOptions(segment_s=6, keyframe_interval_s=3, audio_kbps=96, preset="fast")

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [LOW], has_audio=True, options=options)

    assert option(argv, "-hls_time") == "6"
    assert option(argv, "-force_key_frames") == "expr:gte(t,n_forced*3)"
    assert option(argv, "-b:a") == "96k"
    assert option(argv, "-preset") == "fast"


def test_hls_command_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="at least one"):
        hls_command("ffmpeg", Path("/in/source"), OUT, [], has_audio=True)
    with pytest.raises(ValueError, match="%"):
        hls_command("ffmpeg", Path("/in/source"), Path("/work/100%"), [LOW], has_audio=True)
