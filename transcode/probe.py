"""What an uploaded file is, according to ffprobe, and whether we accept it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode.commands import probe_command
from transcode.errors import FFmpegFailed, FFmpegTimeout, UnsupportedInput
from transcode.runner import run_capture

# Decoders we trust with partner uploads: what cameras, phones and editors export. Anything
# else is refused rather than handed to one of ffmpeg's rarely exercised decoders.
SUPPORTED_VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg2video", "mpeg4", "prores", "dnxhd", "mjpeg"}
)

NOT_MEDIA = (
    "We could not read this file as a video. Please upload an MP4, MOV, MKV, WebM, MPEG-TS, "
    "FLV, AVI or MXF file; if it already is one, it may be damaged or incomplete, so please "
    "export it again."
)
NO_VIDEO_STREAM = (
    "This file has sound but no picture. Please upload a file that contains a video track."
)
CORRUPT = (
    "This video looks damaged or incomplete: we could not tell its length or picture size. "
    "Please export it again and re-upload."
)


@dataclass(frozen=True)
class InputLimits:
    """The largest input we accept."""

    max_duration_s: float = 4 * 3600.0
    max_long_side: int = 4096  # DCI 4K; 8K sources would need hours per clip on our workers
    min_short_side: int = 16  # below this there is nothing to scale, and x264 refuses it


DEFAULT_LIMITS = InputLimits()


@dataclass(frozen=True)
class ProbeResult:
    """The facts about a source that the transcoder needs.

    ``width``/``height`` are the coded frame; ``rotation`` (0, 90, 180, 270) and
    ``sample_aspect`` say how it is shown, and ``display_width``/``display_height`` apply them.
    ``fps`` is None when the file does not say.
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


def probe(path: Path, *, ffprobe_bin: str = "ffprobe", timeout_s: float) -> ProbeResult:
    """Run ffprobe on a local file and check that we can transcode it.

    Raises :class:`UnsupportedInput` (``not_media`` when ffprobe cannot read it, or any code of
    :func:`parse_probe`), :class:`FFmpegTimeout` if ffprobe hangs, and ``FileNotFoundError``.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        text = run_capture(probe_command(ffprobe_bin, path), timeout_s=timeout_s)
    except FFmpegTimeout:
        raise
    except FFmpegFailed as exc:
        # Unknown formats, refused demuxers (playlists, concat lists) and damaged files all
        # end here; the chained error keeps ffprobe's own words for the logs.
        raise UnsupportedInput(NOT_MEDIA, code="not_media") from exc
    return parse_probe(text)


def parse_probe(json_text: str, *, limits: InputLimits = DEFAULT_LIMITS) -> ProbeResult:
    """Turn ffprobe's ``-print_format json -show_format -show_streams`` output into a result.

    Raises :class:`UnsupportedInput` with code ``not_media``, ``no_video_stream``,
    ``unsupported_codec``, ``corrupt``, ``too_long``, ``too_large_dimensions`` or
    ``too_small_dimensions``.
    """
    document = _load(json_text)
    streams: list[dict[str, Any]] = document["streams"]
    video = _main_video_stream(streams)
    _check_codec(video)
    result = _result(document.get("format", {}), video, streams)
    _check_limits(result, limits)
    return result


def _load(json_text: str) -> dict[str, Any]:
    try:
        document = json.loads(json_text)
    except ValueError:
        raise UnsupportedInput(NOT_MEDIA, code="not_media") from None
    if not isinstance(document, dict) or not document.get("streams"):
        raise UnsupportedInput(NOT_MEDIA, code="not_media")
    return document


def _main_video_stream(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """The first real video stream; cover art in audio files is a video stream too, but no video."""
    for stream in streams:
        is_cover_art = stream.get("disposition", {}).get("attached_pic") == 1
        if stream.get("codec_type") == "video" and not is_cover_art:
            return stream
    raise UnsupportedInput(NO_VIDEO_STREAM, code="no_video_stream")


def _check_codec(video: dict[str, Any]) -> None:
    codec = video.get("codec_name", "unknown")
    if codec not in SUPPORTED_VIDEO_CODECS:
        raise UnsupportedInput(
            f"This video is encoded as {codec}, which we do not accept. Please export it as "
            "H.264 (or HEVC, VP9, AV1 or ProRes).",
            code="unsupported_codec",
        )


def _result(
    fmt: dict[str, Any], video: dict[str, Any], streams: list[dict[str, Any]]
) -> ProbeResult:
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    duration_s = _number(fmt.get("duration")) or _number(video.get("duration"))
    if width <= 0 or height <= 0 or duration_s <= 0:
        raise UnsupportedInput(CORRUPT, code="corrupt")
    return ProbeResult(
        container=str(fmt.get("format_name", "")),
        duration_s=duration_s,
        width=width,
        height=height,
        fps=_frame_rate(video),
        video_codec=str(video["codec_name"]),
        pix_fmt=str(video.get("pix_fmt", "")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        size_bytes=int(_number(fmt.get("size"))),
        rotation=_rotation(video),
        sample_aspect=_sample_aspect(video),
    )


def _check_limits(result: ProbeResult, limits: InputLimits) -> None:
    if result.duration_s > limits.max_duration_s:
        raise UnsupportedInput(
            f"This video is {_clock(result.duration_s)} long; the limit is "
            f"{_clock(limits.max_duration_s)}. Please trim or split it.",
            code="too_long",
        )
    if max(result.width, result.height) > limits.max_long_side:
        raise UnsupportedInput(
            f"This video is {result.width}x{result.height} pixels; we accept at most "
            f"{limits.max_long_side} pixels on the longer side. Please export it at 4K or less.",
            code="too_large_dimensions",
        )
    if min(result.width, result.height) < limits.min_short_side:
        raise UnsupportedInput(
            f"This video is only {result.width}x{result.height} pixels; we need at least "
            f"{limits.min_short_side} pixels on each side.",
            code="too_small_dimensions",
        )


def _number(value: object) -> float:
    """ffprobe writes numbers as strings, and ``N/A`` or nothing when it does not know."""
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _frame_rate(video: dict[str, Any]) -> float | None:
    # avg_frame_rate is the real rate; r_frame_rate is a timebase guess, used only as a fallback.
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _fraction(video.get(key))
        if rate > 0:
            return float(rate)
    return None


def _sample_aspect(video: dict[str, Any]) -> float:
    aspect = _fraction(str(video.get("sample_aspect_ratio", "1:1")).replace(":", "/"))
    return float(aspect) if aspect > 0 else 1.0  # "0:1" means unknown: square pixels


def _fraction(text: object) -> Fraction:
    try:
        return Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def _rotation(video: dict[str, Any]) -> int:
    """Rotation from the display matrix (ffmpeg 5+) or the legacy ``rotate`` tag."""
    for side_data in video.get("side_data_list", []):
        if "rotation" in side_data:
            return round(_number(side_data["rotation"])) % 360
    return round(_number(video.get("tags", {}).get("rotate", 0))) % 360


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
