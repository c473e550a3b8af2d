"""The ffmpeg steps of one processing attempt, each writing under one output root.

``copy_top_rung`` (stream copy, ``src/``), ``thumbnails`` (``thumbs/``) and ``encode_ladder``
(one decode, every rung, ``ladder/``) each return the files they wrote, relative to the root,
in upload order (media before the playlists naming them). ``transcode.publish`` decides when
each is published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from transcode.commands import HlsOptions, Keyframes
from transcode.hls import RenditionInfo, encode_ladder
from transcode.ladder import Rendition
from transcode.master import VideoRung, rung_from_ffmpeg_master, video_codecs
from transcode.probe import ProbeResult
from transcode.quick import (
    COPY_AUDIO_PLAYLIST,
    COPY_DIR,
    COPY_MASTER,
    audio_is_copyable,
    keyframes_command,
    parse_keyframes,
    remux_command,
    verdict,
)
from transcode.runner import run_capture, run_ffmpeg
from transcode.thumbnails import make_thumbnails

log = logging.getLogger(__name__)
LADDER_DIR = "ladder"
THUMBS_DIR = "thumbs"
KEYFRAME_SCAN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StepOutput:
    """Rungs and files one step wrote; ``audio_playlist`` when it wrote the audio rendition.

    ``keep`` is False for a copied rung that is published first but too fat to stay on top
    of the final ladder.
    """

    rungs: list[VideoRung]
    audio_playlist: str | None
    files: list[str]
    keep: bool = True


@dataclass(frozen=True)
class ThumbnailFiles:
    poster: str
    storyboard: str
    files: list[str]


@dataclass(frozen=True)
class Steps:
    """The binaries and limits every step shares."""

    ffmpeg_bin: str
    ffprobe_bin: str
    timeout_s: float
    segment_s: int

    def keyframes(self, source: Path) -> list[float]:
        """The source's keyframe times, from packet flags (nothing is decoded)."""
        scan = keyframes_command(self.ffprobe_bin, source)
        return parse_keyframes(run_capture(scan, timeout_s=KEYFRAME_SCAN_TIMEOUT_S))

    def copy_top_rung(
        self, source: Path, root: Path, info: ProbeResult, keyframes: list[float]
    ) -> StepOutput | None:
        """Stream-copy the source into a rung if it can be played as it is, else None."""
        decision = verdict(info, keyframes, segment_s=self.segment_s)
        if not decision.remux:
            log.info("encoding every rung", extra={"reason": decision.reason})
            return None
        argv = remux_command(
            self.ffmpeg_bin,
            source,
            root,
            has_audio=info.has_audio,
            segment_s=self.segment_s,
            copy_audio=audio_is_copyable(info),
        )
        run_ffmpeg(argv, timeout_s=self.timeout_s, duration_s=info.duration_s)
        short_side = min(info.display_width, info.display_height)
        rung = rung_from_ffmpeg_master(root, COPY_MASTER, f"{short_side}p", info.fps)
        audio = COPY_AUDIO_PLAYLIST if info.has_audio else None
        return StepOutput([rung], audio, publish_order(root, COPY_DIR), keep=decision.keep)

    def thumbnails(
        self, source: Path, root: Path, info: ProbeResult, keyframes: list[float]
    ) -> ThumbnailFiles:
        gaps = [later - earlier for earlier, later in pairwise([*keyframes, info.duration_s])]
        made = make_thumbnails(
            source,
            root / THUMBS_DIR,
            info,
            ffmpeg_bin=self.ffmpeg_bin,
            timeout_s=self.timeout_s,
            gop_s=max(gaps) if gaps else None,
        )
        return ThumbnailFiles(
            poster=f"{THUMBS_DIR}/{made.poster}",
            storyboard=f"{THUMBS_DIR}/{made.vtt}",
            files=[f"{THUMBS_DIR}/{name}" for name in made.files],
        )

    def encode_ladder(
        self,
        source: Path,
        root: Path,
        info: ProbeResult,
        renditions: list[Rendition],
        *,
        with_audio: bool,
        aligned: bool,
        on_progress: Callable[[float], None],
    ) -> StepOutput:
        """Every rung in one ffmpeg process; keyframes at the source's when ``aligned``."""
        if not renditions:
            return StepOutput([], None, [])
        keyframes: Keyframes = "source" if aligned else "interval"
        out = encode_ladder(
            source,
            root / LADDER_DIR,
            info,
            renditions,
            HlsOptions(segment_s=self.segment_s, keyframes=keyframes),
            ffmpeg_bin=self.ffmpeg_bin,
            timeout_s=self.timeout_s,
            on_progress=on_progress,
            has_audio=with_audio,
        )
        rungs = [_rung(info) for info in out.renditions]
        audio = f"{LADDER_DIR}/{out.audio_playlist}" if out.audio_playlist else None
        return StepOutput(rungs, audio, publish_order(root, LADDER_DIR))


def _rung(rendition: RenditionInfo) -> VideoRung:
    return VideoRung(
        name=rendition.name,
        playlist=f"{LADDER_DIR}/{rendition.playlist}",
        width=rendition.width,
        height=rendition.height,
        codecs=video_codecs(rendition.codecs),
        frame_rate=rendition.frame_rate,
    )


def publish_order(root: Path, subdir: str) -> list[str]:
    """Files under ``root/subdir`` relative to ``root``: media first, then media playlists.

    ffmpeg's own master playlists are left out: ours is written last, by the publisher.
    """
    paths = [p for p in (root / subdir).rglob("*") if p.is_file()]
    files = [p.relative_to(root).as_posix() for p in paths if "master" not in p.name]
    return sorted(files, key=lambda name: (name.endswith(".m3u8"), name))
