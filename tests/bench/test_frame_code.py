"""The frame number burnt into pictures by the live benchmark's publisher survives x264,
a lower rung's scaling and the decode."""

from __future__ import annotations

import subprocess  # noqa: TID251 - real ffmpeg encodes and decodes the pictures
from pathlib import Path

import pytest

from bench import frame_code


@pytest.fixture(scope="module")
def coded_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("code") / "coded.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"testsrc2=size={frame_code.WIDTH}x{frame_code.HEIGHT}:rate=30",
         "-filter_complex", frame_code.overlay_filter(30), "-map", "[v]", "-t", "2",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1M", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


@pytest.mark.parametrize(("frame", "height"), [(0, 720), (1, 360), (37, 480), (59, 180)])
def test_the_frame_number_reads_back_at_any_rung(coded_clip: Path, frame: int, height: int) -> None:
    strip = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(coded_clip),
         "-vf", f"select=eq(n\\,{frame}),scale=-2:{height}," + frame_code.crop_filter(),
         "-frames:v", "1", "-f", "rawvideo", "pipe:1"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    assert frame_code.read_code(strip) == frame


def test_a_strip_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        frame_code.read_code(b"\0" * 10)


def test_a_strip_reads_bit_by_bit() -> None:
    value = 0b1010_0000_0000_0000_0101
    row = bytearray(frame_code.STRIP_W)
    for bit in range(frame_code.BITS):
        if value >> bit & 1:
            start = bit * frame_code.BLOCK
            row[start : start + frame_code.BLOCK] = b"\xff" * frame_code.BLOCK
    assert frame_code.read_code(bytes(row) * frame_code.BLOCK) == value
