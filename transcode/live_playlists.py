"""The playlists of a live stream as the store holds them: one model per rung (every segment
of its DVR window), rendered as the sliding ``live.m3u8`` and the whole ``dvr.m3u8``, and
parsed back from ``dvr.m3u8`` when a new task takes a stream over.

Every segment carries ``EXT-X-PROGRAM-DATE-TIME``; each encoder run (a publisher session, or
a takeover) starts with ``EXT-X-DISCONTINUITY`` and its own ``EXT-X-MAP``. The discontinuity
sequence follows RFC 8216 6.2.1: a tag that leaves the window with its segment raises
``EXT-X-DISCONTINUITY-SEQUENCE``. A tag on the first segment of a window is folded into that
number, so windows never start with a bare tag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from transcode.live_ladder import LiveRung

VERSION = 7
AUDIO_CODEC = "mp4a.40.2"


@dataclass(frozen=True)
class LiveSegment:
    """One stored media segment: ``seq`` is global (never reused), ``init`` its EXT-X-MAP."""

    seq: int
    duration: float
    pdt: datetime
    init: str
    discontinuity: bool = False

    @property
    def uri(self) -> str:
        return f"{self.seq}.m4s"

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.pdt.timestamp() + self.duration, UTC)


@dataclass
class RungPlaylist:
    """A rung's segments in its DVR window, oldest first.

    ``discontinuity_sequence`` is the discontinuity number of the first segment (the count of
    discontinuities up to and including it)."""

    target_duration: int
    segments: list[LiveSegment] = field(default_factory=list)
    discontinuity_sequence: int = 0
    ended: bool = False

    @property
    def next_seq(self) -> int:
        return self.segments[-1].seq + 1 if self.segments else 0

    def append(self, segment: LiveSegment) -> None:
        """Add the next segment (its duration may raise the target duration of an empty
        playlist only: RFC 8216 forbids changing it later)."""
        if self.segments and segment.seq <= self.segments[-1].seq:
            raise ValueError(f"segment {segment.seq} is not after {self.segments[-1].seq}")
        if not self.segments and segment.discontinuity:
            # A first segment never carries the tag: it is counted in the sequence instead
            # (the very first segment of a stream follows nothing, so it counts for nothing).
            self.discontinuity_sequence += segment.seq > 0
            segment = replace(segment, discontinuity=False)
        self.segments.append(segment)

    def trim(self, keep_s: float) -> list[LiveSegment]:
        """Drop the oldest segments beyond ``keep_s`` seconds (one always stays); returns them."""
        dropped: list[LiveSegment] = []
        while len(self.segments) > 1 and self._span() - self.segments[0].duration >= keep_s:
            dropped.append(self.segments.pop(0))
            if self.segments[0].discontinuity:
                self.discontinuity_sequence += 1
                self.segments[0] = replace(self.segments[0], discontinuity=False)
        return dropped

    def _span(self) -> float:
        return sum(segment.duration for segment in self.segments)

    def window(self, count: int) -> RungPlaylist:
        """The last ``count`` segments as a playlist of their own (the live window)."""
        start = max(0, len(self.segments) - count)
        skipped = self.segments[:start]
        folded = self.segments[start : start + 1]
        discontinuities = sum(s.discontinuity for s in skipped[1:] + folded) if start else 0
        window = [replace(s, discontinuity=False) for s in folded]
        return RungPlaylist(
            self.target_duration,
            window + self.segments[start + 1 :],
            self.discontinuity_sequence + discontinuities,
            self.ended,
        )

    def inits(self) -> set[str]:
        return {segment.init for segment in self.segments}


def target_duration_for(segment_s: float) -> int:
    """EXT-X-TARGETDURATION for segments of ``segment_s``. Keyframes are forced on a constant
    frame rate, so segments last ``segment_s`` to the frame (a segment counts as long as its
    duration rounded, RFC 8216 4.3.3.1). Players hold back a few target durations from the
    live edge (hls.js three), so a loose one would cost fans seconds of delay."""
    return max(1, math.ceil(segment_s))


def format_pdt(moment: datetime) -> str:
    """UTC with milliseconds: ``2026-11-30T04:30:00.123Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_pdt(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).astimezone(UTC)


def render_media(playlist: RungPlaylist) -> str:
    """The media playlist text (version 7, independent segments, fMP4)."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{playlist.target_duration}",
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.segments[0].seq if playlist.segments else 0}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{playlist.discontinuity_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    init = None
    for segment in playlist.segments:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init != init:
            lines.append(f'#EXT-X-MAP:URI="{segment.init}"')
            init = segment.init
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(segment.pdt)}")
        lines.append(f"#EXTINF:{segment.duration:.3f},")
        lines.append(segment.uri)
    if playlist.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def parse_media(text: str) -> RungPlaylist:
    """A media playlist written by :func:`render_media` back into its model."""
    playlist = RungPlaylist(target_duration=1)
    pending: dict[str, str] = {}
    init = ""
    for raw in text.splitlines():
        line = raw.strip()
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-TARGETDURATION":
            playlist.target_duration = int(value)
        elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
            playlist.discontinuity_sequence = int(value)
        elif tag == "#EXT-X-MAP":
            init = value.partition('URI="')[2].partition('"')[0]
        elif line in ("#EXT-X-DISCONTINUITY", "#EXT-X-ENDLIST"):
            pending[line] = ""
        elif tag in ("#EXT-X-PROGRAM-DATE-TIME", "#EXTINF"):
            pending[tag] = value
        elif line and not line.startswith("#"):
            playlist.segments.append(_segment(line, pending, init))
            pending = {}
    playlist.ended = "#EXT-X-ENDLIST" in pending
    return playlist


def _segment(uri: str, tags: dict[str, str], init: str) -> LiveSegment:
    return LiveSegment(
        seq=int(uri.removesuffix(".m4s")),
        duration=float(tags["#EXTINF"].partition(",")[0]),
        pdt=parse_pdt(tags["#EXT-X-PROGRAM-DATE-TIME"]),
        init=init,
        discontinuity="#EXT-X-DISCONTINUITY" in tags,
    )


# --- masters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterVariant:
    rung: LiveRung
    video_codec: str  # e.g. avc1.64001f, read from the rung's init segment
    has_audio: bool


def render_master(variants: Sequence[MasterVariant], media_playlist: str) -> str:
    """A master naming ``<rung>/<media_playlist>`` for every rung, highest first."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in sorted(variants, key=lambda v: v.rung.height, reverse=True):
        rung = variant.rung
        codecs = (
            f"{variant.video_codec},{AUDIO_CODEC}" if variant.has_audio else variant.video_codec
        )
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={rung.bandwidth},"
            f"AVERAGE-BANDWIDTH={rung.average_bandwidth},"
            f"RESOLUTION={rung.width}x{rung.height},"
            f'CODECS="{codecs}",FRAME-RATE={rung.fps:.3f}'
        )
        lines.append(f"{rung.name}/{media_playlist}")
    return "\n".join(lines) + "\n"


def avc_codec(init_segment: bytes) -> str:
    """The RFC 6381 codec string (``avc1.PPCCLL``) from the avcC box of an init segment."""
    at = init_segment.find(b"avcC")
    if at < 0 or len(init_segment) < at + 8:
        return "avc1.640028"  # High 4.0: what players assume for an HD rung
    profile, compat, level = init_segment[at + 5 : at + 8]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"
