"""Errors of the transcoder.

Each carries a ``code`` (stable, for the API and webhooks) and a ``message`` written for the
partner who uploaded the file; ``str(error)`` is that message, so it is safe to show. What
operators need (ffmpeg's exit status and stderr) sits in separate attributes.
"""

from __future__ import annotations

from core.errors import CourtsideError


class TranscodeError(CourtsideError):
    """A video could not be turned into HLS."""

    code = "transcode_failed"
    default_message = "We could not process this video."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)


# Every reason a source is refused, in one place: code -> what it means. The README's
# "Why a clip is refused" table is this table; tests check that the two agree.
REFUSAL_REASONS: dict[str, str] = {
    "empty_file": "The file has 0 bytes: the upload was interrupted or the export failed.",
    "not_media": "The file is not a video container at all (an image, a document, random bytes).",
    "corrupt": (
        "The file starts like a video we accept but is truncated or damaged, or has no "
        "readable length or picture size."
    ),
    "no_video_stream": "The file has sound (or cover art) but no video track.",
    "unsupported_codec": "The video track uses a codec we do not decode (e.g. Theora, WMV).",
    "unsupported_container": (
        "The file is a media container we do not accept (e.g. Ogg, MPEG-PS, WAV, ASF)."
    ),
    "too_long": "The video is longer than the maximum duration (COURTSIDE_MAX_DURATION_S).",
    "too_large": "The file is larger than the maximum upload size (COURTSIDE_MAX_UPLOAD_BYTES).",
    "dimensions_too_large": (
        "The picture's longer side exceeds the limit (COURTSIDE_MAX_DIMENSION_PX)."
    ),
    "dimensions_too_small": "The picture is under 16 pixels on a side: nothing to scale.",
    "frame_rate_too_high": "The frame rate is above the limit (COURTSIDE_MAX_FPS).",
    "references_external": (
        "The file is a playlist or list (HLS, DASH, concat, SDP, image sequence) or text naming "
        "other files or URLs; we never follow such references."
    ),
}


class UnsupportedInput(TranscodeError, ValueError):
    """The uploaded file is not something we can transcode; retrying will not help.

    ``code`` is one of the keys of :data:`REFUSAL_REASONS`.
    """

    code = "unsupported_input"
    default_message = "This file is not a video we can process."


class FFmpegFailed(TranscodeError):
    """ffmpeg (or ffprobe) exited with an error; ``stderr_tail`` says why, for operators."""

    code = "ffmpeg_failed"

    def __init__(self, returncode: int, stderr_tail: str, message: str | None = None) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Celery pickles errors across processes; rebuild from what __init__ needs.
        return (type(self), (self.returncode, self.stderr_tail, self.message), self.__dict__)

    @property
    def detail(self) -> str:
        """One line for logs: the exit status and ffmpeg's last words."""
        last_line = self.stderr_tail.strip().rsplit("\n", 1)[-1]
        return f"exit status {self.returncode}: {last_line or 'no output'}"


class FFmpegTimeout(FFmpegFailed, TimeoutError):
    """ffmpeg ran past its time limit and was killed with its whole process group."""

    code = "ffmpeg_timeout"
    default_message = "Processing this video took too long and was stopped."
