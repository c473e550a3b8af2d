"""Poster and storyboard (sprite sheets + WebVTT) for an asset.

The poster is a frame from about 15 % in, the most typical of a short run of frames (ffmpeg's
``thumbnail`` filter) so a fade from black or a flash does not become the asset's face. The
storyboard is 160-px-wide tiles on sheets of at most 10x10, one tile every ``interval_s``
(at least 1 s, at most 200 tiles), described by ``storyboard.vtt`` with ``#xywh=`` fragments,
the format hls.js/video.js/Vidstack scrubbing previews read.

The command builders are pure; :func:`make_thumbnails` runs them through the runner.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from transcode.commands import FORMAT_WHITELIST, PROTOCOL_WHITELIST
from transcode.errors import TranscodeError
from transcode.probe import ProbeResult
from transcode.runner import run_ffmpeg

POSTER = "poster.jpg"
STORYBOARD_VTT = "storyboard.vtt"
POSTER_MAX_WIDTH = 1280
POSTER_AT = 0.15  # of the duration: past intros and fades, before the end card
POSTER_CANDIDATES = 10  # frames the thumbnail filter picks from (kept in memory, scaled)
TILE_WIDTH = 160
SHEET_COLUMNS = 10
SHEET_ROWS = 10
TARGET_TILES = 100
MAX_TILES = 200
MIN_INTERVAL_S = 1.0
# From this tile interval on, only keyframes are decoded: typical GOPs are 1-4 s, so a tile
# is at most one GOP off, and a long source is read many times faster. Shorter intervals
# (short clips) decode every frame so each tile shows its own instant.
KEYFRAMES_ONLY_FROM_S = 4.0
JPEG_QUALITY = 4  # mjpeg's qscale: 2 (best) to 31


@dataclass(frozen=True)
class StoryboardPlan:
    """Where every tile goes: ``tiles`` tiles of ``tile_width``x``tile_height``, one every
    ``interval_s``, ``columns``x``rows`` per sheet (the last sheet may be part filled)."""

    interval_s: float
    tiles: int
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    keyframes_only: bool = False

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheets(self) -> list[str]:
        return [sheet_name(index) for index in range(math.ceil(self.tiles / self.per_sheet))]

    def position(self, tile: int) -> tuple[str, int, int]:
        """The sheet holding tile ``tile`` (0-based) and the tile's top-left corner on it."""
        sheet, slot = divmod(tile, self.per_sheet)
        row, column = divmod(slot, self.columns)
        return sheet_name(sheet), column * self.tile_width, row * self.tile_height


@dataclass(frozen=True)
class Thumbnails:
    """What :func:`make_thumbnails` wrote; names are relative to its output folder.

    ``files`` lists the sheets, then the poster, then the VTT (which names the sheets).
    """

    poster: str
    vtt: str
    sheets: list[str]
    interval_s: float
    files: list[str]


def sheet_name(index: int) -> str:
    """File name of the ``index``-th sprite sheet (0-based index, 1-based name)."""
    return f"storyboard_{index + 1}.jpg"


def plan_storyboard(
    duration_s: float,
    display_width: int,
    display_height: int,
    interval_s: float | None = None,
    gop_s: float | None = None,
) -> StoryboardPlan:
    """Tile interval, count and size for a source.

    Without ``interval_s``, whole seconds giving about 100 tiles (at least 1 s); a requested
    interval is raised to 1 s and to whatever keeps the count at 200 or fewer. ``gop_s``, the
    source's longest keyframe interval when known and short, raises the interval to it (whole
    seconds) so that only keyframes need decoding: at 1080p that is ten times faster, and a
    tile lands on a keyframe at most one GOP early.
    """
    if duration_s <= 0 or display_width <= 0 or display_height <= 0:
        raise ValueError("duration and display size must be positive")
    if interval_s is not None and not math.isfinite(interval_s):
        raise ValueError(f"interval_s must be a number of seconds (got {interval_s})")
    wanted = interval_s if interval_s is not None else math.ceil(duration_s / TARGET_TILES)
    short_gop = gop_s is not None and 0 < gop_s <= KEYFRAMES_ONLY_FROM_S
    if short_gop and gop_s is not None:
        wanted = max(wanted, math.ceil(gop_s - 1e-6))
    interval = float(max(wanted, MIN_INTERVAL_S, duration_s / MAX_TILES))
    # As many tiles as ffmpeg's fps filter makes (it rounds the end to the nearest slot);
    # the last cue then stretches to the end, over at most half an interval more.
    tiles = max(1, math.floor(duration_s / interval + 0.5))
    columns = min(SHEET_COLUMNS, tiles)
    rows = min(SHEET_ROWS, math.ceil(tiles / columns))
    tile_height = _even(TILE_WIDTH * display_height / display_width)
    keyframes_only = short_gop or interval >= KEYFRAMES_ONLY_FROM_S
    return StoryboardPlan(interval, tiles, TILE_WIDTH, tile_height, columns, rows, keyframes_only)


def storyboard_vtt(plan: StoryboardPlan, duration_s: float) -> str:
    """WebVTT with one cue per tile, end to end from 0 to ``duration_s``."""
    lines = ["WEBVTT", ""]
    for tile in range(plan.tiles):
        start = tile * plan.interval_s
        end = duration_s if tile == plan.tiles - 1 else (tile + 1) * plan.interval_s
        sheet, x, y = plan.position(tile)
        lines += [f"{_clock(start)} --> {_clock(end)}"]
        lines += [f"{sheet}#xywh={x},{y},{plan.tile_width},{plan.tile_height}", ""]
    return "\n".join(lines)


def poster_size(display_width: int, display_height: int) -> tuple[int, int]:
    """The poster's size: the display aspect, at most 1280 wide, never upscaled, even."""
    width = _even(min(POSTER_MAX_WIDTH, display_width))
    return width, _even(width * display_height / display_width)


def poster_command(ffmpeg_bin: str, source: Path, out: Path, info: ProbeResult) -> list[str]:
    """ffmpeg argv writing one JPEG: the most typical of a few frames from ~15 % in."""
    width, height = poster_size(info.display_width, info.display_height)
    picture = (
        _input(source, ss=f"{info.duration_s * POSTER_AT:.3f}")["v:0"]
        .filter("scale", width, height)
        .filter("setsar", 1)
        .filter("thumbnail", n=POSTER_CANDIDATES)
    )
    output = picture.output(_local(out), vframes=1, **{"q:v": JPEG_QUALITY}, map_metadata=-1)
    return _compiled(output, ffmpeg_bin)


def storyboard_command(
    ffmpeg_bin: str, source: Path, out_dir: Path, plan: StoryboardPlan
) -> list[str]:
    """ffmpeg argv writing ``storyboard_<n>.jpg`` sheets: one tile per interval, tiled."""
    decoder = {"skip_frame": "nokey"} if plan.keyframes_only else {}
    rate = Fraction(1) / Fraction(plan.interval_s).limit_denominator(1000)
    sheets = (
        _input(source, **decoder)["v:0"]
        .filter("scale", plan.tile_width, plan.tile_height)  # first: the rest is then cheap
        .filter("setsar", 1)
        # With keyframes only, the last decoded picture can be a whole GOP before the end,
        # where the fps filter would stop and leave the last tiles black: hold the last
        # picture to the end. The hold costs little: trim ends the graph at the last tile.
        .filter("tpad", stop_mode="clone", stop_duration=f"{plan.tiles * plan.interval_s:g}")
        .filter("fps", fps=f"{rate.numerator}/{rate.denominator}")
        .filter("trim", end_frame=plan.tiles)
        .filter("tile", f"{plan.columns}x{plan.rows}")
    )
    output = sheets.output(
        _local(out_dir / "storyboard_%d.jpg"),
        **{"q:v": JPEG_QUALITY},
        start_number=1,
        map_metadata=-1,
    )
    return _compiled(output, ffmpeg_bin)


def make_thumbnails(
    source: Path,
    out_dir: Path,
    probe: ProbeResult,
    *,
    ffmpeg_bin: str,
    timeout_s: float,
    interval_s: float | None = None,
    gop_s: float | None = None,
) -> Thumbnails:
    """Write ``poster.jpg``, ``storyboard_<n>.jpg`` and ``storyboard.vtt`` into ``out_dir``.

    ``gop_s``: the source's longest keyframe interval, if known (see :func:`plan_storyboard`).

    ``timeout_s`` covers both ffmpeg runs. Raises ``FFmpegFailed`` / ``FFmpegTimeout``, and
    :class:`TranscodeError` (``thumbnails_failed``) if ffmpeg wrote fewer sheets than planned.
    """
    deadline = time.monotonic() + timeout_s
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_storyboard(
        probe.duration_s, probe.display_width, probe.display_height, interval_s, gop_s
    )
    run_ffmpeg(poster_command(ffmpeg_bin, source, out_dir / POSTER, probe), timeout_s=timeout_s)
    run_ffmpeg(
        storyboard_command(ffmpeg_bin, source, out_dir, plan),
        timeout_s=max(deadline - time.monotonic(), 0.001),
    )
    if not all((out_dir / name).is_file() for name in [POSTER, *plan.sheets]):
        raise TranscodeError(code="thumbnails_failed")
    (out_dir / STORYBOARD_VTT).write_text(storyboard_vtt(plan, probe.duration_s))
    return Thumbnails(
        poster=POSTER,
        vtt=STORYBOARD_VTT,
        sheets=plan.sheets,
        interval_s=plan.interval_s,
        files=[*plan.sheets, POSTER, STORYBOARD_VTT],
    )


def _input(source: Path, **options: Any) -> Any:
    """The source, fenced like every upload: local files and container demuxers only."""
    return ffmpeg.input(
        _local(source),
        protocol_whitelist=PROTOCOL_WHITELIST,
        format_whitelist=FORMAT_WHITELIST,
        **options,
    )


def _compiled(output: Any, ffmpeg_bin: str) -> list[str]:
    output = output.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-nostats")
    return list(output.overwrite_output().compile(cmd=ffmpeg_bin))


def _clock(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _local(path: Path) -> str:
    """An absolute path: never read as an option (``-x``) or a protocol (``concat:...``)."""
    return str(path.absolute())


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
