"""The HLS ladder: which renditions to make from a source, and at what size and bitrate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # probe imports commands, which imports this module
    from transcode.probe import ProbeResult

MIN_VIDEO_KBPS = 100


@dataclass(frozen=True)
class Rung:
    """One step of the ladder.

    ``height`` is the frame's short side, so "720p" means 1280x720 for landscape and 720x1280
    for a phone's portrait clip: the same pixels, so the same bitrate fits both.
    ``video_kbps`` is the target, ``max_kbps`` the cap (the VBV buffer holds two seconds of it).
    """

    name: str
    height: int
    video_kbps: int
    max_kbps: int

    @property
    def bufsize_kbps(self) -> int:
        return 2 * self.max_kbps


@dataclass(frozen=True)
class Rendition:
    """A rung fitted to one source: the exact frame size to encode."""

    rung: Rung
    width: int
    height: int


# Highest first: ffmpeg's master playlist, and so the player's first choice, follows this order.
# The full ladder (1080p, 480p, 240p, 60 fps rates) is a later issue: add rungs here.
DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung("720p", 720, video_kbps=3000, max_kbps=3600),
    Rung("360p", 360, video_kbps=800, max_kbps=1000),
)


def ladder_for(probe: ProbeResult, ladder: tuple[Rung, ...] = DEFAULT_LADDER) -> list[Rung]:
    """The rungs worth making from this source: none above its short side (no upscaling).

    A source smaller than every rung gets one rung of its own size (rounded down to even),
    with the smallest rung's bitrates scaled down by pixel count.
    """
    short_side = min(probe.display_width, probe.display_height)
    fitting = [rung for rung in ladder if rung.height <= short_side]
    if fitting:
        return fitting
    return [_shrunk(min(ladder, key=lambda rung: rung.height), short_side - short_side % 2)]


def renditions_for(
    probe: ProbeResult, ladder: tuple[Rung, ...] = DEFAULT_LADDER
) -> list[Rendition]:
    """:func:`ladder_for` with each rung's frame size, keeping the source's display aspect."""
    width, height = probe.display_width, probe.display_height
    return [
        Rendition(rung, *frame_size(rung.height, width, height))
        for rung in ladder_for(probe, ladder)
    ]


def frame_size(short_side: int, source_width: int, source_height: int) -> tuple[int, int]:
    """Width and height with the given short side and the source's aspect, both even.

    H.264 in 4:2:0 needs even sizes; this matches ffmpeg's ``scale=-2:h`` rounding.
    """
    if source_width >= source_height:
        return _even(short_side * source_width / source_height), short_side
    return short_side, _even(short_side * source_height / source_width)


def _shrunk(rung: Rung, short_side: int) -> Rung:
    scale = (short_side / rung.height) ** 2
    return Rung(
        name=f"{short_side}p",
        height=short_side,
        video_kbps=max(MIN_VIDEO_KBPS, round(rung.video_kbps * scale)),
        max_kbps=max(MIN_VIDEO_KBPS, round(rung.max_kbps * scale)),
    )


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
