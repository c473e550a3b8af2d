"""The transcoder's errors: codes, partner-safe messages, builtin bases, pickling."""

from __future__ import annotations

import pickle

from core.errors import CourtsideError
from transcode.errors import FFmpegFailed, FFmpegTimeout, TranscodeError, UnsupportedInput


def test_unsupported_input_is_a_value_error_with_its_own_code() -> None:
    error = UnsupportedInput("Only sound, no picture.", code="no_video_stream")

    assert isinstance(error, CourtsideError)
    assert isinstance(error, ValueError)
    assert error.code == "no_video_stream"
    assert str(error) == error.message == "Only sound, no picture."


def test_ffmpeg_failure_keeps_stderr_out_of_the_partner_message() -> None:
    error = FFmpegFailed(1, "frame=1\n/tmp/secret/path: Invalid data\n")

    assert error.code == "ffmpeg_failed"
    assert "secret" not in str(error)
    assert error.detail == "exit status 1: /tmp/secret/path: Invalid data"


def test_ffmpeg_timeout_is_both_a_failure_and_a_timeout() -> None:
    error = FFmpegTimeout(-9, "")

    assert isinstance(error, FFmpegFailed)
    assert isinstance(error, TimeoutError)
    assert error.code == "ffmpeg_timeout"
    assert str(error) == FFmpegTimeout.default_message


def test_errors_survive_pickling_as_celery_does() -> None:
    errors: list[TranscodeError] = [
        UnsupportedInput("Too long.", code="too_long"),
        FFmpegTimeout(-9, "last words\n"),
    ]

    copies = [pickle.loads(pickle.dumps(error)) for error in errors]  # noqa: S301 - our own bytes

    assert [(type(c), c.code, c.message) for c in copies] == [
        (type(e), e.code, e.message) for e in errors
    ]
    assert isinstance(copies[1], FFmpegTimeout)
    assert (copies[1].returncode, copies[1].stderr_tail) == (-9, "last words\n")
