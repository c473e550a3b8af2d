"""First playable fast: a partner's H.264 source is stream-copied into the top rung.

Most league uploads come out of an editor as H.264 High, 8-bit 4:2:0 with a regular GOP. Such
a file needs no encoding to be played: remuxing it into fMP4 HLS (and encoding only the audio,
which is cheap) takes a fraction of a second, so the clip is playable long before the lower
rungs are encoded. The encoded rungs then force their keyframes at the source's keyframes
(``-force_key_frames source``), so every rung's segments start at the same instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import ffmpeg

from transcode.commands import FORMAT_WHITELIST, MEDIA_PLAYLIST, PROTOCOL_WHITELIST, fenced_ffprobe
from transcode.ladder import LOW_RUNG_MAX_FPS
from transcode.probe import ProbeResult

COPY_DIR = "src"
COPY_VIDEO_PLAYLIST = f"{COPY_DIR}/v0/{MEDIA_PLAYLIST}"
COPY_AUDIO_PLAYLIST = f"{COPY_DIR}/v1/{MEDIA_PLAYLIST}"
COPY_MASTER = f"{COPY_DIR}/copy_master.m3u8"  # ffmpeg's, read for CODECS, never published
REMUXABLE_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
MAX_REMUX_FPS = 60.0
# A copied rung carries the source's own bitrate. Up to this many bits per pixel (PeerTube's
# 1080p average is 0.10; an editor's 8 Mb/s 1080p30 export is 0.13) it stays as the top rung;
# above it (a camera original) it is still published first, then replaced by an encoded rung.
MAX_KEPT_BPP = 0.2


@dataclass(frozen=True)
class QuickVerdict:
    """Whether the source can be copied, whether the copy may stay as the top rung of the
    final ladder, and if not, why (logged, not shown to partners)."""

    remux: bool
    keep: bool = False
    reason: str = ""


def keyframes_command(ffprobe_bin: str, path: Path) -> list[str]:
    """ffprobe argv listing the first video stream's packets as ``pts_time,flags`` lines.

    Packets, not frames: nothing is decoded, so this takes milliseconds per minute of video.
    """
    return [
        *fenced_ffprobe(ffprobe_bin),
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        str(path.absolute()),
    ]


def parse_keyframes(csv_text: str) -> list[float]:
    """Keyframe times (s) from :func:`keyframes_command` output, sorted; junk lines skipped."""
    times: list[float] = []
    for line in csv_text.splitlines():
        pts, _, flags = line.strip().partition(",")
        if "K" not in flags:
            continue
        try:
            times.append(float(pts))
        except ValueError:
            continue
    return sorted(times)


def verdict(probe: ProbeResult, keyframes: Sequence[float], *, segment_s: float) -> QuickVerdict:
    """Can this source be stream-copied into a rung fans can play everywhere?"""
    checks = (
        (probe.video_codec == "h264", "not H.264"),
        (probe.pix_fmt in REMUXABLE_PIX_FMTS, f"pixel format {probe.pix_fmt}"),
        (
            probe.bit_depth == 8 and not probe.interlaced and not probe.vfr,
            "10-bit, interlaced or VFR",
        ),
        (probe.rotation == 0 and abs(probe.sample_aspect - 1) < 0.01, "rotated or anamorphic"),
        (probe.fps is not None and 0 < probe.fps <= MAX_REMUX_FPS, "frame rate"),
        (_sane_gop(keyframes, probe.duration_s, segment_s), "irregular or long GOP"),
        (_survive_halving(keyframes, probe.fps), "keyframes on frames a 30 fps rung drops"),
    )
    for passed, reason in checks:
        if not passed:
            return QuickVerdict(remux=False, reason=reason)
    if _bpp(probe) > MAX_KEPT_BPP:
        return QuickVerdict(remux=True, keep=False, reason="bitrate too high for a top rung")
    return QuickVerdict(remux=True, keep=True)


def _bpp(probe: ProbeResult) -> float:
    if not probe.video_bitrate or not probe.fps:
        return 0.0  # unknown: the GOP and codec checks still apply
    return probe.video_bitrate / (probe.width * probe.height * probe.fps)


def _sane_gop(keyframes: Sequence[float], duration_s: float, segment_s: float) -> bool:
    """Keyframes from the start, never further apart than two segments, so segments stay
    close to the target length on the copied rung and on the rungs aligned with it."""
    if not keyframes or keyframes[0] > 0.1:
        return False
    edges = [*keyframes, duration_s]
    return all(later - earlier <= 2 * segment_s for earlier, later in pairwise(edges))


def _survive_halving(keyframes: Sequence[float], fps: float | None) -> bool:
    """Above 30 fps the low rungs run at half rate and keep only even frames, so a keyframe
    on an odd frame would be missing there and their segments would not line up."""
    if fps is None or fps <= LOW_RUNG_MAX_FPS:
        return True
    return all(round(time * fps) % 2 == 0 for time in keyframes)


def audio_is_copyable(probe: ProbeResult) -> bool:
    """Stereo AAC plays everywhere as it is; anything else is encoded once."""
    return probe.audio_codec == "aac" and probe.audio_channels == 2


def remux_command(
    ffmpeg_bin: str,
    source: Path,
    out_dir: Path,
    *,
    has_audio: bool,
    segment_s: int,
    copy_audio: bool = False,
    audio_kbps: int = 128,
) -> list[str]:
    """Video copied, audio encoded once to stereo AAC, fMP4 HLS under ``out_dir/src/v<i>/``.

    The audio rendition written here is the one every rung of the ladder plays with.
    ``copy_audio`` (for a source whose first track is already stereo AAC) skips even that
    encode: most of a remux's time is the audio encoder.
    """
    source_input = ffmpeg.input(
        str(source.absolute()),
        protocol_whitelist=PROTOCOL_WHITELIST,
        format_whitelist=FORMAT_WHITELIST,
    )
    streams = [source_input["v:0"]]
    audio_options: dict[str, object] = {}
    if has_audio:
        streams.append(source_input["a:0"])
        audio_options = (
            {"c:a": "copy"} if copy_audio else {"c:a": "aac", "b:a": f"{audio_kbps}k", "ac": 2}
        )
    out = ffmpeg.output(
        *streams,
        str((out_dir / COPY_DIR / "v%v" / MEDIA_PLAYLIST).absolute()),
        **{"c:v": "copy"},
        **audio_options,
        f="hls",
        hls_time=segment_s,
        hls_playlist_type="vod",
        hls_segment_type="fmp4",
        hls_flags="independent_segments",
        master_pl_name=Path(COPY_MASTER).name,
        var_stream_map="v:0,agroup:aud a:0,agroup:aud" if has_audio else "v:0",
        hls_segment_filename=str((out_dir / COPY_DIR / "v%v" / "seg_%05d.m4s").absolute()),
        map_metadata=-1,
    )
    out = out.global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats"
    )
    return list(out.overwrite_output().compile(cmd=ffmpeg_bin))
