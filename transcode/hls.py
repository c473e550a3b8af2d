"""Source file in, HLS ladder on local disk out: probe, choose rungs, encode, write the master."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from transcode.commands import (
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    HlsOptions,
    Keyframes,
    filters_command,
    hdr_conversion_for,
    hls_command,
    parse_filters,
    variant_dir,
)
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
from transcode.runner import run_capture, run_ffmpeg

# ffprobe reads headers only; a file that keeps it busy for a minute is hostile or broken.
PROBE_TIMEOUT_S = 60.0
FILTERS_TIMEOUT_S = 30.0


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
    frame_rate: float | None = None


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
    audio_bandwidth: int | None = None  # of the audio-only variant


def transcode_to_hls(
    source: Path,
    out_dir: Path,
    *,
    ffmpeg_bin: str = "ffmpeg",
    ffprobe_bin: str = "ffprobe",
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    ladder: tuple[Rung, ...] = DEFAULT_LADDER,
    segment_s: int = 4,
    keyframes: Keyframes = "interval",
) -> HlsOutput:
    """Transcode a local source into an fMP4 HLS ladder under ``out_dir`` (new or empty).

    ``timeout_s`` covers probe and encode together; ``segment_s`` is the HLS target duration
    (``settings.hls_segment_s``); ``keyframes`` is :attr:`HlsOptions.keyframes`. Raises
    :class:`~transcode.errors.UnsupportedInput` for files we refuse (with a partner-readable
    message), :class:`~transcode.errors.FFmpegFailed` / ``FFmpegTimeout`` when ffmpeg fails.
    """
    deadline = time.monotonic() + timeout_s
    _prepare(out_dir)
    info = probe(source, ffprobe_bin=ffprobe_bin, timeout_s=min(PROBE_TIMEOUT_S, timeout_s))
    return encode_ladder(
        source,
        out_dir,
        info,
        renditions_for(info, ladder),
        HlsOptions(segment_s=segment_s, keyframes=keyframes),
        ffmpeg_bin=ffmpeg_bin,
        timeout_s=_left(deadline),
        on_progress=on_progress,
    )


def encode_ladder(
    source: Path,
    out_dir: Path,
    info: ProbeResult,
    renditions: list[Rendition],
    options: HlsOptions | None = None,
    *,
    ffmpeg_bin: str = "ffmpeg",
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    has_audio: bool | None = None,
) -> HlsOutput:
    """Encode already chosen renditions of a probed source in one ffmpeg run, then package.

    ``out_dir`` must be new or empty. ``has_audio=False`` encodes video only (default: audio
    when the source has some). HDR sources are tone mapped with zscale when this ffmpeg has
    it (checked once per binary), else converted with the colour matrix only. Raises
    ``FFmpegFailed`` / ``FFmpegTimeout``.
    """
    deadline = time.monotonic() + timeout_s
    _prepare(out_dir)
    with_audio = info.has_audio if has_audio is None else has_audio and info.has_audio
    options = options or HlsOptions()
    if info.hdr and options.hdr_conversion == "zscale":
        # Asked only for HDR sources: most uploads never need the answer.
        filters = available_filters(ffmpeg_bin)
        options = replace(options, hdr_conversion=hdr_conversion_for(filters))
    argv = hls_command(
        ffmpeg_bin, source, out_dir, renditions, info=info, has_audio=with_audio, options=options
    )
    run_ffmpeg(argv, timeout_s=_left(deadline), duration_s=info.duration_s, on_progress=on_progress)
    return package(out_dir, renditions, info, has_audio=with_audio)


@functools.cache
def available_filters(ffmpeg_bin: str) -> frozenset[str]:
    """The filters this ffmpeg binary was built with (asked once per binary and process)."""
    return parse_filters(run_capture(filters_command(ffmpeg_bin), timeout_s=FILTERS_TIMEOUT_S))


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _prepare(out_dir: Path) -> None:
    # A leftover file from an earlier attempt would be listed, and so published, with ours.
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)


def package(
    out_dir: Path, renditions: list[Rendition], info: ProbeResult, *, has_audio: bool
) -> HlsOutput:
    """Replace ffmpeg's master playlist with a measured one and list what to upload.

    ``renditions`` are those the encode wrote, in order, as ``v<i>/index.m3u8``; with
    ``has_audio`` the shared audio rendition comes after them.
    """
    written = {v.uri: v for v in parse_master((out_dir / MASTER_PLAYLIST).read_text())}
    entries = [
        _entry(out_dir, _variant(written, index), rendition)
        for index, rendition in enumerate(renditions)
    ]
    audio = _audio(out_dir, len(renditions)) if has_audio else None
    (out_dir / MASTER_PLAYLIST).write_text(render_master(entries, audio))
    audio_bitrates = audio[1] if audio else None
    return HlsOutput(
        master=MASTER_PLAYLIST,
        renditions=[_info(r, e, audio_bitrates) for r, e in zip(renditions, entries, strict=True)],
        duration_s=info.duration_s,
        files=_files_in_publish_order(out_dir),
        audio_playlist=audio[0] if audio else None,
        audio_bandwidth=audio[1].peak if audio else None,
    )


def _audio(out_dir: Path, index: int) -> tuple[str, Bitrates]:
    uri = _playlist(index)
    return uri, measure(out_dir / uri)


def _playlist(index: int) -> str:
    return f"{variant_dir(index)}/{MEDIA_PLAYLIST}"


def _variant(written: dict[str, Variant], index: int) -> Variant:
    variant = written.get(_playlist(index))
    if variant is None or "CODECS" not in variant.attributes:
        raise TranscodeError(code="packaging_failed")
    return variant


def _entry(out_dir: Path, variant: Variant, rendition: Rendition) -> MasterEntry:
    width, _, height = variant.attributes.get("RESOLUTION", "0x0").partition("x")
    return MasterEntry(
        uri=variant.uri,
        bitrates=measure(out_dir / variant.uri),
        codecs=variant.attributes["CODECS"],
        width=int(width),
        height=int(height),
        frame_rate=rendition.fps,
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
        frame_rate=entry.frame_rate,
    )


def _files_in_publish_order(out_dir: Path) -> list[str]:
    """Segments and init files, then media playlists, then the master playlist."""
    files = [p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()]

    def rank(path: str) -> tuple[int, str]:
        if path == MASTER_PLAYLIST:
            return (2, path)
        return (1 if path.endswith(".m3u8") else 0, path)

    return sorted(files, key=rank)
