"""Runs ffmpeg and ffprobe. The only module in the project that starts processes.

Every child runs in a session (and so a process group) of its own, so a timeout can kill it
together with anything it started. Pipes are drained by threads so a chatty child never blocks
on a full pipe, and progress callbacks run on the caller's thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, NoReturn

from transcode.errors import FFmpegFailed, FFmpegTimeout

STDERR_TAIL_LINES = 40
PROGRESS_INTERVAL_S = 0.5
# Fractions reported while ffmpeg runs stop short of 1.0: only a clean exit earns 1.0, because
# the muxer still writes playlists after the last frame is encoded.
RUNNING_FRACTION_CAP = 0.99
_MAX_LINE_BYTES = 8192
_READER_JOIN_S = 5.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    argv: list[str],
    *,
    timeout_s: float,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Run an ffmpeg command that writes ``-progress pipe:1`` key=value lines to stdout.

    ``on_progress`` gets fractions 0..1 (of ``duration_s``), at most every 0.5 s, never going
    down, and a final 1.0 on success. Raises :class:`FFmpegTimeout` after ``timeout_s`` (the
    whole process group is killed) and :class:`FFmpegFailed` with the stderr tail on a non-zero
    exit. An exception from ``on_progress`` also kills ffmpeg, then propagates.
    """
    deadline = time.monotonic() + timeout_s
    reporter = _ProgressReporter(duration_s, on_progress)
    with _spawn(argv) as popen:
        stdout = _LineQueue(popen.stdout)
        stderr = _StderrTail(popen.stderr)
        _pump_progress(popen, stdout, reporter, deadline, stderr)
        returncode = _wait(popen, deadline, stderr)
        # Read the tail before leaving the block: closing the pipe would drop unread lines.
        tail = stderr.text()
    if returncode != 0:
        raise FFmpegFailed(returncode, tail)
    reporter.finish()


def run_capture(argv: list[str], *, timeout_s: float) -> str:
    """Run a short command such as ffprobe and return its stdout as text.

    Same rules as :func:`run_ffmpeg`: :class:`FFmpegTimeout` after ``timeout_s`` (process group
    killed), :class:`FFmpegFailed` with the stderr tail on a non-zero exit.
    """
    with _spawn(argv) as popen:
        try:
            out, err = popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(popen)
            _, err = popen.communicate()
            raise FFmpegTimeout(popen.returncode, _tail_of(_decode(err))) from None
    if popen.returncode != 0:
        raise FFmpegFailed(popen.returncode, _tail_of(_decode(err)))
    return _decode(out)


def progress_fraction(line: str, duration_s: float | None) -> float | None:
    """The fraction done that one ``-progress`` line reports, or None if it reports none.

    ffmpeg writes ``out_time_ms`` in microseconds too (a historical misnomer), so both keys
    are read the same way; values are ``N/A`` until the first frame is out.
    """
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms") or not duration_s or duration_s <= 0:
        return None
    try:
        out_time_s = int(value) / 1_000_000
    except ValueError:
        return None
    return min(max(out_time_s / duration_s, 0.0), 1.0)


@contextlib.contextmanager
def _spawn(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in a new session; kill its group if the caller leaves it running."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,  # ffmpeg reads keys from stdin; a worker has none to give
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with popen:  # closes the pipes and reaps the child on the way out
        try:
            yield popen
        finally:
            if popen.poll() is None:
                _kill_group(popen)


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group and reap the child."""
    with contextlib.suppress(ProcessLookupError):
        # The child leads its own session, so its pid is also its process group id.
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def _pump_progress(
    popen: subprocess.Popen[bytes],
    stdout: _LineQueue,
    reporter: _ProgressReporter,
    deadline: float,
    stderr: _StderrTail,
) -> None:
    """Feed stdout lines to the reporter until ffmpeg closes stdout or time runs out."""
    while True:
        try:
            line = stdout.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            _timeout(popen, stderr)
        if line is None:
            return
        reporter.feed(line)


def _wait(popen: subprocess.Popen[bytes], deadline: float, stderr: _StderrTail) -> int:
    """Wait for the exit status, killing the group if the deadline passes first."""
    try:
        return popen.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        _timeout(popen, stderr)


def _timeout(popen: subprocess.Popen[bytes], stderr: _StderrTail) -> NoReturn:
    _kill_group(popen)
    raise FFmpegTimeout(popen.returncode, stderr.text())


class _ProgressReporter:
    """Turns ``-progress`` lines into throttled, never-decreasing callback calls."""

    def __init__(self, duration_s: float | None, callback: ProgressCallback | None) -> None:
        self._duration_s = duration_s
        self._callback = callback
        self._last_fraction = -1.0
        self._last_at = float("-inf")

    def feed(self, line: str) -> None:
        fraction = progress_fraction(line, self._duration_s)
        if self._callback is None or fraction is None:
            return
        fraction = min(fraction, RUNNING_FRACTION_CAP)
        now = time.monotonic()
        if fraction <= self._last_fraction or now - self._last_at < PROGRESS_INTERVAL_S:
            return
        self._last_fraction, self._last_at = fraction, now
        self._callback(fraction)

    def finish(self) -> None:
        if self._callback is not None:
            self._callback(1.0)


class _LineQueue:
    """Reads a pipe's lines on a thread; ``None`` marks the end of the stream."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def get(self, *, timeout: float) -> str | None:
        return self._lines.get(timeout=timeout)

    def _read(self, pipe: IO[bytes] | None) -> None:
        try:
            for raw in _lines_of(pipe):
                self._lines.put(_decode(raw))
        finally:
            self._lines.put(None)


class _StderrTail:
    """Keeps the last lines of a pipe, read on a thread so the pipe never fills up."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        self._lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def text(self) -> str:
        """The tail so far; waits briefly for the reader to reach the end of the pipe."""
        self._thread.join(timeout=_READER_JOIN_S)
        return "".join(self._lines)

    def _read(self, pipe: IO[bytes] | None) -> None:
        for raw in _lines_of(pipe):
            self._lines.append(_decode(raw))


def _lines_of(pipe: IO[bytes] | None) -> Iterator[bytes]:
    """Lines of at most ``_MAX_LINE_BYTES`` (a child printing garbage cannot eat memory)."""
    if pipe is None:
        return
    with contextlib.suppress(OSError, ValueError):  # the pipe is closed under us after a kill
        while raw := pipe.readline(_MAX_LINE_BYTES):
            yield raw


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _tail_of(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[-STDERR_TAIL_LINES:])


class LongProcess:
    """A long-running ffmpeg (a live encoder) the caller drives: ``-progress`` lines are read
    on a thread and handed out without blocking, stderr keeps its tail, and :meth:`stop` kills
    the whole process group. On Linux the child also dies with the thread that started it, so
    a worker process killed with SIGKILL leaves no encoder behind to fight its successor."""

    def __init__(self, argv: list[str]) -> None:
        self._popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # Resolved here, not in the child: after fork only the prctl call itself runs.
            preexec_fn=_die_with_parent_hook(),
        )
        self._stdout = _LineQueue(self._popen.stdout)
        self._stderr = _StderrTail(self._popen.stderr)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def lines(self) -> list[str]:
        """The progress lines written since the last call (never blocks)."""
        lines: list[str] = []
        while True:
            try:
                line = self._stdout.get(timeout=0)
            except queue.Empty:
                return lines
            if line is not None:
                lines.append(line)

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self._popen.poll()

    def stop(self, grace_s: float = 3.0) -> int:
        """SIGINT first (ffmpeg then finishes its current segment and playlists), SIGKILL for
        the group after ``grace_s``; returns the exit status."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGINT)
            try:
                self._popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _kill_group(self._popen)
        self._close()
        return self._popen.returncode

    def stderr_tail(self) -> str:
        return self._stderr.text()

    def _close(self) -> None:
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """For the child before exec (Linux): SIGKILL me when the thread that started me exits."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, _PR_SET_PDEATHSIG, signal.SIGKILL)
