"""Tiny media files for tests, made by ffmpeg from its lavfi test sources.

A clip's parameters are its file name, so asking twice for the same clip in the same folder
(a session-scoped ``tmp_path_factory`` folder, say) encodes it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transcode.runner import run_ffmpeg

FFMPEG_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class OddVideo:
    """Unusual but legitimate video: what ``make_clip`` encodes differently."""

    pix_fmt: str = "yuv420p"  # "yuv420p10le" for 10-bit (x264 High 10)
    hdr: bool = False  # tagged BT.2020 PQ (HDR10); use with a 10-bit pix_fmt
    interlaced: bool = False  # top field first, coded interlaced
    vfr: bool = False  # every third frame dropped: 2/3 of the rate, unevenly spaced
    gop: int | None = None  # frames between keyframes (x264 default otherwise)

    def name(self) -> str:
        parts = [self.pix_fmt if self.pix_fmt != "yuv420p" else ""]
        parts += ["hdr" if self.hdr else "", "int" if self.interlaced else ""]
        parts += ["vfr" if self.vfr else "", f"g{self.gop}" if self.gop else ""]
        return "-".join(part for part in parts if part)


def make_clip(
    directory: Path,
    *,
    seconds: float = 2.0,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    audio: bool = True,
    video: bool = True,
    rotate: int = 0,
    suffix: str = ".mp4",
    ffmpeg_bin: str = "ffmpeg",
    odd: OddVideo | None = None,
    audio_tracks: int = 1,
    audio_channels: int = 1,
) -> Path:
    """A clip of ``testsrc2`` video (H.264) and/or a ``sine`` tone (AAC), made once per folder.

    ``rotate`` stores display-matrix rotation metadata, the way phones mark portrait video.
    ``odd`` makes the kind of video partners' cameras write (10-bit, HDR, interlaced, VFR,
    long GOPs); ``audio_tracks`` tones of different pitch, the first ``audio_channels`` wide.
    """
    if not (audio or video):
        raise ValueError("a clip needs audio, video or both")
    kinds = ("v" if video else "") + ("a" if audio else "")
    name = f"clip-{seconds:g}s-{width}x{height}-{fps}fps-{kinds}-r{rotate}"
    name += _extras_name(odd, audio_tracks if audio else 1, audio_channels) + suffix
    path = directory / name
    if path.exists():
        return path
    partial = directory / f".partial-{name}"
    argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += _sources(seconds, width, height, fps, video=video, audio=audio)
    tracks = audio_tracks if audio else 0
    argv += _extra_tracks(seconds, tracks, first_input=1 if video else 0)
    argv += [*_codecs(video=video, audio=audio), *_odd_args(odd if video else None)]
    argv += [*_audio_layout(tracks, audio_channels), str(partial)]
    run_ffmpeg(argv, timeout_s=FFMPEG_TIMEOUT_S)
    if rotate:
        rotated = directory / f".rotated-{name}"
        _set_rotation(ffmpeg_bin, partial, rotated, rotate)
        partial.unlink()
        partial = rotated
    partial.replace(path)  # only whole files carry the final name, so the cache never lies
    return path


def _sources(
    seconds: float, width: int, height: int, fps: int, *, video: bool, audio: bool
) -> list[str]:
    argv: list[str] = []
    if video:
        pattern = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds:g}"
        argv += ["-f", "lavfi", "-i", pattern]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}"]
    return argv


def _codecs(*, video: bool, audio: bool) -> list[str]:
    argv: list[str] = []
    if video:
        argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "64k"]
    return argv


def _set_rotation(ffmpeg_bin: str, source: Path, target: Path, degrees: int) -> None:
    # ffmpeg 5.1 drops rotation set while encoding; a stream copy keeps it.
    run_ffmpeg(
        [
            *(ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
            *("-i", str(source), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}"),
            str(target),
        ],
        timeout_s=FFMPEG_TIMEOUT_S,
    )


def _extras_name(odd: OddVideo | None, tracks: int, channels: int) -> str:
    extras = [odd.name() if odd else ""]
    extras += [f"{tracks}a" if tracks != 1 else "", f"{channels}ch" if channels != 1 else ""]
    return "".join(f"-{extra}" for extra in extras if extra)


def _extra_tracks(seconds: float, tracks: int, *, first_input: int) -> list[str]:
    """Inputs for audio tracks after the first, and the maps that keep every track."""
    if tracks <= 1:
        return []
    argv: list[str] = []
    for track in range(1, tracks):
        tone = f"sine=frequency={440 * (track + 1)}:sample_rate=48000:duration={seconds:g}"
        argv += ["-f", "lavfi", "-i", tone]
    maps = ["-map", "0:v"] if first_input else []
    for index in range(first_input, first_input + tracks):
        maps += ["-map", f"{index}:a"]
    return argv + maps


def _audio_layout(tracks: int, channels: int) -> list[str]:
    return ["-ac:a:0", str(channels)] if tracks and channels != 1 else []


def _odd_args(odd: OddVideo | None) -> list[str]:
    if odd is None:
        return []
    argv = ["-pix_fmt", odd.pix_fmt]
    if odd.hdr:
        argv += ["-color_primaries", "bt2020", "-color_trc", "smpte2084"]
        argv += ["-colorspace", "bt2020nc"]
    if odd.interlaced:
        argv += ["-flags", "+ildct+ilme", "-x264opts", "tff=1"]
    if odd.vfr:
        argv += ["-vf", "select='not(eq(mod(n,3),2))'", "-fps_mode", "vfr"]
    if odd.gop:
        argv += ["-g", str(odd.gop), "-keyint_min", str(odd.gop), "-sc_threshold", "0"]
    return argv
