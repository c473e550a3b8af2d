"""Choosing rungs and frame sizes for a source."""

from __future__ import annotations

import pytest

from transcode.ladder import (
    DEFAULT_LADDER,
    Rung,
    frame_size,
    ladder_for,
    renditions_for,
)
from transcode.probe import ProbeResult


def source(width: int, height: int, *, rotation: int = 0, sar: float = 1.0) -> ProbeResult:
    return ProbeResult(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration_s=10.0,
        width=width,
        height=height,
        fps=30.0,
        video_codec="h264",
        pix_fmt="yuv420p",
        has_audio=True,
        size_bytes=1,
        rotation=rotation,
        sample_aspect=sar,
    )


def sizes(probe: ProbeResult) -> list[tuple[str, int, int]]:
    return [(r.rung.name, r.width, r.height) for r in renditions_for(probe)]


def test_a_1080p_source_gets_every_rung_highest_first() -> None:
    assert sizes(source(1920, 1080)) == [("720p", 1280, 720), ("360p", 640, 360)]


@pytest.mark.parametrize(("width", "height"), [(640, 360), (854, 480), (1279, 719)])
def test_no_rung_above_the_source(width: int, height: int) -> None:
    rungs = ladder_for(source(width, height))

    assert [rung.name for rung in rungs] == ["360p"]
    assert all(rung.height <= height for rung in rungs)


def test_a_source_smaller_than_every_rung_gets_one_rung_of_its_own_even_size() -> None:
    (rung,) = ladder_for(source(321, 181))

    assert (rung.name, rung.height) == ("180p", 180)
    smallest = DEFAULT_LADDER[-1]
    assert 0 < rung.video_kbps < smallest.video_kbps
    assert rung.video_kbps < rung.max_kbps < smallest.max_kbps
    assert sizes(source(321, 181)) == [("180p", 320, 180)]


def test_portrait_video_is_laddered_by_its_short_side() -> None:
    assert sizes(source(1080, 1920)) == [("720p", 720, 1280), ("360p", 360, 640)]


def test_rotation_is_applied_before_choosing_sizes() -> None:
    assert sizes(source(1920, 1080, rotation=90)) == sizes(source(1080, 1920))
    assert sizes(source(1920, 1080, rotation=180)) == sizes(source(1920, 1080))


def test_non_square_pixels_are_squared_up() -> None:
    # PAL widescreen: 720x576 stored, 1024x576 shown.
    assert sizes(source(720, 576, sar=64 / 45)) == [("360p", 640, 360)]


@pytest.mark.parametrize(
    ("short", "width", "height", "expected"),
    [
        (360, 1920, 1080, (640, 360)),
        (360, 1440, 1080, (480, 360)),  # 4:3
        (360, 2560, 1080, (854, 360)),  # 21:9, 853.3 rounds to even
        (360, 1080, 1920, (360, 640)),
        (240, 427, 240, (428, 240)),
    ],
)
def test_frame_sizes_keep_the_aspect_and_are_even(
    short: int, width: int, height: int, expected: tuple[int, int]
) -> None:
    result = frame_size(short, width, height)

    assert result == expected
    assert all(side % 2 == 0 for side in result)


def test_a_custom_ladder_grows_without_code_changes() -> None:
    ladder = (
        Rung("1080p", 1080, 6000, 7200),
        *DEFAULT_LADDER,
        Rung("240p", 240, 400, 500),
    )

    assert [r.name for r in ladder_for(source(1920, 1080), ladder)] == [
        "1080p",
        "720p",
        "360p",
        "240p",
    ]
