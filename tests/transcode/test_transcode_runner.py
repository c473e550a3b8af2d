"""The runner against real ffmpeg: progress, timeouts that leave nothing behind, failures."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path

import pytest

from transcode.errors import FFmpegFailed, FFmpegTimeout
from transcode.runner import (
    PROGRESS_INTERVAL_S,
    STDERR_TAIL_LINES,
    progress_fraction,
    run_capture,
    run_ffmpeg,
)

QUIET = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]


def paced_encode(seconds: float, output: str = "-") -> list[str]:
    """An encode that takes ``seconds`` of wall time: ``-re`` reads the source in real time."""
    source = f"testsrc2=size=160x90:rate=10:duration={seconds:g}"
    return [
        *(*QUIET, "-re", "-f", "lavfi", "-i", source, "-progress", "pipe:1", "-nostats"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-f", "null", output),
    ]


def live_pids(marker: str) -> list[int]:
    """Processes (zombies aside) whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked
        if marker.encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def eventually_none(marker: str, within_s: float = 2.0) -> list[int]:
    """SIGKILL is delivered asynchronously: give the kernel a moment to finish the job."""
    deadline = time.monotonic() + within_s
    while (pids := live_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def test_progress_rises_throttled_and_ends_at_one() -> None:
    calls: list[tuple[float, float]] = []

    run_ffmpeg(
        paced_encode(2.0),
        timeout_s=30,
        duration_s=2.0,
        on_progress=lambda fraction: calls.append((time.monotonic(), fraction)),
    )

    fractions = [fraction for _, fraction in calls]
    assert len(fractions) >= 3
    assert fractions == sorted(set(fractions))  # strictly rising
    assert fractions[-1] == 1.0
    assert all(0.0 <= f < 1.0 for f in fractions[:-1])
    running = [at for at, _ in calls[:-1]]
    assert all(b - a >= PROGRESS_INTERVAL_S * 0.9 for a, b in itertools.pairwise(running))


def test_without_a_duration_only_the_final_one_is_reported() -> None:
    fractions: list[float] = []

    run_ffmpeg(paced_encode(0.5), timeout_s=30, on_progress=fractions.append)

    assert fractions == [1.0]


def test_timeout_kills_ffmpeg_quickly() -> None:
    marker = f"/dev/null/courtside-timeout-{uuid.uuid4().hex}"
    started = time.monotonic()

    with pytest.raises(FFmpegTimeout) as caught:
        # The null muxer ignores the file name, so it can carry a marker to look for.
        run_ffmpeg(paced_encode(60, output=marker), timeout_s=1.0, duration_s=60)

    assert time.monotonic() - started < 3.0
    assert caught.value.returncode == -9
    assert eventually_none(marker) == []


def test_timeout_kills_the_whole_process_group() -> None:
    marker = f"courtside-grandchild-{uuid.uuid4().hex}"
    # The shell's child ffmpeg is our grandchild: only a process-group kill reaches it.
    script = " ".join([*paced_encode(60, output=f"/dev/null/{marker}"), "& wait"])

    with pytest.raises(FFmpegTimeout):
        run_ffmpeg(["sh", "-c", script], timeout_s=1.0)

    assert eventually_none(marker) == []


def test_an_error_in_the_progress_callback_stops_ffmpeg() -> None:
    marker = f"/dev/null/courtside-callback-{uuid.uuid4().hex}"

    def refuse(fraction: float) -> None:
        raise RuntimeError(f"task revoked at {fraction:.0%}")

    with pytest.raises(RuntimeError, match="task revoked"):
        run_ffmpeg(paced_encode(60, output=marker), timeout_s=30, duration_s=60, on_progress=refuse)

    assert eventually_none(marker) == []


def test_failure_carries_the_stderr_tail(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"

    with pytest.raises(FFmpegFailed) as caught:
        run_ffmpeg([*QUIET, "-i", str(missing), "-f", "null", "-"], timeout_s=30)

    assert not isinstance(caught.value, FFmpegTimeout)
    assert caught.value.returncode != 0
    assert "No such file or directory" in caught.value.stderr_tail
    assert str(missing) not in str(caught.value)  # the partner's message stays generic


def test_a_flood_on_stderr_neither_blocks_nor_grows_the_tail() -> None:
    # ~250 kB: several times a pipe buffer, so an undrained stderr would hang the child.
    script = 'i=0; while [ $i -lt 20000 ]; do echo "line $i" >&2; i=$((i+1)); done; exit 3'

    with pytest.raises(FFmpegFailed) as caught:
        run_ffmpeg(["sh", "-c", script], timeout_s=20)

    lines = caught.value.stderr_tail.splitlines()
    assert caught.value.returncode == 3
    assert len(lines) == STDERR_TAIL_LINES
    assert lines[-1] == "line 19999"


def test_run_capture_returns_stdout(clip_with_audio: Path) -> None:
    argv = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]

    output = run_capture([*argv, str(clip_with_audio)], timeout_s=30)

    assert output.split() == ["h264", "aac"]


def test_run_capture_failure_and_timeout() -> None:
    with pytest.raises(FFmpegFailed) as failed:
        run_capture(["sh", "-c", "echo nope >&2; exit 2"], timeout_s=10)
    assert (failed.value.returncode, failed.value.stderr_tail) == (2, "nope\n")

    started = time.monotonic()
    with pytest.raises(FFmpegTimeout):
        run_capture(["sh", "-c", "sleep 30"], timeout_s=0.5)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    ("line", "duration_s", "expected"),
    [
        ("out_time_us=1500000", 3.0, 0.5),
        ("out_time_ms=1500000\n", 3.0, 0.5),  # microseconds too, despite the name
        ("out_time_us=9000000", 3.0, 1.0),
        ("out_time_us=-23220", 3.0, 0.0),
        ("out_time_us=N/A", 3.0, None),
        ("out_time=00:00:01.500000", 3.0, None),
        ("progress=continue", 3.0, None),
        ("out_time_us=1500000", None, None),
        ("out_time_us=1500000", 0.0, None),
    ],
)
def test_progress_fraction(line: str, duration_s: float | None, expected: float | None) -> None:
    assert progress_fraction(line, duration_s) == expected
