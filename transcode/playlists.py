"""Reading ffmpeg's HLS playlists and writing the master playlist we publish.

ffmpeg 5.1's own master playlist takes BANDWIDTH from the *requested* bitrate (``-b:v`` plus
audio, times 1.1), not from what was written, omits AVERAGE-BANDWIDTH and FRAME-RATE, and
lists the shared audio rendition a second time as an audio-only variant. We keep what it gets
right (CODECS, RESOLUTION) and measure the rest from the segments on disk. Our master lists
the audio rendition twice too, on purpose: once as the group every video variant plays with,
and once as an audio-only variant (last, the cheapest) that players on a failing mobile link
can fall back to (Apple's HLS authoring spec asks for one; hls.js ignores it while any video
variant plays).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_AUDIO_GROUP = "audio"
AAC_LC = "mp4a.40.2"


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry: its attributes (quotes removed) and its URI."""

    attributes: dict[str, str]
    uri: str


@dataclass(frozen=True)
class Bitrates:
    """Measured bits per second of a media playlist's segments, as RFC 8216 defines them."""

    peak: int
    average: int


@dataclass(frozen=True)
class MasterEntry:
    """What our master playlist says about one video rendition."""

    uri: str
    bitrates: Bitrates
    codecs: str
    width: int
    height: int
    frame_rate: float | None


def parse_attributes(text: str) -> dict[str, str]:
    """``KEY=value,KEY="quoted, value"`` into a dict, without the quotes."""
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(text)}


def parse_master(text: str) -> list[Variant]:
    """The variant streams of a master playlist, in order."""
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = parse_attributes(line.partition(":")[2])
        elif pending is not None and line and not line.startswith("#"):
            variants.append(Variant(pending, line))
            pending = None
    return variants


def segment_durations(text: str) -> list[tuple[float, str]]:
    """``(duration, uri)`` of every segment of a media playlist."""
    segments: list[tuple[float, str]] = []
    duration: float | None = None
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("#EXTINF:"):
            duration = float(line.partition(":")[2].partition(",")[0])
        elif duration is not None and line and not line.startswith("#"):
            segments.append((duration, line))
            duration = None
    return segments


def measure(playlist: Path) -> Bitrates:
    """Peak and average bitrate of a media playlist, from its segments' sizes on disk.

    The peak follows RFC 8216 (4.3.4.2): the highest rate over runs of consecutive segments
    lasting 0.5 to 1.5 target durations, so a short last segment is not a spike on its own.
    """
    segments = [
        (duration, (playlist.parent / uri).stat().st_size * 8)
        for duration, uri in segment_durations(playlist.read_text())
    ]
    total_s = sum(duration for duration, _ in segments)
    if total_s <= 0:
        return Bitrates(0, 0)
    average = sum(bits for _, bits in segments) / total_s
    target_s = math.ceil(max(duration for duration, _ in segments))
    return Bitrates(round(max(average, _peak(segments, target_s))), round(average))


def _peak(segments: list[tuple[float, int]], target_s: float) -> float:
    peak = 0.0
    for start in range(len(segments)):
        run_s, run_bits = 0.0, 0
        for duration, bits in segments[start:]:
            run_s, run_bits = run_s + duration, run_bits + bits
            if run_s > 1.5 * target_s:
                break
            if run_s >= 0.5 * target_s:
                peak = max(peak, run_bits / run_s)
    return peak


def combined(video: Bitrates, audio: Bitrates | None) -> Bitrates:
    """A variant's bitrates: RFC 8216 counts the audio rendition it plays with."""
    if audio is None:
        return video
    return Bitrates(video.peak + audio.peak, video.average + audio.average)


def render_master(
    entries: list[MasterEntry], audio: tuple[str, Bitrates] | None, *, audio_only: bool = True
) -> str:
    """A master playlist: one variant per video rendition, all sharing one audio rendition
    (``audio`` is its media playlist and bitrates), then an audio-only variant unless
    ``audio_only`` is False."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{_AUDIO_GROUP}",NAME="Main",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="{audio[0]}"'
        )
    audio_bitrates = audio[1] if audio is not None else None
    for entry in entries:
        lines += [_stream_inf(entry, audio_bitrates), entry.uri]
    if audio is not None and audio_only:
        lines += [_audio_only_inf(audio[1]), audio[0]]
    return "\n".join(lines) + "\n"


def _audio_only_inf(audio: Bitrates) -> str:
    return (
        f"#EXT-X-STREAM-INF:BANDWIDTH={audio.peak},"
        f'AVERAGE-BANDWIDTH={audio.average},CODECS="{AAC_LC}"'
    )


def _stream_inf(entry: MasterEntry, audio: Bitrates | None) -> str:
    bitrates = combined(entry.bitrates, audio)
    attributes = [
        f"BANDWIDTH={bitrates.peak}",
        f"AVERAGE-BANDWIDTH={bitrates.average}",
        f'CODECS="{entry.codecs}"',
        f"RESOLUTION={entry.width}x{entry.height}",
    ]
    if entry.frame_rate:
        attributes.append(f"FRAME-RATE={entry.frame_rate:.3f}")
    if audio is not None:
        attributes.append(f'AUDIO="{_AUDIO_GROUP}"')
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)
