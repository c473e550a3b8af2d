"""Pure builders of ffprobe and ffmpeg argument lists; nothing here runs a process.

Every command that reads an upload is fenced with two whitelists: only the ``file`` protocol,
and only container demuxers. An upload that is really an HLS playlist, a concat list or an
image pattern then fails to open instead of making ffmpeg read other files or URLs.

The ladder command decodes once and fixes the picture once (deinterlace, HDR → SDR, 8-bit
4:2:0) before ``split``; each branch then only changes rate and size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ffmpeg

from transcode.ladder import Rendition, exact_rate, source_rate

if TYPE_CHECKING:  # probe imports this module for probe_command
    from transcode.probe import ProbeResult

PROTOCOL_WHITELIST = "file"
# Names exactly as `ffmpeg -demuxers` prints them (ffmpeg 5.1); a demuxer with several names
# matches on any of them. Missing on purpose: hls, dash, concat, image2*, tty, lavfi, sdp...
FORMAT_WHITELIST = ",".join(
    ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "flv", "avi", "mxf")
)

MASTER_PLAYLIST = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
OUTPUT_PIX_FMT = "yuv420p"  # 8-bit 4:2:0: what H.264 High profile plays on every device
_AUDIO_GROUP = "aud"
_MAX_SEGMENT_S = 60
# With keyframes from the source, x264 must add none of its own (its default is one every
# 250 frames), or encoded rungs would cut segments where a stream-copied rung cannot.
_NO_OWN_KEYFRAMES = 100_000

Keyframes = Literal["interval", "source"]
# "zscale": real tone mapping (zimg). "matrix": only the BT.2020 → BT.709 matrix, for an
# ffmpeg built without zimg: hues stay right but bright HDR scenes look flat and dim.
HdrConversion = Literal["zscale", "matrix"]


@dataclass(frozen=True)
class HlsOptions:
    """Encoding knobs shared by every rung.

    ``keyframes="interval"`` forces a keyframe every ``keyframe_interval_s`` on every rung
    (default: 2 s when it divides ``segment_s``, else ``segment_s``); ``"source"`` puts them
    where the source has them, so encoded rungs line up with a stream copy of the source.
    Caveat: a rung at a reduced rate (60 → 30 fps) loses a source keyframe that falls on a
    frame it drops (an odd frame number), so its segments can be longer there.
    """

    segment_s: int = 4
    keyframe_interval_s: int | None = None
    keyframes: Keyframes = "interval"
    audio_kbps: int = 128
    preset: str = "veryfast"
    hdr_conversion: HdrConversion = "zscale"

    def __post_init__(self) -> None:
        if not 1 <= self.segment_s <= _MAX_SEGMENT_S:
            raise ValueError(f"segment_s must be 1 to {_MAX_SEGMENT_S} (got {self.segment_s})")
        interval = self.keyframe_interval_s
        if interval is not None and (interval < 1 or self.segment_s % interval):
            raise ValueError(
                f"keyframe_interval_s must divide segment_s={self.segment_s} (got {interval})"
            )
        if self.keyframes not in ("interval", "source"):
            raise ValueError(f"keyframes must be 'interval' or 'source' (got {self.keyframes!r})")

    @property
    def keyframe_every_s(self) -> int:
        """Seconds between forced keyframes: always a divisor of the segment length."""
        if self.keyframe_interval_s is not None:
            return self.keyframe_interval_s
        return 2 if self.segment_s % 2 == 0 else self.segment_s


def variant_dir(index: int) -> str:
    """Folder of the ``index``-th stream in ``-var_stream_map`` (the audio comes last)."""
    return f"v{index}"


def fenced_ffprobe(ffprobe_bin: str) -> list[str]:
    """The start of every ffprobe argv that reads an upload: quiet, and fenced with both
    whitelists (local files and container demuxers only)."""
    return [
        ffprobe_bin,
        "-v",
        "error",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        FORMAT_WHITELIST,
    ]


def probe_command(ffprobe_bin: str, path: Path) -> list[str]:
    """ffprobe argv printing format and streams as JSON, refusing anything but containers."""
    return [
        *fenced_ffprobe(ffprobe_bin),
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        _local(path),
    ]


def filters_command(ffmpeg_bin: str) -> list[str]:
    """ffmpeg argv listing the filters this build has (see :func:`parse_filters`)."""
    return [ffmpeg_bin, "-hide_banner", "-nostdin", "-filters"]


def parse_filters(text: str) -> frozenset[str]:
    """Filter names from ``ffmpeg -filters``: lines like `` TS. bwdif  V->V  Deinterlace``."""
    names = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and "->" in fields[2]:
            names.add(fields[1])
    return frozenset(names)


def hdr_conversion_for(filters: frozenset[str]) -> HdrConversion:
    """Real tone mapping when this ffmpeg has zimg, else the colour matrix only."""
    return "zscale" if {"zscale", "tonemap"} <= filters else "matrix"


def hls_command(
    ffmpeg_bin: str,
    source: Path,
    out_dir: Path,
    renditions: Sequence[Rendition],
    *,
    info: ProbeResult,
    has_audio: bool | None = None,
    options: HlsOptions = HlsOptions(),
) -> list[str]:
    """One ffmpeg process: decode once, ``split`` into every rendition, fMP4 HLS out.

    Writes ``out_dir/v<i>/index.m3u8`` with ``init_<i>.mp4`` and ``seg_<n>.m4s`` per rendition,
    a shared stereo AAC rendition after them (the source's first audio stream, downmixed)
    when ``has_audio`` (default: when the source has audio), and ``out_dir/master.m3u8``.
    Progress goes to stdout as ``-progress`` lines.
    """
    if not renditions:
        raise ValueError("at least one rendition is needed")
    if "%" in str(out_dir):
        raise ValueError("out_dir must not contain '%': the HLS muxer reads it as a pattern")
    with_audio = info.has_audio if has_audio is None else has_audio and info.has_audio
    source_input = ffmpeg.input(
        _local(source), protocol_whitelist=PROTOCOL_WHITELIST, format_whitelist=FORMAT_WHITELIST
    )
    streams = _ladder_videos(source_input, renditions, info, options)
    if with_audio:
        streams.append(source_input["a:0"])  # the first track: the main commentary, by convention
    out = ffmpeg.output(
        *streams,
        _local(out_dir / "v%v" / MEDIA_PLAYLIST),
        **_video_options(renditions, options),
        **(_audio_options(options) if with_audio else {}),
        **_hls_options(out_dir, len(renditions), with_audio, options),
        map_metadata=-1,  # partners' files carry GPS positions and device names; fans need none
    )
    out = out.global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats"
    )
    return list(out.overwrite_output().compile(cmd=ffmpeg_bin))


def _ladder_videos(
    source_input: Any, renditions: Sequence[Rendition], info: ProbeResult, options: HlsOptions
) -> list[Any]:
    """The first video stream, decoded and fixed once, split into one branch per rendition.

    Rotation needs nothing here: ffmpeg turns the picture upright while decoding.
    """
    picture = source_input["v:0"]
    for name, arguments in picture_filters(info, options.hdr_conversion):
        picture = picture.filter(name, **arguments)
    branches = picture.split()
    return [
        _rung_branch(branches[index], rendition, info) for index, rendition in enumerate(renditions)
    ]


def picture_filters(info: ProbeResult, hdr: HdrConversion) -> list[tuple[str, dict[str, Any]]]:
    """Filters that make any source progressive 8-bit 4:2:0 SDR, in order; empty if it is."""
    filters: list[tuple[str, dict[str, Any]]] = []
    if info.interlaced:
        # bwdif (yadif's successor, sharper on motion); one frame per frame keeps the rate.
        filters.append(("bwdif", {"mode": "send_frame", "parity": "auto", "deint": "all"}))
    if info.hdr:
        filters += _tone_map_zscale(info) if hdr == "zscale" else _bt2020_matrix()
    elif info.pix_fmt != OUTPUT_PIX_FMT:
        # 10/12-bit, 4:2:2, 4:4:4 and full-range (yuvj) sources: converted once, before split.
        filters.append(("format", {"pix_fmts": OUTPUT_PIX_FMT}))
    return filters


def _tone_map_zscale(info: ProbeResult) -> list[tuple[str, dict[str, Any]]]:
    """PQ or HLG to BT.709 SDR: linearise, tone map (Hable, no desaturation), re-encode.

    The input transfer comes from the probe because some files tag it on the stream only
    (``info.hdr`` means it is one of the two known names, never arbitrary file text).
    """
    return [
        ("zscale", {"tin": info.color_transfer, "pin": "bt2020", "min": "bt2020nc",
                    "t": "linear", "npl": 100}),
        ("format", {"pix_fmts": "gbrpf32le"}),
        ("zscale", {"p": "bt709"}),
        ("tonemap", {"tonemap": "hable", "desat": 0}),
        ("zscale", {"t": "bt709", "m": "bt709", "r": "tv"}),
        ("format", {"pix_fmts": OUTPUT_PIX_FMT}),
    ]  # fmt: skip


def _bt2020_matrix() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("scale", {"in_color_matrix": "bt2020", "out_color_matrix": "bt709"}),
        ("format", {"pix_fmts": OUTPUT_PIX_FMT}),
    ]


def _rung_branch(branch: Any, rendition: Rendition, info: ProbeResult) -> Any:
    """One rendition: constant rate where it changes (or the source's varies), then size."""
    if rendition.fps is not None:
        fps = exact_rate(rendition.fps)
        if info.vfr or fps != source_rate(info):
            branch = branch.filter("fps", fps=f"{fps.numerator}/{fps.denominator}")
    return branch.filter("scale", rendition.width, rendition.height).filter("setsar", 1)


def _video_options(renditions: Sequence[Rendition], options: HlsOptions) -> dict[str, Any]:
    video: dict[str, Any] = {
        "c:v": "libx264",
        "profile:v": "high",
        "pix_fmt": OUTPUT_PIX_FMT,
        "preset": options.preset,
        # No scene-cut keyframes: only forced ones, at the same instants on every rung (time
        # based, so rungs at 60 and 30 fps still agree), so a player can switch at any segment.
        "sc_threshold": 0,
        **_keyframe_options(options),
    }
    for index, rendition in enumerate(renditions):
        video[f"b:v:{index}"] = f"{rendition.video_kbps}k"
        video[f"maxrate:v:{index}"] = f"{rendition.max_kbps}k"
        video[f"bufsize:v:{index}"] = f"{rendition.bufsize_kbps}k"
    return video


def _keyframe_options(options: HlsOptions) -> dict[str, Any]:
    if options.keyframes == "source":
        return {"force_key_frames": "source", "g": _NO_OWN_KEYFRAMES}
    return {"force_key_frames": f"expr:gte(t,n_forced*{options.keyframe_every_s})"}


def _audio_options(options: HlsOptions) -> dict[str, Any]:
    # -ac 2 downmixes 5.1 and up with ffmpeg's standard matrix, and upmixes mono.
    return {"c:a": "aac", "b:a": f"{options.audio_kbps}k", "ac": 2}


def _hls_options(
    out_dir: Path, video_count: int, has_audio: bool, options: HlsOptions
) -> dict[str, Any]:
    return {
        "f": "hls",
        "hls_time": options.segment_s,
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_flags": "independent_segments",
        "master_pl_name": MASTER_PLAYLIST,
        "var_stream_map": _var_stream_map(video_count, has_audio),
        "hls_segment_filename": _local(out_dir / "v%v" / "seg_%05d.m4s"),
    }


def _var_stream_map(video_count: int, has_audio: bool) -> str:
    """Each video alone in its variant, all pointing at one audio group encoded once."""
    group = f",agroup:{_AUDIO_GROUP}" if has_audio else ""
    variants = [f"v:{index}{group}" for index in range(video_count)]
    if has_audio:
        variants.append(f"a:0{group}")
    return " ".join(variants)


def ladder_video_args(
    source_input: Any, renditions: Sequence[Rendition], info: ProbeResult, options: HlsOptions
) -> tuple[list[Any], dict[str, Any]]:
    """The ladder's video branches (one decode, ``split``) and their x264 options, exactly as
    :func:`hls_command` uses them, for callers that build their own outputs (chunked encoding).
    The options address stream ``v:<i>`` for the ``i``-th rendition of one output."""
    return _ladder_videos(source_input, renditions, info, options), _video_options(
        renditions, options
    )


def hls_output_args(
    out_dir: Path, video_count: int, has_audio: bool, options: HlsOptions
) -> dict[str, Any]:
    """The audio and HLS muxer options of :func:`hls_command`: the same fMP4 layout under
    ``out_dir``, for callers that bring their own (already encoded) video streams."""
    return {
        **(_audio_options(options) if has_audio else {}),
        **_hls_options(out_dir, video_count, has_audio, options),
    }


def _local(path: Path) -> str:
    """An absolute path: never read as an option (``-x``) or a protocol (``concat:...``)."""
    return str(path.absolute())
