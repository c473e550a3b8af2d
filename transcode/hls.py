"""Source file in, HLS ladder on local disk out: probe, choose rungs, encode, write the master."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transcode.commands import MASTER_PLAYLIST, MEDIA_PLAYLIST, hls_command, variant_dir
from transcode.errors import TranscodeError
from transcode.ladder import DEFAULT_LADDER, Rendition, Rung, renditions_for
from transcode.playlists import (
    Bitrates,
    MasterEntry,
    Variant,
    combined,
    measure,
    parse_master,
    render_master,
)
from transcode.probe import ProbeResult, probe
from transcode.runner import run_ffmpeg

# ffprobe reads headers only; a file that keeps it busy for a minute is hostile or broken.
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RenditionInfo:
    """One video rendition as published. ``playlist`` is relative to the output folder."""

    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    playlist: str


@dataclass(frozen=True)
class HlsOutput:
    """What :func:`transcode_to_hls` wrote; every path is relative to the output folder.

    ``files`` lists every file written, media segments and playlists first and
    ``master.m3u8`` last, so an uploader that follows the order publishes atomically.
    """

    master: str
    renditions: list[RenditionInfo]
    duration_s: float
    files: list[str]
    audio_playlist: str | None = None


def transcode_to_hls(
    source: Path,
    out_dir: Path,
    *,
    ffmpeg_bin: str = "ffmpeg",
    ffprobe_bin: str = "ffprobe",
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    ladder: tuple[Rung, ...] = DEFAULT_LADDER,
) -> HlsOutput:
    """Transcode a local source into an fMP4 HLS ladder under ``out_dir`` (new or empty).

    ``timeout_s`` covers probe and encode together. Raises
    :class:`~transcode.errors.UnsupportedInput` for files we refuse (with a partner-readable
    message), :class:`~transcode.errors.FFmpegFailed` / ``FFmpegTimeout`` when ffmpeg fails.
    """
    deadline = time.monotonic() + timeout_s
    _prepare(out_dir)
    info = probe(source, ffprobe_bin=ffprobe_bin, timeout_s=min(PROBE_TIMEOUT_S, timeout_s))
    renditions = renditions_for(info, ladder)
    argv = hls_command(ffmpeg_bin, source, out_dir, renditions, has_audio=info.has_audio)
    run_ffmpeg(
        argv,
        timeout_s=max(deadline - time.monotonic(), 0.001),
        duration_s=info.duration_s,
        on_progress=on_progress,
    )
    return _package(out_dir, renditions, info)


def _prepare(out_dir: Path) -> None:
    # A leftover file from an earlier attempt would be listed, and so published, with ours.
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)


def _package(out_dir: Path, renditions: list[Rendition], info: ProbeResult) -> HlsOutput:
    """Replace ffmpeg's master playlist with a measured one and list what to upload."""
    written = {v.uri: v for v in parse_master((out_dir / MASTER_PLAYLIST).read_text())}
    entries = [_entry(out_dir, _variant(written, index), info) for index in range(len(renditions))]
    audio_uri = _playlist(len(renditions)) if info.has_audio else None
    audio = (audio_uri, measure(out_dir / audio_uri)) if audio_uri else None
    (out_dir / MASTER_PLAYLIST).write_text(render_master(entries, audio))
    return HlsOutput(
        master=MASTER_PLAYLIST,
        renditions=[
            _info(r, e, audio[1] if audio else None)
            for r, e in zip(renditions, entries, strict=True)
        ],
        duration_s=info.duration_s,
        files=_files_in_publish_order(out_dir),
        audio_playlist=audio_uri,
    )


def _playlist(index: int) -> str:
    return f"{variant_dir(index)}/{MEDIA_PLAYLIST}"


def _variant(written: dict[str, Variant], index: int) -> Variant:
    variant = written.get(_playlist(index))
    if variant is None or "CODECS" not in variant.attributes:
        raise TranscodeError(code="packaging_failed")
    return variant


def _entry(out_dir: Path, variant: Variant, info: ProbeResult) -> MasterEntry:
    width, _, height = variant.attributes.get("RESOLUTION", "0x0").partition("x")
    return MasterEntry(
        uri=variant.uri,
        bitrates=measure(out_dir / variant.uri),
        codecs=variant.attributes["CODECS"],
        width=int(width),
        height=int(height),
        frame_rate=info.fps,  # the ladder keeps the source's rate
    )


def _info(rendition: Rendition, entry: MasterEntry, audio: Bitrates | None) -> RenditionInfo:
    bitrates = combined(entry.bitrates, audio)
    return RenditionInfo(
        name=rendition.rung.name,
        width=entry.width,
        height=entry.height,
        bandwidth=bitrates.peak,
        average_bandwidth=bitrates.average,
        codecs=entry.codecs,
        playlist=entry.uri,
    )


def _files_in_publish_order(out_dir: Path) -> list[str]:
    """Segments and init files, then media playlists, then the master playlist."""
    files = [p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()]

    def rank(path: str) -> tuple[int, str]:
        if path == MASTER_PLAYLIST:
            return (2, path)
        return (1 if path.endswith(".m3u8") else 0, path)

    return sorted(files, key=rank)
