"""Whether we accept a source: limits, containers, codecs, and files that point elsewhere.

Every refusal is an :class:`~transcode.errors.UnsupportedInput` whose ``code`` is a key of
:data:`~transcode.errors.REFUSAL_REASONS` and whose message tells the partner what was wrong
and what to do. The checks on raw bytes (:func:`check_file`, :func:`refusal_for_unreadable`)
run before and after ffprobe; :func:`check_source` runs on what ffprobe found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from transcode.commands import FORMAT_WHITELIST
from transcode.errors import UnsupportedInput

if TYPE_CHECKING:  # probe imports this module to validate what it parses
    from core.settings import Settings
    from transcode.probe import ProbeResult

# Decoders we trust with partner uploads: what cameras, phones and editors export. Anything
# else is refused rather than handed to one of ffmpeg's rarely exercised decoders.
SUPPORTED_VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg2video", "mpeg4", "prores", "dnxhd", "mjpeg"}
)
ACCEPTED_CONTAINERS = frozenset(FORMAT_WHITELIST.split(","))
ACCEPTED_CONTAINERS_WORDS = "an MP4, MOV, MKV, WebM, MPEG-TS, FLV, AVI or MXF file"
# Enough to see any playlist or list header, small enough to read for every upload.
SNIFF_BYTES = 64 * 1024

NOT_MEDIA = (
    "We could not read this file as a video. Please upload "
    + ACCEPTED_CONTAINERS_WORDS
    + "; if it already is one, it may be damaged or incomplete, so please export it again."
)
EMPTY_FILE = (
    "This file is empty (0 bytes): the upload or the export was interrupted. Please upload "
    "the video again."
)
REFERENCES_EXTERNAL = (
    "This file is a playlist or a list that points at other files or web addresses (such as "
    "an HLS or DASH playlist or a concat list), not a video. We never follow such references: "
    "please upload the video file itself."
)
IMAGE_SEQUENCE = (
    "This file's name looks like a numbered image sequence (such as frame%03d.png), which "
    "would make us read other files. Please upload a single video file."
)


@dataclass(frozen=True)
class InputLimits:
    """The largest (and smallest) input we accept; defaults match :class:`Settings`."""

    max_duration_s: float = 4 * 3600.0
    max_long_side: int = 4096  # DCI 4K; 8K sources would need hours per clip on our workers
    min_short_side: int = 16  # below this there is nothing to scale, and x264 refuses it
    max_fps: float = 120.0
    max_bytes: int = 2 * 1024**3

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        """The limits configured by ``COURTSIDE_MAX_*``."""
        return cls(
            max_duration_s=float(settings.max_duration_s),
            max_long_side=settings.max_dimension_px,
            max_fps=settings.max_fps,
            max_bytes=settings.max_upload_bytes,
        )


DEFAULT_LIMITS = InputLimits()


def check_source(probe: ProbeResult, limits: InputLimits = DEFAULT_LIMITS) -> None:
    """Refuse a probed source we will not transcode; return quietly if it is fine.

    Codes: ``unsupported_container``, ``unsupported_codec``, ``too_large``, ``too_long``,
    ``dimensions_too_large``, ``dimensions_too_small``, ``frame_rate_too_high``.
    """
    _check_container(probe.container)
    _check_codec(probe.video_codec)
    _check_bytes(probe.size_bytes, limits)
    _check_duration(probe.duration_s, limits)
    _check_dimensions(probe.width, probe.height, limits)
    _check_frame_rate(probe.fps, limits)


def check_file(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> bytes:
    """Checks before ffprobe sees the file; returns its first bytes for later sniffing.

    Codes: ``empty_file``, ``too_large``, ``references_external`` (a playlist, a list, an image
    sequence name, or text naming other files or URLs) and ``not_media`` (any other text).
    Raises ``FileNotFoundError`` when ``path`` is not a regular file.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    size = path.stat().st_size
    if size == 0:
        raise UnsupportedInput(EMPTY_FILE, code="empty_file")
    _check_bytes(size, limits)
    if _IMAGE_PATTERN.search(path.name):
        raise UnsupportedInput(IMAGE_SEQUENCE, code="references_external")
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    check_head(head)
    return head


def check_head(head: bytes) -> None:
    """Refuse playlists, lists and text by their first bytes, whatever the file is called."""
    if references_external(head):
        raise UnsupportedInput(REFERENCES_EXTERNAL, code="references_external")
    if _looks_like_text(head):
        raise UnsupportedInput(NOT_MEDIA, code="not_media")


def references_external(head: bytes) -> bool:
    """True if these first bytes are a playlist, a list or text that names files or URLs."""
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    if _REFERENCE_HEADER.match(text):
        return True
    # Only in text: fragmented MP4 carries "urn:mpeg:dash:..." event schemes in its boxes.
    return _looks_like_text(head) and bool(
        _DASH_MANIFEST.search(text) or _NAMES_SOMETHING.search(text)
    )


def refusal_for_unreadable(head: bytes) -> UnsupportedInput:
    """The refusal for a file ffprobe could not open, judged by its first bytes.

    A known container that fails is ``corrupt`` (usually cut short); a media format we do not
    take is ``unsupported_container``; anything else is ``not_media``.
    """
    container = container_of(head)
    if container in _ACCEPTED_MAGIC_NAMES:
        return UnsupportedInput(_corrupt_message(container), code="corrupt")
    if container:
        return UnsupportedInput(_other_container_message(container), code="unsupported_container")
    return UnsupportedInput(NOT_MEDIA, code="not_media")


def container_of(head: bytes) -> str:
    """The container these bytes start like ("MP4/MOV", "Ogg", ...), or "" if none we know."""
    for name, matches in _MAGIC:
        if matches(head):
            return name
    return ""


def duration_words(seconds: float) -> str:
    """A duration as people say it: "5 h 12 min", "4 h", "3 min 20 s", "45 s"."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def size_words(size: int) -> str:
    """A byte count in decimal units, as file managers show it: "3.2 GB", "512 MB"."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _check_container(container: str) -> None:
    # ffprobe names a demuxer by all its aliases ("mov,mp4,m4a,..."); any accepted one will do.
    if not ACCEPTED_CONTAINERS.intersection(container.split(",")):
        raise UnsupportedInput(
            _other_container_message(container.split(",")[0][:40] or "unknown"),
            code="unsupported_container",
        )


def _check_codec(codec: str) -> None:
    if codec not in SUPPORTED_VIDEO_CODECS:
        raise UnsupportedInput(
            f"This video is encoded as {codec[:40] or 'an unknown codec'}, which we do not "
            "accept. Please export it as H.264 (or HEVC, VP9, AV1 or ProRes) and upload again.",
            code="unsupported_codec",
        )


def _check_bytes(size: int, limits: InputLimits) -> None:
    if size <= limits.max_bytes:
        return
    words, limit_words = size_words(size), size_words(limits.max_bytes)
    if words == limit_words:  # just over: rounded, both read the same
        words, limit_words = f"{size:,} bytes", f"{limits.max_bytes:,} bytes"
    raise UnsupportedInput(
        f"This file is {words}; the limit is {limit_words}. Export it at a lower bitrate, or "
        "trim or split it, and upload again.",
        code="too_large",
    )


def _check_duration(duration_s: float, limits: InputLimits) -> None:
    if duration_s > limits.max_duration_s:
        raise UnsupportedInput(
            f"This clip is {duration_words(duration_s)} long; the limit is "
            f"{duration_words(limits.max_duration_s)}. Trim or split it and upload again.",
            code="too_long",
        )


def _check_dimensions(width: int, height: int, limits: InputLimits) -> None:
    if max(width, height) > limits.max_long_side:
        raise UnsupportedInput(
            f"This video is {width}x{height} pixels; we accept at most {limits.max_long_side} "
            "pixels on the longer side. Export it at 4K or less and upload again.",
            code="dimensions_too_large",
        )
    if min(width, height) < limits.min_short_side:
        raise UnsupportedInput(
            f"This video is only {width}x{height} pixels; we need at least "
            f"{limits.min_short_side} pixels on each side. Please upload a larger version.",
            code="dimensions_too_small",
        )


def _check_frame_rate(fps: float | None, limits: InputLimits) -> None:
    # ffprobe reports 119.88 as 120000/1001; a hair over the limit is rounding, not a breach.
    if fps is not None and fps > limits.max_fps * 1.001:
        raise UnsupportedInput(
            f"This clip runs at {fps:.4g} frames per second; the limit is {limits.max_fps:g}. "
            f"Export it at {limits.max_fps:g} fps or less and upload again.",
            code="frame_rate_too_high",
        )


def _corrupt_message(container: str) -> str:
    return (
        f"This file starts like {container} video but we could not read it: it is probably "
        "damaged or was cut short during export or upload. Please export it again and re-upload."
    )


def _other_container_message(container: str) -> str:
    return (
        f"This file is in the {container} format, which we do not accept. Please upload "
        f"{ACCEPTED_CONTAINERS_WORDS}."
    )


def _looks_like_text(head: bytes) -> bool:
    """No NUL bytes: every container we accept has them in its first few bytes; text never."""
    return b"\x00" not in head


# Headers that make ffmpeg (or any player) read other files: HLS/M3U, ffconcat, SDP,
# PLS/ASX/SMIL/XSPF playlists. Case-insensitive, leading blank space allowed.
_REFERENCE_HEADER = re.compile(
    r"\s*(?:#EXTM3U|#EXT-X-|#EXTINF|ffconcat|file\s|v=0\s|\[playlist\]|<asx|<smil|"
    r"<\?xml[^>]*>\s*<(?:playlist|smil|asx)\b)",
    re.IGNORECASE,
)
_DASH_MANIFEST = re.compile(r"<MPD[\s>]|urn:mpeg:dash", re.IGNORECASE)
# In text: a URL, a ffmpeg protocol prefix, a concat "file" line, an absolute or parent path,
# or the name of a media or playlist file.
_NAMES_SOMETHING = re.compile(
    r"[a-z][a-z0-9+.-]{1,20}://|\b(?:file|concat|subfile|crypto|data|pipe|fd|async|cache):"
    r"|^\s*file\s|(?:^|[\s'\"=])(?:/|\.\./|~/|[a-z]:\\)"
    r"|\.(?:m3u8?|mpd|ts|m4s|mp4|mov|mkv|webm|flv|avi|mxf|sdp|ffconcat)\b",
    re.IGNORECASE | re.MULTILINE,
)
# printf-style numbering (%d, %03d) or globbing that ffmpeg's image2 demuxer would expand.
_IMAGE_PATTERN = re.compile(r"%0?\d*d|[*?\[]")


def _is_isobmff(head: bytes) -> bool:
    return head[4:8] in {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


def _is_mpegts(head: bytes) -> bool:
    # Two 188-byte packets starting 0x47, or two 192-byte M2TS ones (4-byte timestamp first).
    return head[0:1] == head[188:189] == b"G" or head[4:5] == head[196:197] == b"G"


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _riff(kind: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == kind


# First-bytes signatures, accepted containers first. A file ffprobe cannot open that starts
# like one of these is damaged; like one of the rest, a format we do not take.
_MAGIC: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("MP4/MOV", _is_isobmff),
    ("Matroska/WebM", _starts(b"\x1a\x45\xdf\xa3")),
    ("MPEG-TS", _is_mpegts),
    ("FLV", _starts(b"FLV\x01")),
    ("AVI", _riff(b"AVI ")),
    ("MXF", _starts(b"\x06\x0e\x2b\x34\x02\x05\x01\x01\x0d\x01\x02")),
    ("Ogg", _starts(b"OggS")),
    ("MPEG program stream", _starts(b"\x00\x00\x01\xba")),
    ("MPEG video", _starts(b"\x00\x00\x01\xb3")),
    ("WAV", _riff(b"WAVE")),
    ("ASF/WMV", _starts(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")),
    ("RealMedia", _starts(b".RMF")),
    ("NUT", _starts(b"nut/multimedia container")),
    ("MP3", _starts(b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")),
    ("FLAC", _starts(b"fLaC")),
)
_ACCEPTED_MAGIC_NAMES = frozenset({"MP4/MOV", "Matroska/WebM", "MPEG-TS", "FLV", "AVI", "MXF"})
