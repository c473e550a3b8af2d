"""The published master playlist: a copied top rung (if any), the encoded rungs, one audio.

The copied rung and the encoded rungs come from two ffmpeg runs, so neither run's own master
describes the whole; this module writes the one fans get, from measured media playlists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transcode.playlists import (
    MasterEntry,
    combined,
    measure,
    parse_attributes,
    parse_master,
    render_master,
)

MASTER = "master.m3u8"
AUDIO_CODEC = "mp4a.40.2"


@dataclass(frozen=True)
class VideoRung:
    """A rung as published: its media playlist (relative to the output root) and its facts."""

    name: str
    playlist: str
    width: int
    height: int
    codecs: str
    frame_rate: float | None


def video_codecs(codecs: str) -> str:
    """The video part of a CODECS attribute (ffmpeg lists the audio codec beside it)."""
    return ",".join(c for c in codecs.split(",") if c and not c.startswith("mp4a"))


def rung_from_ffmpeg_master(
    root: Path, master: str, name: str, frame_rate: float | None
) -> VideoRung:
    """The first video variant of a master ffmpeg wrote (a copy run writes exactly one)."""
    variant = parse_master((root / master).read_text())[0]
    width, _, height = variant.attributes.get("RESOLUTION", "0x0").partition("x")
    playlist = (Path(master).parent / variant.uri).as_posix()
    codecs = video_codecs(variant.attributes.get("CODECS", "")) or avc1_of(root / playlist)
    return VideoRung(name, playlist, int(width), int(height), codecs, frame_rate)


def avc1_of(playlist: Path) -> str:
    """``avc1.PPCCLL`` from the avcC box of a media playlist's init segment, "" if none.

    ffmpeg 5.1's HLS muxer writes the H.264 CODECS only for Annex B extradata, so a rung
    stream-copied from an MP4 (avcC extradata) gets none in ffmpeg's own master."""
    maps = [line for line in playlist.read_text().splitlines() if line.startswith("#EXT-X-MAP")]
    uri = parse_attributes(maps[0].partition(":")[2]).get("URI", "") if maps else ""
    init = playlist.parent / uri
    data = init.read_bytes()[:65536] if uri and init.is_file() else b""
    at = data.find(b"avcC")
    # The box body: configurationVersion, then profile, compatibility and level bytes.
    return "avc1." + data[at + 5 : at + 8].hex() if at >= 0 and len(data) >= at + 8 else ""


def write_master(
    root: Path, rungs: Sequence[VideoRung], audio_playlist: str | None
) -> dict[str, int]:
    """Write ``root/master.m3u8`` for ``rungs`` (highest first) sharing ``audio_playlist``.

    Returns each rung's BANDWIDTH (audio included) by playlist, as the master states it.
    """
    entries = [_entry(root, rung, audio_playlist is not None) for rung in rungs]
    entries.sort(key=lambda entry: entry.height, reverse=True)
    audio = (audio_playlist, measure(root / audio_playlist)) if audio_playlist else None
    (root / MASTER).write_text(render_master(entries, audio))
    audio_bitrates = audio[1] if audio else None
    return {e.uri: combined(e.bitrates, audio_bitrates).peak for e in entries}


def _entry(root: Path, rung: VideoRung, with_audio: bool) -> MasterEntry:
    codecs = f"{rung.codecs},{AUDIO_CODEC}" if with_audio else rung.codecs
    return MasterEntry(
        uri=rung.playlist,
        bitrates=measure(root / rung.playlist),
        codecs=codecs,
        width=rung.width,
        height=rung.height,
        frame_rate=rung.frame_rate,
    )
