"""Pure builders of ffprobe and ffmpeg argument lists; nothing here runs a process.

Every command that reads an upload is fenced with two whitelists: only the ``file`` protocol,
and only container demuxers. An upload that is really an HLS playlist, a concat list or an
image pattern then fails to open instead of making ffmpeg read other files or URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from transcode.ladder import Rendition

PROTOCOL_WHITELIST = "file"
# Names exactly as `ffmpeg -demuxers` prints them (ffmpeg 5.1); a demuxer with several names
# matches on any of them. Missing on purpose: hls, dash, concat, image2*, tty, lavfi, sdp...
FORMAT_WHITELIST = ",".join(
    ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "flv", "avi", "mxf")
)

MASTER_PLAYLIST = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
_AUDIO_GROUP = "aud"


@dataclass(frozen=True)
class HlsOptions:
    """Encoding knobs shared by every rung."""

    segment_s: int = 4
    # Keyframes at the same instants on every rung, so a player can switch at any segment.
    keyframe_interval_s: int = 2
    audio_kbps: int = 128
    preset: str = "veryfast"


def variant_dir(index: int) -> str:
    """Folder of the ``index``-th stream in ``-var_stream_map`` (the audio comes last)."""
    return f"v{index}"


def probe_command(ffprobe_bin: str, path: Path) -> list[str]:
    """ffprobe argv printing format and streams as JSON, refusing anything but containers."""
    return [
        ffprobe_bin,
        "-v",
        "error",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        _local(path),
    ]


def hls_command(
    ffmpeg_bin: str,
    source: Path,
    out_dir: Path,
    renditions: Sequence[Rendition],
    *,
    has_audio: bool,
    options: HlsOptions = HlsOptions(),
) -> list[str]:
    """One ffmpeg process: decode once, ``split`` into every rendition, fMP4 HLS out.

    Writes ``out_dir/v<i>/index.m3u8`` with ``init_<i>.mp4`` and ``seg_<n>.m4s`` per rendition,
    a shared stereo AAC rendition after them when ``has_audio``, and ``out_dir/master.m3u8``.
    Progress goes to stdout as ``-progress`` lines.
    """
    if not renditions:
        raise ValueError("at least one rendition is needed")
    if "%" in str(out_dir):
        raise ValueError("out_dir must not contain '%': the HLS muxer reads it as a pattern")
    source_input = ffmpeg.input(
        _local(source), protocol_whitelist=PROTOCOL_WHITELIST, format_whitelist=FORMAT_WHITELIST
    )
    streams = _scaled_videos(source_input, renditions)
    if has_audio:
        streams.append(source_input["a:0"])
    out = ffmpeg.output(
        *streams,
        _local(out_dir / "v%v" / MEDIA_PLAYLIST),
        **_video_options(renditions, options),
        **(_audio_options(options) if has_audio else {}),
        **_hls_options(out_dir, len(renditions), has_audio, options),
        map_metadata=-1,  # partners' files carry GPS positions and device names; fans need none
    )
    out = out.global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats"
    )
    return list(out.overwrite_output().compile(cmd=ffmpeg_bin))


def _scaled_videos(source_input: Any, renditions: Sequence[Rendition]) -> list[Any]:
    """The first video stream, decoded once and split into one scaled branch per rendition."""
    branches = source_input["v:0"].split()
    return [
        branches[index].filter("scale", rendition.width, rendition.height).filter("setsar", 1)
        for index, rendition in enumerate(renditions)
    ]


def _video_options(renditions: Sequence[Rendition], options: HlsOptions) -> dict[str, Any]:
    video: dict[str, Any] = {
        "c:v": "libx264",
        "profile:v": "high",
        "pix_fmt": "yuv420p",  # 10-bit and 4:2:2 sources play nowhere as High profile
        "preset": options.preset,
        # Time-based forced keyframes and no scene-cut keyframes put every rung's segment
        # boundaries at the same instants, even if a later ladder mixes frame rates.
        "force_key_frames": f"expr:gte(t,n_forced*{options.keyframe_interval_s})",
        "sc_threshold": 0,
    }
    for index, rendition in enumerate(renditions):
        video[f"b:v:{index}"] = f"{rendition.rung.video_kbps}k"
        video[f"maxrate:v:{index}"] = f"{rendition.rung.max_kbps}k"
        video[f"bufsize:v:{index}"] = f"{rendition.rung.bufsize_kbps}k"
    return video


def _audio_options(options: HlsOptions) -> dict[str, Any]:
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


def _local(path: Path) -> str:
    """An absolute path: never read as an option (``-x``) or a protocol (``concat:...``)."""
    return str(path.absolute())
