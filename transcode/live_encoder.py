"""The live encoder: one ffmpeg pulling the feed from the RTMP edge and writing every rung
as fMP4 HLS into a local work directory, plus readers for what it tells us (``-progress``
blocks, and its own playlists, which say only that a segment is complete).

Keyframes are forced every second on every rung (``expr:gte(t,n_forced*1)``, scene cuts off),
so the rungs' segments line up and each starts with a keyframe; audio is encoded once per
rung and muxed into its segments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transcode.live_ladder import AUDIO_KBPS, LIVE_PROTOCOLS, LiveLadder, LiveRung

LOCAL_PLAYLIST = "index.m3u8"
# ffmpeg keeps a few segments in its own playlist: enough that none completes unseen between
# two looks, while the work directory stays small (we delete what we have uploaded).
LOCAL_LIST_SIZE = 6
STATS_PERIOD_S = 0.25
RW_TIMEOUT_S = 10.0
# Every second on every rung, whatever the segment length: 2 s segments then hold two, and
# clips from live can start on any second.
KEYFRAME_INTERVAL_S = 1.0


@dataclass(frozen=True)
class EncoderJob:
    """One encoder run: where to pull from, what to make, where to write."""

    input_url: str
    ladder: LiveLadder
    work_dir: Path
    segment_s: float
    has_audio: bool
    rw_timeout_s: float = RW_TIMEOUT_S


def live_command(ffmpeg_bin: str, job: EncoderJob) -> list[str]:
    """The ffmpeg argv for ``job`` (see the module docstring)."""
    return [
        ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "warning",
        *_input_args(job),
        "-filter_complex", filter_graph(job.ladder.rungs),
        *_map_args(job),
        *_video_args(job),
        *(_audio_args() if job.has_audio else []),
        *_hls_args(job),
        "-progress", "pipe:1", "-stats_period", str(STATS_PERIOD_S),
        str(job.work_dir / "%v" / LOCAL_PLAYLIST),
    ]  # fmt: skip


def _input_args(job: EncoderJob) -> list[str]:
    # rw_timeout bounds every read: a publisher gone silent ends the run instead of hanging it
    # (rtmp's own "-timeout" would turn ffmpeg into a listener).
    return [
        "-protocol_whitelist", LIVE_PROTOCOLS,
        "-rw_timeout", str(int(job.rw_timeout_s * 1_000_000)),
        "-fflags", "+genpts",
        "-i", job.input_url,
    ]  # fmt: skip


def filter_graph(rungs: Sequence[LiveRung]) -> str:
    """One decode, ``split`` into a scaled branch per rung (``[v0]``, ``[v1]``…)."""
    outputs = "".join(f"[s{i}]" for i in range(len(rungs)))
    branches = [
        f"[s{i}]scale={rung.width}:{rung.height},fps={rung.fps:g},setsar=1,format=yuv420p[v{i}]"
        for i, rung in enumerate(rungs)
    ]
    return ";".join([f"[0:v:0]split={len(rungs)}{outputs}", *branches])


def _map_args(job: EncoderJob) -> list[str]:
    args: list[str] = []
    for index in range(len(job.ladder.rungs)):
        args += ["-map", f"[v{index}]"]
        if job.has_audio:
            args += ["-map", "0:a:0"]
    return args


def _video_args(job: EncoderJob) -> list[str]:
    args = [
        "-c:v", "libx264", "-preset", job.ladder.preset, "-tune", "zerolatency",
        "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_INTERVAL_S:g})",
        "-sc_threshold", "0",
    ]  # fmt: skip
    for index, rung in enumerate(job.ladder.rungs):
        args += [
            f"-b:v:{index}", f"{rung.video_kbps}k",
            f"-maxrate:v:{index}", f"{rung.max_kbps}k",
            f"-bufsize:v:{index}", f"{rung.max_kbps}k",
        ]  # fmt: skip
    return args


def _audio_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2", "-ar", "48000"]


def _hls_args(job: EncoderJob) -> list[str]:
    return [
        "-f", "hls",
        "-hls_time", f"{job.segment_s:g}",
        "-hls_list_size", str(LOCAL_LIST_SIZE),
        "-hls_segment_type", "fmp4",
        "-hls_flags", "independent_segments+temp_file",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(job.work_dir / "%v" / "seg_%06d.m4s"),
        "-var_stream_map", var_stream_map(job.ladder.rungs, job.has_audio),
    ]  # fmt: skip


def var_stream_map(rungs: Sequence[LiveRung], has_audio: bool) -> str:
    """``v:0,a:0,name:720p v:1,a:1,name:360p``: each rung's folder is its name."""
    return " ".join(
        f"v:{i}," + (f"a:{i}," if has_audio else "") + f"name:{rung.name}"
        for i, rung in enumerate(rungs)
    )


# --- what ffmpeg tells us ------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderStats:
    """One ``-progress`` block: encoder speed (× real time), output fps, dropped frames,
    output time (s) and output bitrate (kbit/s; None until known)."""

    frame: int
    fps: float
    speed: float | None
    drop_frames: int
    out_time_s: float
    bitrate_kbps: float | None


def parse_progress(lines: Iterable[str]) -> list[EncoderStats]:
    """Every complete block (ending in ``progress=...``) in ``lines``."""
    blocks: list[EncoderStats] = []
    values: dict[str, str] = {}
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key == "progress":
            blocks.append(_stats(values))
            values = {}
        elif key:
            values[key] = value.strip()
    return blocks


def _stats(values: dict[str, str]) -> EncoderStats:
    return EncoderStats(
        frame=int(_number(values.get("frame")) or 0),
        fps=_number(values.get("fps")) or 0.0,
        speed=_number(values.get("speed", "").removesuffix("x")),
        drop_frames=int(_number(values.get("drop_frames")) or 0),
        out_time_s=(_number(values.get("out_time_us")) or 0.0) / 1_000_000,
        bitrate_kbps=_number(values.get("bitrate", "").removesuffix("kbits/s")),
    )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


@dataclass(frozen=True)
class LocalSegment:
    """A segment ffmpeg has finished: its index in this run, file, duration and init file."""

    index: int
    path: Path
    duration: float
    init: Path


def completed_segments(rung_dir: Path) -> list[LocalSegment]:
    """The segments ffmpeg's own playlist in ``rung_dir`` lists (so: complete), oldest
    first; nothing if it has not written one yet."""
    try:
        text = (rung_dir / LOCAL_PLAYLIST).read_text()
    except FileNotFoundError:
        return []
    return parse_local_playlist(text, rung_dir)


def parse_local_playlist(text: str, rung_dir: Path) -> list[LocalSegment]:
    sequence, duration, init = 0, 0.0, ""
    segments: list[LocalSegment] = []
    for raw in text.splitlines():
        line = raw.strip()
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            sequence = int(value)
        elif tag == "#EXT-X-MAP":
            init = value.partition('URI="')[2].partition('"')[0]
        elif tag == "#EXTINF":
            duration = float(value.partition(",")[0])
        elif line and not line.startswith("#"):
            index = sequence + len(segments)
            segments.append(LocalSegment(index, rung_dir / line, duration, rung_dir / init))
    return segments
