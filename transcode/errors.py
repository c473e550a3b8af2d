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


class UnsupportedInput(TranscodeError, ValueError):
    """The uploaded file is not something we can transcode; retrying will not help.

    ``code`` is one of ``not_media``, ``no_video_stream``, ``unsupported_codec``, ``corrupt``,
    ``too_long``, ``too_large_dimensions``, ``too_small_dimensions``.
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
