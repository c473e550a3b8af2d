"""The argv builders, checked without running ffmpeg."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from transcode.commands import (
    FORMAT_WHITELIST,
    HlsOptions,
    filters_command,
    hdr_conversion_for,
    hls_command,
    parse_filters,
    picture_filters,
    probe_command,
)
from transcode.ladder import RUNG_360P, RUNG_720P, Rendition, renditions_for
from transcode.probe import ProbeResult

TOP = Rendition(RUNG_720P, 1280, 720, fps=30.0, video_kbps=3000, max_kbps=3600)
LOW = Rendition(RUNG_360P, 640, 360, fps=30.0, video_kbps=800, max_kbps=1000)
OUT = Path("/work/out")
SOURCE = ProbeResult(
    container="mov,mp4,m4a,3gp,3g2,mj2",
    duration_s=10.0,
    width=1280,
    height=720,
    fps=30.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    has_audio=True,
    size_bytes=1,
    avg_fps=30.0,
    audio_streams=1,
)
SILENT = replace(SOURCE, has_audio=False, audio_streams=0)


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
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], info=SOURCE)

    assert argv[0] == "ffmpeg"
    assert values(argv, "-i") == ["/in/source"]
    graph = option(argv, "-filter_complex")
    assert graph.startswith("[0:v:0]split=2")
    assert "scale=1280:720" in graph
    assert "scale=640:360" in graph
    assert graph.count("setsar=1") == 2


def test_hls_command_guards_its_input_with_both_whitelists() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], info=SOURCE)
    input_at = argv.index("-i")

    assert argv.index("-protocol_whitelist") < input_at
    assert argv.index("-format_whitelist") < input_at
    assert option(argv, "-protocol_whitelist") == "file"
    assert option(argv, "-format_whitelist") == FORMAT_WHITELIST


def test_hls_command_aligns_keyframes_on_every_rung() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], info=SOURCE)

    assert option(argv, "-force_key_frames") == "expr:gte(t,n_forced*2)"
    assert option(argv, "-sc_threshold") == "0"
    # Unsuffixed, so each applies to every video stream.
    assert option(argv, "-c:v") == "libx264"
    assert option(argv, "-profile:v") == "high"
    assert option(argv, "-pix_fmt") == "yuv420p"
    assert option(argv, "-preset") == "veryfast"


def test_hls_command_caps_each_rung_bitrate() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], info=SOURCE)

    assert (option(argv, "-b:v:0"), option(argv, "-maxrate:v:0")) == ("3000k", "3600k")
    assert (option(argv, "-b:v:1"), option(argv, "-maxrate:v:1")) == ("800k", "1000k")
    assert option(argv, "-bufsize:v:1") == "2000k"


def test_hls_command_encodes_audio_once_as_a_shared_group() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], info=SOURCE)

    assert values(argv, "-map")[-1] == "0:a:0"
    assert (option(argv, "-c:a"), option(argv, "-b:a"), option(argv, "-ac")) == (
        "aac",
        "128k",
        "2",
    )
    assert option(argv, "-var_stream_map") == "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud"


def test_hls_command_without_audio_maps_no_audio() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [TOP, LOW], info=SILENT)

    assert all(not m.startswith("0:a") for m in values(argv, "-map"))
    assert len(values(argv, "-map")) == 2
    assert "-c:a" not in argv
    assert option(argv, "-var_stream_map") == "v:0 v:1"


def test_hls_command_writes_fmp4_vod_hls_with_a_master() -> None:
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], info=SOURCE)

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
    argv = hls_command("ffmpeg", Path("/in/source"), OUT, [LOW], info=SOURCE)

    assert option(argv, "-progress") == "pipe:1"
    assert {"-nostats", "-nostdin", "-y"} <= set(argv)


def test_hls_command_follows_the_options() -> None:
    options = HlsOptions(segment_s=6, keyframe_interval_s=3, audio_kbps=96, preset="fast")

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [LOW], info=SOURCE, options=options)

    assert option(argv, "-hls_time") == "6"
    assert option(argv, "-force_key_frames") == "expr:gte(t,n_forced*3)"
    assert option(argv, "-b:a") == "96k"
    assert option(argv, "-preset") == "fast"


def test_hls_command_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="at least one"):
        hls_command("ffmpeg", Path("/in/source"), OUT, [], info=SOURCE)
    with pytest.raises(ValueError, match="%"):
        hls_command("ffmpeg", Path("/in/source"), Path("/work/100%"), [LOW], info=SOURCE)


def graph_of(info: ProbeResult, options: HlsOptions | None = None) -> str:
    argv = hls_command(
        "ffmpeg",
        Path("/in/x"),
        OUT,
        renditions_for(info),
        info=info,
        options=options or HlsOptions(),
    )
    return option(argv, "-filter_complex")


def before_split(graph: str) -> str:
    return graph.partition("split=")[0]


def test_a_clean_source_is_only_split_and_scaled() -> None:
    graph = graph_of(SOURCE)

    assert graph.startswith("[0:v:0]split=4")  # 720p, 480p, 360p, 240p from a 720p source
    assert [f for f in ("bwdif", "format=", "zscale", "fps=") if f in graph] == []


def test_an_interlaced_source_is_deinterlaced_once_frame_for_frame() -> None:
    graph = graph_of(replace(SOURCE, interlaced=True))

    assert "bwdif=deint=all:mode=send_frame:parity=auto" in before_split(graph)
    assert graph.count("bwdif") == 1


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p", "yuv444p", "yuvj420p"])
def test_other_pixel_formats_become_8_bit_420_before_the_split(pix_fmt: str) -> None:
    graph = graph_of(replace(SOURCE, pix_fmt=pix_fmt, bit_depth=10 if "10" in pix_fmt else 8))

    assert "format=pix_fmts=yuv420p" in before_split(graph)


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_hdr_is_tone_mapped_to_sdr_with_zscale(transfer: str) -> None:
    info = replace(SOURCE, pix_fmt="yuv420p10le", bit_depth=10, color_transfer=transfer)

    shared = before_split(graph_of(info))

    assert f"zscale=min=bt2020nc:npl=100:pin=bt2020:t=linear:tin={transfer}" in shared
    assert "tonemap=desat=0:tonemap=hable" in shared
    assert "zscale=m=bt709:r=tv:t=bt709" in shared
    assert shared.rstrip("[];s0123456789").endswith("format=pix_fmts=yuv420p")


def test_without_zscale_hdr_falls_back_to_the_colour_matrix() -> None:
    info = replace(SOURCE, pix_fmt="yuv420p10le", bit_depth=10, color_transfer="smpte2084")

    shared = before_split(graph_of(info, HlsOptions(hdr_conversion="matrix")))

    assert "zscale" not in shared
    assert "scale=in_color_matrix=bt2020:out_color_matrix=bt709" in shared
    assert "format=pix_fmts=yuv420p" in shared


def test_filters_are_listed_in_a_fixed_order() -> None:
    info = replace(SOURCE, interlaced=True, pix_fmt="yuv420p10le", color_transfer="smpte2084")

    names = [name for name, _ in picture_filters(info, "zscale")]

    assert names[0] == "bwdif"
    assert names[1:] == ["zscale", "format", "zscale", "tonemap", "zscale", "format"]
    assert picture_filters(SOURCE, "zscale") == []


def test_a_60_fps_source_keeps_60_in_hd_and_gets_30_below() -> None:
    info = replace(SOURCE, fps=60.0, avg_fps=60.0)

    branches = graph_of(info).split(";")[1:]

    assert [b for b in branches if "scale=1280:720" in b and "fps=" in b] == []
    assert sum("fps=fps=30/1" in b for b in branches) == 3  # 480p, 360p, 240p


def test_a_59_94_source_is_halved_exactly() -> None:
    graph = graph_of(replace(SOURCE, fps=60000 / 1001, avg_fps=60000 / 1001))

    assert graph.count("fps=fps=30000/1001") == 3
    assert "fps=fps=60000/1001" not in graph


def test_a_variable_rate_source_gets_a_constant_rate_on_every_rung() -> None:
    info = replace(SOURCE, fps=29.6, avg_fps=29.6, vfr=True)

    graph = graph_of(info)

    assert graph.count("fps=fps=30000/1001") == 4


def test_rotation_is_left_to_ffmpegs_autorotate() -> None:
    # Stored 1280x720, shown as portrait: the rungs are portrait, and no transpose is added
    # (ffmpeg inserts it while decoding; -noautorotate would undo that).
    info = replace(SOURCE, rotation=90)
    argv = hls_command("ffmpeg", Path("/in/x"), OUT, renditions_for(info), info=info)

    graph = option(argv, "-filter_complex")
    assert "scale=720:1280" in graph
    assert "transpose" not in graph
    assert "-noautorotate" not in argv


def test_odd_sources_are_scaled_to_even_sizes() -> None:
    info = replace(SOURCE, width=321, height=241)

    graph = graph_of(info)

    assert "scale=320:240" in graph
    assert graph.count("setsar=1") == 1


def test_only_the_first_of_several_audio_tracks_is_used_and_downmixed() -> None:
    info = replace(SOURCE, audio_streams=2, audio_channels=6)

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [TOP], info=info)

    assert [m for m in values(argv, "-map") if "a" in m] == ["0:a:0"]
    assert option(argv, "-ac") == "2"


def test_audio_can_be_left_out_of_a_source_that_has_some() -> None:
    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [TOP, LOW], info=SOURCE, has_audio=False)

    assert len(values(argv, "-map")) == 2
    assert not [m for m in values(argv, "-map") if m.startswith("0:a")]
    assert "-c:a" not in argv
    assert option(argv, "-var_stream_map") == "v:0 v:1"


def test_keyframes_can_follow_the_source() -> None:
    options = HlsOptions(segment_s=6, keyframes="source")

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [TOP, LOW], info=SOURCE, options=options)

    assert option(argv, "-force_key_frames") == "source"
    assert int(option(argv, "-g")) >= 100_000  # x264 adds none of its own
    assert option(argv, "-sc_threshold") == "0"
    assert option(argv, "-hls_time") == "6"


@pytest.mark.parametrize(("segment_s", "every_s"), [(4, 2), (6, 2), (2, 2), (5, 5), (1, 1)])
def test_the_keyframe_interval_always_divides_the_segment(segment_s: int, every_s: int) -> None:
    options = HlsOptions(segment_s=segment_s)

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, [LOW], info=SOURCE, options=options)

    assert option(argv, "-force_key_frames") == f"expr:gte(t,n_forced*{every_s})"
    assert segment_s % every_s == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"segment_s": 0}, {"segment_s": 61}, {"segment_s": 4, "keyframe_interval_s": 3}],
)
def test_inconsistent_options_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="segment_s"):
        HlsOptions(**kwargs)  # type: ignore[arg-type]  # the dict's values are all ints


def test_rungs_get_their_own_bitrates() -> None:
    renditions = renditions_for(SOURCE)

    argv = hls_command("ffmpeg", Path("/in/x"), OUT, renditions, info=SOURCE)

    for index, rendition in enumerate(renditions):
        assert option(argv, f"-b:v:{index}") == f"{rendition.video_kbps}k"
        assert option(argv, f"-maxrate:v:{index}") == f"{rendition.max_kbps}k"
        assert option(argv, f"-bufsize:v:{index}") == f"{2 * rendition.max_kbps}k"


FILTERS_OUTPUT = """Filters:
  T.. = Timeline support
  A = Audio input/output
  | = Source or sink filter
 TS. bwdif             V->V       Deinterlace the input image.
 .S. tonemap           V->V       Conversion to/from different dynamic ranges.
 .SC zscale            V->V       Apply resizing, colorspace and bit depth conversion.
 ... abuffer           |->A       Buffer audio frames.
"""


def test_filters_are_read_from_ffmpeg_filters() -> None:
    assert filters_command("/usr/bin/ffmpeg")[-1] == "-filters"
    names = parse_filters(FILTERS_OUTPUT)

    assert names == {"bwdif", "tonemap", "zscale", "abuffer"}
    assert hdr_conversion_for(names) == "zscale"
    assert hdr_conversion_for(names - {"zscale"}) == "matrix"
