"""What an uploaded file is, according to ffprobe, and whether we accept it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode.commands import probe_command
from transcode.errors import FFmpegFailed, FFmpegTimeout, UnsupportedInput
from transcode.runner import run_capture
from transcode.validate import (
    DEFAULT_LIMITS,
    NOT_MEDIA,
    InputLimits,
    check_file,
    check_source,
    refusal_for_unreadable,
)

__all__ = ["DEFAULT_LIMITS", "InputLimits", "ProbeResult", "parse_probe", "probe", "read_probe"]


HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})
INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
# Bigger than any real source, smaller than anything that overflows arithmetic downstream.
MAX_SANE_BITRATE = 10**10
MAX_SANE_CHANNELS = 64
# r_frame_rate and avg_frame_rate further apart than this mean unevenly spaced frames.
VFR_TOLERANCE = 0.01
# Sample tables may list a little more than the file holds (rounded rates); half is not rounding.
TRUNCATION_SLACK = 1.1

NO_VIDEO_STREAM = (
    "This file has sound but no picture. Please upload a file that contains a video track."
)
TRUNCATED = (
    "This video is incomplete: its index lists more picture and sound than the file holds, so "
    "it was probably cut short during export or upload. Please export it again and re-upload."
)
CORRUPT = (
    "This video looks damaged or incomplete: we could not tell its length or picture size. "
    "Please export it again and re-upload."
)


@dataclass(frozen=True)
class ProbeResult:
    """The facts about a source that the transcoder needs.

    ``width``/``height`` are the coded frame; ``rotation`` (0, 90, 180, 270) and
    ``sample_aspect`` say how it is shown, and ``display_width``/``display_height`` apply them.
    ``fps`` is None when the file does not say (``avg_fps`` is the declared average only).
    ``bit_depth`` and ``chroma`` ("420", "422", "444", ... or "" when unknown) come from the
    pixel format; ``vfr`` means the frames are not evenly spaced; ``video_bitrate`` is in bits
    per second, None when unknown. The audio fields describe the first audio stream.
    """

    container: str
    duration_s: float
    width: int
    height: int
    fps: float | None
    video_codec: str
    pix_fmt: str
    has_audio: bool
    size_bytes: int
    rotation: int = 0
    sample_aspect: float = 1.0
    video_profile: str = ""
    bit_depth: int = 8
    chroma: str = "420"
    interlaced: bool = False
    color_transfer: str = ""
    avg_fps: float | None = None
    vfr: bool = False
    video_bitrate: int | None = None
    audio_codec: str | None = None
    audio_channels: int = 0
    audio_streams: int = 0

    @property
    def hdr(self) -> bool:
        """PQ (HDR10, Dolby Vision base) or HLG transfer: needs tone mapping for SDR rungs."""
        return self.color_transfer in HDR_TRANSFERS

    @property
    def display_width(self) -> int:
        return self._display_size()[0]

    @property
    def display_height(self) -> int:
        return self._display_size()[1]

    def _display_size(self) -> tuple[int, int]:
        width = round(self.width * self.sample_aspect)
        # ffmpeg turns rotated video upright while decoding, so the ladder must see it upright.
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)


def probe(
    path: Path,
    *,
    ffprobe_bin: str = "ffprobe",
    timeout_s: float,
    limits: InputLimits = DEFAULT_LIMITS,
) -> ProbeResult:
    """Run ffprobe on a local file and check that we accept it, within ``limits``.

    Playlists, lists and text are refused from their first bytes before ffprobe runs, so it
    never gets the chance to follow them. Raises :class:`UnsupportedInput` with any code of
    :data:`~transcode.errors.REFUSAL_REASONS`, :class:`FFmpegTimeout` if ffprobe hangs, and
    ``FileNotFoundError``.
    """
    head = check_file(path, limits)
    try:
        text = run_capture(probe_command(ffprobe_bin, path), timeout_s=timeout_s)
    except FFmpegTimeout:
        raise
    except FFmpegFailed as exc:
        # Unknown formats, refused demuxers and damaged files all end here; the first bytes
        # tell them apart, and the chained error keeps ffprobe's own words for the logs.
        raise refusal_for_unreadable(head) from exc
    return parse_probe(text, limits=limits)


def parse_probe(json_text: str, *, limits: InputLimits = DEFAULT_LIMITS) -> ProbeResult:
    """ffprobe's ``-print_format json -show_format -show_streams`` output, read and checked.

    :func:`read_probe`, then :func:`~transcode.validate.check_source`.
    """
    result = read_probe(json_text)
    check_source(result, limits)
    return result


def read_probe(json_text: str) -> ProbeResult:
    """Turn ffprobe's JSON into a result, refusing only what cannot be read at all.

    Raises :class:`UnsupportedInput` with code ``not_media``, ``no_video_stream`` or
    ``corrupt`` (no size or length, or an MP4 whose index lists more data than the file has).
    """
    document = _load(json_text)
    streams = _streams(document)
    video = _main_video_stream(streams)
    fmt = document.get("format")
    fmt = fmt if isinstance(fmt, dict) else {}
    result = _result(fmt, video, streams)
    _check_complete(result, streams)
    return result


def _load(json_text: str) -> dict[str, Any]:
    try:
        document = json.loads(json_text)
    except ValueError:  # also digits past Python's int limit
        raise UnsupportedInput(NOT_MEDIA, code="not_media") from None
    if not isinstance(document, dict) or not _streams(document):
        raise UnsupportedInput(NOT_MEDIA, code="not_media")
    return document


def _streams(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The streams that are JSON objects; ffprobe output is attacker-shaped, so check."""
    streams = document.get("streams")
    if not isinstance(streams, list):
        return []
    return [stream for stream in streams if isinstance(stream, dict)]


def _main_video_stream(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """The first real video stream; cover art in audio files is a video stream too, but no video."""
    for stream in streams:
        if stream.get("codec_type") == "video" and not _is_cover_art(stream):
            return stream
    raise UnsupportedInput(NO_VIDEO_STREAM, code="no_video_stream")


def _is_cover_art(stream: dict[str, Any]) -> bool:
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and disposition.get("attached_pic") == 1


def _result(
    fmt: dict[str, Any], video: dict[str, Any], streams: list[dict[str, Any]]
) -> ProbeResult:
    width, height = _count(video.get("width")), _count(video.get("height"))
    duration_s = _number(fmt.get("duration")) or _number(video.get("duration"))
    if width <= 0 or height <= 0 or duration_s <= 0:
        raise UnsupportedInput(CORRUPT, code="corrupt")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    pix_fmt = _text(video.get("pix_fmt"))
    return ProbeResult(
        container=_text(fmt.get("format_name")),
        duration_s=duration_s,
        width=width,
        height=height,
        fps=_frame_rate(video),
        video_codec=_text(video.get("codec_name")),
        pix_fmt=pix_fmt,
        has_audio=bool(audio),
        size_bytes=_count(fmt.get("size")),
        rotation=_rotation(video),
        sample_aspect=_sample_aspect(video),
        video_profile=_text(video.get("profile")),
        bit_depth=_bit_depth(video, pix_fmt),
        chroma=_chroma(pix_fmt),
        interlaced=_text(video.get("field_order")) in INTERLACED_FIELD_ORDERS,
        color_transfer=_text(video.get("color_transfer")),
        avg_fps=_rate(video, "avg_frame_rate"),
        vfr=_is_vfr(video),
        video_bitrate=_video_bitrate(fmt, video, audio),
        audio_codec=_text(audio[0].get("codec_name")) or None if audio else None,
        audio_channels=_channels(audio[0]) if audio else 0,
        audio_streams=len(audio),
    )


def _check_complete(result: ProbeResult, streams: list[dict[str, Any]]) -> None:
    """Refuse an MP4/MOV whose index promises more media than the file holds: cut short.

    Only there do stream bit rates come from the sample tables (exact); elsewhere they may be
    a declared maximum, which would make whole files look short.
    """
    if "mov" not in result.container.split(",") or not result.size_bytes:
        return
    indexed_bytes = sum(_count(s.get("bit_rate")) for s in streams) * result.duration_s / 8
    if indexed_bytes > result.size_bytes * TRUNCATION_SLACK:
        raise UnsupportedInput(TRUNCATED, code="corrupt")


def _number(value: object) -> float:
    """ffprobe writes numbers as strings, and ``N/A`` or nothing when it does not know.

    Anything that is not a finite, non-negative number reads as 0 ("unknown").
    """
    try:
        number = float(str(value))
    except ValueError:
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _count(value: object) -> int:
    """A whole number of pixels, bytes or channels; 0 when unknown or absurd."""
    number = _number(value)
    return int(number) if number < 2**53 else 0


def _text(value: object) -> str:
    """A short string field; ffprobe puts strings here, but a crafted file may put anything."""
    return value[:100] if isinstance(value, str) else ""


def _frame_rate(video: dict[str, Any]) -> float | None:
    # avg_frame_rate is the real rate; r_frame_rate is a timebase guess, used only as a fallback.
    return _rate(video, "avg_frame_rate") or _rate(video, "r_frame_rate")


def _rate(video: dict[str, Any], key: str) -> float | None:
    """A positive frame rate from a ``num/den`` string, None for ``0/0``, junk or absurdity."""
    rate = _fraction(video.get(key))
    return float(rate) if 0 < rate < 10**6 else None


def _is_vfr(video: dict[str, Any]) -> bool:
    """Frames not evenly spaced: the declared base rate and the real average disagree."""
    real, base = _rate(video, "avg_frame_rate"), _rate(video, "r_frame_rate")
    if real is None or base is None:
        return False
    return abs(base - real) > VFR_TOLERANCE * real


def _video_bitrate(
    fmt: dict[str, Any], video: dict[str, Any], audio: list[dict[str, Any]]
) -> int | None:
    """The stream's own bit rate, else the file's minus its audio (Matroska has only the latter)."""
    bitrate = _count(video.get("bit_rate"))
    if not bitrate:
        audio_bits = sum(_count(stream.get("bit_rate")) for stream in audio)
        bitrate = _count(fmt.get("bit_rate")) - audio_bits
    return bitrate if 0 < bitrate <= MAX_SANE_BITRATE else None


def _channels(audio: dict[str, Any]) -> int:
    channels = _count(audio.get("channels"))
    return channels if channels <= MAX_SANE_CHANNELS else 0


_DEPTH_IN_PIX_FMT = re.compile(r"(\d+)(?:le|be)$")


def _bit_depth(video: dict[str, Any], pix_fmt: str) -> int:
    """Bits per sample: ``bits_per_raw_sample`` when given, else the pixel format's suffix."""
    declared = _count(video.get("bits_per_raw_sample"))
    if 8 <= declared <= 16:
        return declared
    match = _DEPTH_IN_PIX_FMT.search(pix_fmt)
    depth = int(match.group(1)) if match else 8
    return depth if 8 <= depth <= 16 else 8


# Pixel format name prefixes and their chroma subsampling; the longest match wins.
_CHROMA_PREFIXES = (
    ("yuvj420", "420"),
    ("yuvj422", "422"),
    ("yuvj444", "444"),
    ("yuva420", "420"),
    ("yuva422", "422"),
    ("yuva444", "444"),
    ("yuv420", "420"),
    ("yuv422", "422"),
    ("yuv444", "444"),
    ("yuv440", "440"),
    ("yuv411", "411"),
    ("yuv410", "410"),
    ("nv12", "420"),
    ("nv21", "420"),
    ("p010", "420"),
    ("p016", "420"),
    ("nv16", "422"),
    ("nv20", "422"),
    ("yuyv422", "422"),
    ("uyvy422", "422"),
    ("y210", "422"),
    ("nv24", "444"),
    ("gbr", "444"),
    ("rgb", "444"),
    ("bgr", "444"),
    ("argb", "444"),
    ("abgr", "444"),
    ("gray", "400"),
)


def _chroma(pix_fmt: str) -> str:
    """Chroma subsampling as "420", "422", "444" (or "411", "440", "400"); "" when unknown."""
    for prefix, chroma in _CHROMA_PREFIXES:
        if pix_fmt.startswith(prefix):
            return chroma
    return ""


def _sample_aspect(video: dict[str, Any]) -> float:
    aspect = _fraction(_text(video.get("sample_aspect_ratio")).replace(":", "/"))
    # "0:1" means unknown: square pixels. Beyond 1:100 or 100:1 is a crafted header.
    return float(aspect) if Fraction(1, 100) <= aspect <= 100 else 1.0


def _fraction(text: object) -> Fraction:
    if not isinstance(text, str) or len(text) > 40:
        return Fraction(0)
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def _rotation(video: dict[str, Any]) -> int:
    """Rotation from the display matrix (ffmpeg 5+) or the legacy ``rotate`` tag, in 90s."""
    for side_data in video.get("side_data_list") or []:
        if isinstance(side_data, dict) and "rotation" in side_data:
            return _quarter_turns(side_data["rotation"])
    tags = video.get("tags")
    return _quarter_turns(tags.get("rotate", 0) if isinstance(tags, dict) else 0)


def _quarter_turns(value: object) -> int:
    try:
        degrees = float(str(value))
    except ValueError:
        return 0
    if not math.isfinite(degrees):
        return 0
    return round(degrees / 90) % 4 * 90
