"""The HLS ladder: which renditions to make from a source, at what size, rate and bitrate.

Bitrates follow PeerTube's bits-per-pixel model: a rung's ceiling is ``w × h × fps × bpp``,
with fewer bits per pixel as frames grow (big frames compress better), never more than the
source itself spent (×1.3), and never under 0.02 bpp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # probe imports commands, which imports this module
    from transcode.probe import ProbeResult

MIN_BPP = 0.02
# A rung may spend up to 30 % more than the source's own video stream: re-encoding costs some
# efficiency, but a rung fatter than that only re-encodes artefacts the source already has.
SOURCE_HEADROOM = 1.3
# -b:v is this share of the ceiling, so x264's average lands below the ceiling with room for
# the VBV to absorb fast action (sports pans) instead of smearing it; -maxrate is the ceiling.
TARGET_SHARE = 0.8
# Rungs at or above this short side keep the source's rate (60 fps sport stays fluid in HD);
# smaller ones, watched on phones over weak links, drop to at most LOW_RUNG_MAX_FPS.
KEEP_FPS_FROM_HEIGHT = 720
MAX_FPS = 60
LOW_RUNG_MAX_FPS = 30
# Used for the bitrate when a file does not say its frame rate.
ASSUMED_FPS = Fraction(30)
NTSC = Fraction(1000, 1001)
# What a variable-rate source is snapped to: the rates players and TVs expect.
STANDARD_RATES: tuple[Fraction, ...] = (
    Fraction(12),
    Fraction(15),
    24 * NTSC,
    Fraction(24),
    Fraction(25),
    30 * NTSC,
    Fraction(30),
    Fraction(48),
    Fraction(50),
    60 * NTSC,
    Fraction(60),
)


@dataclass(frozen=True)
class Rung:
    """One step of the ladder.

    ``height`` is the frame's short side, so "720p" means 1280x720 for landscape and 720x1280
    for a phone's portrait clip: the same pixels, so the same bits per pixel fit both.
    """

    name: str
    height: int
    bpp: float


@dataclass(frozen=True)
class Rendition:
    """A rung fitted to one source: exact frame size, output rate and bitrates.

    ``fps`` is None only when the source does not say its rate (then it is kept as is); a
    float for callers, :func:`exact_rate` gives it back as the fraction it was (30000/1001).
    ``video_kbps`` is x264's target (``-b:v``), ``max_kbps`` the ceiling (``-maxrate``); the
    VBV buffer holds two seconds at the ceiling, as in PeerTube.
    """

    rung: Rung
    width: int
    height: int
    fps: float | None
    video_kbps: int
    max_kbps: int

    @property
    def bufsize_kbps(self) -> int:
        return 2 * self.max_kbps


# Highest first: the master playlist, and so the player's first choice, follows this order.
# bpp are PeerTube's averages (packages/core-utils/src/videos/bitrate.ts).
RUNG_1080P = Rung("1080p", 1080, bpp=0.10)
RUNG_720P = Rung("720p", 720, bpp=0.11)
RUNG_480P = Rung("480p", 480, bpp=0.12)
RUNG_360P = Rung("360p", 360, bpp=0.15)
RUNG_240P = Rung("240p", 240, bpp=0.17)
RUNG_144P = Rung("144p", 144, bpp=0.19)
DEFAULT_LADDER: tuple[Rung, ...] = (RUNG_1080P, RUNG_720P, RUNG_480P, RUNG_360P, RUNG_240P)


def default_ladder(*, with_144p: bool = False) -> tuple[Rung, ...]:
    """The standard rungs, optionally down to 144p (for the weakest mobile links)."""
    return (*DEFAULT_LADDER, RUNG_144P) if with_144p else DEFAULT_LADDER


def ladder_for(probe: ProbeResult, ladder: tuple[Rung, ...] = DEFAULT_LADDER) -> list[Rung]:
    """The rungs worth making from this source: none above its short side (no upscaling).

    A source smaller than every rung gets one rung of its own size (rounded down to even),
    with the smallest rung's bits per pixel.
    """
    if not ladder:
        raise ValueError("the ladder has no rungs")
    short_side = min(probe.display_width, probe.display_height)
    fitting = [rung for rung in ladder if rung.height <= short_side]
    if fitting:
        return fitting
    smallest = min(ladder, key=lambda rung: rung.height)
    even = max(2, short_side - short_side % 2)
    return [Rung(f"{even}p", even, smallest.bpp)]


def renditions_for(
    probe: ProbeResult, ladder: tuple[Rung, ...] = DEFAULT_LADDER
) -> list[Rendition]:
    """:func:`ladder_for` with each rung's frame size (the source's display aspect), frame
    rate and bitrates."""
    width, height = probe.display_width, probe.display_height
    source = source_rate(probe)
    return [
        fitted(rung, frame_size(rung.height, width, height), source, probe.video_bitrate)
        for rung in ladder_for(probe, ladder)
    ]


def fitted(
    rung: Rung, size: tuple[int, int], source_fps: Fraction | None, source_bps: int | None
) -> Rendition:
    """One rung at a given frame size, for a source of the given rate and video bitrate."""
    fps = output_rate(source_fps, rung.height)
    ceiling = video_ceiling_kbps(size, fps or ASSUMED_FPS, rung.bpp, source_bps)
    return Rendition(
        rung,
        *size,
        fps=float(fps) if fps is not None else None,
        video_kbps=max(1, round(ceiling * TARGET_SHARE)),
        max_kbps=ceiling,
    )


def video_ceiling_kbps(
    size: tuple[int, int], fps: Fraction, bpp: float, source_bps: int | None
) -> int:
    """``w × h × fps × bpp`` in kbit/s, capped at the source's bitrate × 1.3 when known.

    The 0.02 bpp floor wins over the source cap: a header claiming a few kbit/s (a slideshow,
    or a lie) must not starve the encoder.
    """
    pixels_per_s = size[0] * size[1] * float(fps)
    ceiling = pixels_per_s * bpp
    if source_bps is not None and source_bps > 0:
        ceiling = min(ceiling, source_bps * SOURCE_HEADROOM)
    return max(1, math.ceil(max(ceiling, pixels_per_s * MIN_BPP) / 1000))


def source_rate(probe: ProbeResult) -> Fraction | None:
    """The source's frame rate as an exact fraction (29.97 is 30000/1001).

    A variable-rate source gets its average rate, snapped to the nearest standard rate: the
    rungs are encoded at that constant rate.
    """
    rate = probe.avg_fps if probe.vfr and probe.avg_fps else probe.fps
    if rate is None or rate <= 0:
        return None
    exact = exact_rate(rate)
    return snap(exact) if probe.vfr else exact


def exact_rate(fps: float) -> Fraction:
    """A frame rate as the fraction it stands for: 29.97002997 is 30000/1001."""
    return Fraction(fps).limit_denominator(1001)


def snap(rate: Fraction) -> Fraction:
    """The standard rate nearest to ``rate``, after halving it down to 60 fps or less."""
    return min(STANDARD_RATES, key=lambda standard: abs(standard - _at_most(rate, MAX_FPS)))


def output_rate(source: Fraction | None, rung_height: int) -> Fraction | None:
    """A rung's frame rate: at most 60 fps (halved until it fits), and for rungs under 720p at
    most 30 fps, by an integer divisor (60 → 30, 50 → 25, 59.94 → 29.97) so every kept
    frame is a source frame and keyframe instants match the higher rungs."""
    if source is None:
        return None
    top = _at_most(source, MAX_FPS)
    if rung_height >= KEEP_FPS_FROM_HEIGHT or top <= LOW_RUNG_MAX_FPS:
        return top
    return top / math.ceil(top / LOW_RUNG_MAX_FPS)


def _at_most(rate: Fraction, limit: int) -> Fraction:
    while rate > limit:
        rate /= 2
    return rate


def frame_size(short_side: int, source_width: int, source_height: int) -> tuple[int, int]:
    """Width and height with the given short side and the source's aspect, both even.

    H.264 in 4:2:0 needs even sizes; this matches ffmpeg's ``scale=-2:h`` rounding.
    """
    if source_width >= source_height:
        return _even(short_side * source_width / source_height), short_side
    return short_side, _even(short_side * source_height / source_width)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
