"""The live ladder: which rungs and which x264 preset a live input gets, so that one ffmpeg
keeps up with real time inside the configured CPU budget.

The cost model is deliberately simple: encoding costs ``pixels × fps`` per rung times a
preset factor, calibrated on this machine's figure that a 1080/720/480/360 ``veryfast``
ladder at 30 fps needs about 4 cores (it runs at 0.5× real time on 2). Faster presets are
tried before the top rung goes, and ``ultrafast`` (poor quality per bit) only when nothing
else fits; one rung always stays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from transcode.errors import TranscodeError
from transcode.ladder import (
    RUNG_360P,
    RUNG_480P,
    RUNG_720P,
    RUNG_1080P,
    Rung,
    exact_rate,
    frame_size,
    output_rate,
    video_ceiling_kbps,
)
from transcode.runner import run_capture

LIVE_RUNGS: tuple[Rung, ...] = (RUNG_1080P, RUNG_720P, RUNG_480P, RUNG_360P)
# Cores per (pixel × frame / s) at veryfast: 4 cores for the full 1080p30 ladder (16:9).
_FULL_LADDER_PIXEL_RATE = (1920 * 1080 + 1280 * 720 + 854 * 480 + 640 * 360) * 30
CORES_PER_PIXEL_RATE = 4.0 / _FULL_LADDER_PIXEL_RATE
# x264 speed relative to veryfast (its own preset table: fewer reference frames, subme,
# no CABAC/deblocking at ultrafast).
PRESET_FACTORS = {"veryfast": 1.0, "superfast": 0.6, "ultrafast": 0.35}
# Tried in this order on every rung set before the top rung is dropped.
PREFERRED_PRESETS = ("veryfast", "superfast")
LAST_RESORT_PRESET = "ultrafast"
AUDIO_KBPS = 128
ASSUMED_LIVE_FPS = 30.0
PROBE_TIMEOUT_S = 6.0


class LiveInputUnusable(TranscodeError):
    """The publisher's feed has no video we can encode (or could not be read at all)."""

    code = "live_input_unusable"
    default_message = "The live feed has no video we can read."


@dataclass(frozen=True)
class LiveInput:
    """What ffprobe says of the publisher's feed."""

    width: int
    height: int
    fps: float
    codec: str
    bitrate_kbps: int | None
    has_audio: bool


@dataclass(frozen=True)
class LiveRung:
    """One rung of a live ladder: ``name`` (``720p``) is its folder in the store."""

    name: str
    width: int
    height: int
    fps: float
    video_kbps: int
    max_kbps: int

    @property
    def bandwidth(self) -> int:
        """Peak bits/s with audio, as the master playlist states it."""
        return (self.max_kbps + AUDIO_KBPS) * 1000

    @property
    def average_bandwidth(self) -> int:
        return (self.video_kbps + AUDIO_KBPS) * 1000


@dataclass(frozen=True)
class LiveLadder:
    """The rungs (highest first) and the x264 preset of a stream; kept across its sessions."""

    preset: str
    rungs: tuple[LiveRung, ...]

    def to_json(self) -> list[dict[str, object]]:
        """The form stored in ``LiveStream.ladder``: one object per rung, preset in each."""
        return [{**asdict(rung), "preset": self.preset} for rung in self.rungs]

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]]) -> LiveLadder:
        if not data:
            raise ValueError("an empty ladder")
        rungs = tuple(
            LiveRung(
                str(r["name"]),
                int(r["width"]),
                int(r["height"]),
                float(r["fps"]),
                int(r["video_kbps"]),
                int(r["max_kbps"]),
            )
            for r in data
        )
        return cls(str(data[0]["preset"]), rungs)


def cost_cores(rungs: Sequence[LiveRung], preset: str) -> float:
    """Estimated cores to encode ``rungs`` in real time with ``preset``."""
    pixel_rate = sum(rung.width * rung.height * rung.fps for rung in rungs)
    return pixel_rate * CORES_PER_PIXEL_RATE * PRESET_FACTORS[preset]


def choose_ladder(source: LiveInput, budget_cores: float) -> LiveLadder:
    """The best ladder for ``source`` whose estimated cost fits ``budget_cores``: rungs from
    1080p down to 360p, none above the input, the top ones dropped or a faster preset taken
    until it fits; the smallest rung at ``ultrafast`` when nothing does."""
    rungs = live_rungs(source)
    candidates = [rungs[drop:] for drop in range(len(rungs))]
    for candidate in candidates:
        for preset in PREFERRED_PRESETS:
            if cost_cores(candidate, preset) <= budget_cores:
                return LiveLadder(preset, tuple(candidate))
    for candidate in candidates:
        if cost_cores(candidate, LAST_RESORT_PRESET) <= budget_cores:
            return LiveLadder(LAST_RESORT_PRESET, tuple(candidate))
    return LiveLadder(LAST_RESORT_PRESET, (rungs[-1],))


def live_rungs(source: LiveInput) -> list[LiveRung]:
    """Every live rung the input can feed (no upscaling), highest first; an input smaller
    than 360p gets one rung of its own size."""
    short_side = min(source.width, source.height)
    fitting = [rung for rung in LIVE_RUNGS if rung.height <= short_side]
    if not fitting:
        even = max(2, short_side - short_side % 2)
        fitting = [Rung(f"{even}p", even, RUNG_360P.bpp)]
    return [_fitted(rung, source) for rung in fitting]


def _fitted(rung: Rung, source: LiveInput) -> LiveRung:
    size = frame_size(rung.height, source.width, source.height)
    fps = output_rate(exact_rate(source.fps), rung.height) or Fraction(ASSUMED_LIVE_FPS)
    source_bps = source.bitrate_kbps * 1000 if source.bitrate_kbps else None
    ceiling = video_ceiling_kbps(size, fps, rung.bpp, source_bps)
    return LiveRung(
        rung.name, *size, fps=round(float(fps), 3), video_kbps=round(ceiling * 0.8),
        max_kbps=ceiling,
    )  # fmt: skip


# --- probing the feed -------------------------------------------------------------------------

LIVE_PROTOCOLS = "rtmp,rtmps,tcp,tls"


def probe_command(ffprobe_bin: str, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> list[str]:
    """ffprobe argv for a live feed: RTMP only, bounded I/O waits, a short analysis."""
    return [
        ffprobe_bin, "-v", "error",
        "-protocol_whitelist", LIVE_PROTOCOLS,
        "-rw_timeout", str(int(timeout_s * 1_000_000)),
        "-analyzeduration", "1000000", "-probesize", "1000000",
        "-print_format", "json", "-show_streams", "-show_format",
        url,
    ]  # fmt: skip


def probe_live(ffprobe_bin: str, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> LiveInput:
    """Probe the feed; :class:`~transcode.errors.FFmpegFailed` if it cannot be read,
    :class:`LiveInputUnusable` if it has no video."""
    return parse_live_probe(
        run_capture(probe_command(ffprobe_bin, url, timeout_s), timeout_s=timeout_s + 5)
    )


def parse_live_probe(json_text: str) -> LiveInput:
    """ffprobe's JSON for a live feed as a :class:`LiveInput`."""
    try:
        document = json.loads(json_text)
    except ValueError as exc:
        raise LiveInputUnusable("ffprobe said nothing readable about the feed") from exc
    streams = document.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or not video.get("width") or not video.get("height"):
        raise LiveInputUnusable()
    return LiveInput(
        width=int(video["width"]),
        height=int(video["height"]),
        fps=_fps(video),
        codec=str(video.get("codec_name", "unknown")),
        bitrate_kbps=_bitrate_kbps(video, document.get("format") or {}),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _fps(video: dict[str, Any]) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(video.get(key, "0/0")).partition("/")
        try:
            value = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if 0 < value <= 240 and math.isfinite(value):
            return value
    return ASSUMED_LIVE_FPS


def _bitrate_kbps(video: dict[str, Any], fmt: dict[str, Any]) -> int | None:
    """The stream's bitrate, else what the publisher announced in its RTMP metadata
    (``videodatarate`` + ``audiodatarate``, kbit/s), else unknown."""
    try:
        if video.get("bit_rate"):
            return round(int(video["bit_rate"]) / 1000)
        tags = fmt.get("tags") or {}
        announced = float(tags.get("videodatarate", 0)) + float(tags.get("audiodatarate", 0))
    except (TypeError, ValueError):
        return None
    return round(announced) if announced > 0 else None
