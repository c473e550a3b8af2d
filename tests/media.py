"""Tiny media files for tests, made by ffmpeg from its lavfi test sources.

A clip's parameters are its file name, so asking twice for the same clip in the same folder
(a session-scoped ``tmp_path_factory`` folder, say) encodes it once.
"""

from __future__ import annotations

from pathlib import Path

from transcode.runner import run_ffmpeg

FFMPEG_TIMEOUT_S = 60.0


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
) -> Path:
    """A clip of ``testsrc2`` video (H.264) and/or a ``sine`` tone (AAC), made once per folder.

    ``rotate`` stores display-matrix rotation metadata, the way phones mark portrait video.
    """
    if not (audio or video):
        raise ValueError("a clip needs audio, video or both")
    kinds = ("v" if video else "") + ("a" if audio else "")
    name = f"clip-{seconds:g}s-{width}x{height}-{fps}fps-{kinds}-r{rotate}{suffix}"
    path = directory / name
    if path.exists():
        return path
    partial = directory / f".partial-{name}"
    argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += _sources(seconds, width, height, fps, video=video, audio=audio)
    argv += [*_codecs(video=video, audio=audio), str(partial)]
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
